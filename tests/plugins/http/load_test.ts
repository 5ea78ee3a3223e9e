/**
 * The load benchmark's correctness checks, small and untimed: concurrent streaming chats on
 * loopback equal their solo runs, and a client that hangs up frees its slot.
 */

import assert from "node:assert/strict";
import { concurrentRun, disconnectRun, prompts } from "../../../bench/serve_load.ts";
import { sequentialStep, serve, type StepRunner } from "../../../plugins/http/mod.ts";
import { testModel } from "./_model.ts";

Deno.test("serve() gives 6 concurrent streaming chats the text of their solo runs", async () => {
  const model = await testModel();
  const server = serve(model, { port: 0, parallel: 3, maxQueue: 6 });
  try {
    const report = await concurrentRun(server.url, "tiny", prompts(6), 24);
    assert.equal(report.results.length, 6);
    assert.deepEqual(report.mismatches, []);
    assert.ok(
      report.results.every((r) => r.finishReason === "length" && r.completionTokens === 24),
    );
    assert.ok(
      new Set(report.results.map((r) => r.text)).size > 1,
      "prompts differ, so texts should",
    );
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(
      metrics,
      /^turbosparse_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} 12$/m,
    );
  } finally {
    await server.shutdown();
    model.close();
  }
});

Deno.test("serve() frees the slot of a client that disconnects mid-stream", async () => {
  const model = await testModel();
  // 3 ms per forward: the 150-token generation cannot finish before the client hangs up
  const slow: StepRunner = (m, items) => {
    const until = performance.now() + 3;
    while (performance.now() < until) { /* a slower backend */ }
    return sequentialStep(m, items);
  };
  const server = serve(model, { port: 0, step: slow });
  try {
    const { before, after } = await disconnectRun(server.url, "tiny");
    assert.equal(before, 1);
    assert.deepEqual([after.queue_depth, after.active], [0, 0]);
    await server.state.scheduler.idle();
    assert.equal(server.state.metrics.cancelled, 1);
  } finally {
    await server.shutdown();
    model.close();
  }
});

Deno.test("serve() flushes streamed chunks while generating, not in one burst at the end", async () => {
  const model = await testModel();
  let lastForwardAt = 0;
  const slow: StepRunner = (m, items) => {
    const until = performance.now() + 2;
    while (performance.now() < until) { /* a backend taking 2 ms per forward */ }
    lastForwardAt = performance.now();
    return sequentialStep(m, items);
  };
  const server = serve(model, { port: 0, step: slow });
  try {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "tiny",
        prompt: "hello",
        max_tokens: 60,
        temperature: 0,
        stream: true,
      }),
    });
    let firstReadAt = 0;
    for await (const _ of res.body!) firstReadAt ||= performance.now();
    assert.ok(firstReadAt > 0 && lastForwardAt > 0);
    assert.ok(
      firstReadAt < lastForwardAt,
      "the first chunk reached the client before the last forward ran",
    );
  } finally {
    await server.shutdown();
    model.close();
  }
});
