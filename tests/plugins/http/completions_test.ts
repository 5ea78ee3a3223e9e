import assert from "node:assert/strict";
import { buildApp, createApp } from "../../../plugins/http/mod.ts";
import { testModel } from "./_model.ts";
import { post, readSse } from "./_sse.ts";

const model = await testModel();
const app = createApp(model);
const PROMPT = "the sparse model";
// deno-lint-ignore no-explicit-any
type Json = any;

async function complete(body: Record<string, unknown>): Promise<Json> {
  const res = await post(app, "/v1/completions", {
    model: "tiny",
    prompt: PROMPT,
    temperature: 0,
    ...body,
  });
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json();
}

Deno.test("POST /v1/completions returns a text_completion with usage", async () => {
  const r = await complete({ max_tokens: 12 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.model, "tiny");
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.ok(r.choices[0].text.length > 0);
  assert.deepEqual(r.usage, {
    prompt_tokens: model.tokenizer.encode(PROMPT).length,
    completion_tokens: 12,
    total_tokens: model.tokenizer.encode(PROMPT).length + 12,
  });
});

Deno.test("POST /v1/completions is deterministic under greedy sampling and seeds", async () => {
  assert.equal(
    (await complete({ max_tokens: 16 })).choices[0].text,
    (await complete({ max_tokens: 16 })).choices[0].text,
  );
  const seeded = { max_tokens: 16, temperature: 1, seed: 42 };
  assert.equal((await complete(seeded)).choices[0].text, (await complete(seeded)).choices[0].text);
});

Deno.test("POST /v1/completions defaults max_tokens to 16, OpenAI's default", async () => {
  assert.equal((await complete({})).usage.completion_tokens, 16);
});

Deno.test("POST /v1/completions accepts a token-id prompt", async () => {
  const ids = model.tokenizer.encode(PROMPT);
  const a = await complete({ prompt: ids, max_tokens: 8 });
  const b = await complete({ max_tokens: 8 });
  assert.equal(a.choices[0].text, b.choices[0].text);
});

Deno.test("POST /v1/completions streams chunks that add up to the full text, then [DONE]", async () => {
  const full = (await complete({ max_tokens: 20 })).choices[0].text;
  const res = await post(app, "/v1/completions", {
    model: "tiny",
    prompt: PROMPT,
    temperature: 0,
    max_tokens: 20,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
  const { events, done } = await readSse(res);
  assert.ok(done, "the stream ends with data: [DONE]");
  const usage = events.at(-1) as Json;
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage.completion_tokens, 20);
  const chunks = events.slice(0, -1) as Json[];
  assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
  assert.ok(chunks.every((c) => c.object === "text_completion" && c.usage === null));
  assert.equal(chunks.map((c) => c.choices[0].text).join(""), full);
});

Deno.test("POST /v1/completions cuts at a stop string and never sends it, streamed or not", async () => {
  const full: string = (await complete({ max_tokens: 40 })).choices[0].text;
  const stop = full.slice(12, 15);
  const cut = full.indexOf(stop);
  assert.ok(stop.length === 3 && cut >= 0);
  const r = await complete({ max_tokens: 40, stop });
  assert.equal(r.choices[0].text, full.slice(0, cut));
  assert.equal(r.choices[0].finish_reason, "stop");
  const res = await post(app, "/v1/completions", {
    model: "tiny",
    prompt: PROMPT,
    temperature: 0,
    max_tokens: 40,
    stop: ["never-appears", stop],
    stream: true,
  });
  const { events, done } = await readSse(res);
  assert.ok(done);
  const texts = (events as Json[]).map((c) => c.choices[0].text as string);
  assert.equal(texts.join(""), full.slice(0, cut));
  assert.ok(texts.every((t) => !t.includes(stop)));
  assert.equal((events.at(-1) as Json).choices[0].finish_reason, "stop");
});

Deno.test("POST /v1/completions reports logprobs of the chosen tokens and their top alternatives", async () => {
  const r = await complete({ max_tokens: 10, logprobs: 3 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 10);
  assert.equal(lp.token_logprobs.length, 10);
  for (let i = 0; i < 10; i++) {
    const top = Object.values(lp.top_logprobs[i]) as number[];
    assert.ok(top.length >= 1 && top.length <= 3);
    assert.ok(lp.token_logprobs[i] <= 0);
    // greedy: the chosen token is the most likely one
    assert.ok(Math.abs(lp.token_logprobs[i] - Math.max(...top)) < 1e-6);
  }
});

Deno.test("POST /v1/completions refuses prompt + max_tokens beyond the context, naming both", async () => {
  const n = model.tokenizer.encode(PROMPT).length;
  const res = await post(app, "/v1/completions", {
    model: "tiny",
    prompt: PROMPT,
    max_tokens: 1000,
  });
  assert.equal(res.status, 400);
  const { error } = await res.json();
  assert.equal(error.code, "context_length_exceeded");
  assert.equal(error.param, "max_tokens");
  assert.ok(
    error.message.includes(`${n} tokens`) && error.message.includes("1000") &&
      error.message.includes("256"),
  );
  const long = await post(app, "/v1/completions", { model: "tiny", prompt: "the ".repeat(300) });
  assert.equal(long.status, 400);
  assert.equal((await long.json()).error.param, "prompt");
});

Deno.test("POST /v1/completions refuses bad fields with 400 naming them", async () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ n: 2 }, "n", /only n = 1/],
    [{ temperature: 3 }, "temperature", /2/],
    [{ prompt: [1, 5000] }, "prompt.1", /outside the vocabulary/],
    [{ prompt: ["a", "b"] }, "prompt", /one prompt/],
    [{ echo: true }, "echo", /not supported/],
    [{ stop: ["a", "b", "c", "d", "e"] }, "stop", /at most 4/],
    [{ logprobs: 9 }, "logprobs", /5/],
    [{ max_tokens: 0 }, "max_tokens", /1/],
  ];
  for (const [fields, param, message] of cases) {
    const res = await post(app, "/v1/completions", { model: "tiny", prompt: PROMPT, ...fields });
    assert.equal(res.status, 400, JSON.stringify(fields));
    const { error } = await res.json();
    assert.equal(error.type, "invalid_request_error");
    assert.equal(error.param, param, JSON.stringify(fields));
    assert.match(error.message, message);
  }
});

Deno.test("POST /v1/completions answers 504 when the time limit passes first", async () => {
  const { app: slowApp, state } = buildApp(model, { timeoutS: 0.000001 });
  const res = await post(slowApp, "/v1/completions", {
    model: "tiny",
    prompt: PROMPT,
    max_tokens: 50,
  });
  assert.equal(res.status, 504);
  assert.equal((await res.json()).error.code, "timeout");
  await state.scheduler.idle();
});
