import assert from "node:assert/strict";
import { keysMatch } from "../../../plugins/http/auth.ts";
import {
  buildApp,
  createApp,
  defaultModelId,
  sequentialStep,
  type StepRunner,
} from "../../../plugins/http/mod.ts";
import { testModel } from "./_model.ts";
import { post } from "./_sse.ts";

const model = await testModel("models/tiny.gguf");
const CHAT = {
  model: "tiny",
  messages: [{ role: "user", content: "hello" }],
  temperature: 0,
  max_tokens: 4,
};

Deno.test("defaultModelId() is the file name without directories and .gguf", () => {
  assert.equal(defaultModelId(model), "tiny");
});

Deno.test("GET /v1/models lists the one model; GET /v1/models/:id finds it or 404s", async () => {
  const app = createApp(model, { modelId: "turbosparse-test" });
  const list = await (await app.request("/v1/models")).json();
  assert.equal(list.object, "list");
  assert.deepEqual(list.data.map((m: { id: string }) => m.id), ["turbosparse-test"]);
  assert.equal(list.data[0].context_length, model.contextLength);
  assert.equal((await app.request("/v1/models/turbosparse-test")).status, 200);
  const missing = await app.request("/v1/models/gpt-4");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "model_not_found");
});

Deno.test("POST with an unknown model answers 404 model_not_found", async () => {
  const res = await post(createApp(model), "/v1/chat/completions", { ...CHAT, model: "gpt-4o" });
  assert.equal(res.status, 404);
  const { error } = await res.json();
  assert.deepEqual([error.param, error.code], ["model", "model_not_found"]);
  assert.match(error.message, /gpt-4o.*tiny/);
});

Deno.test("an unknown route answers 404 in OpenAI's error shape", async () => {
  const res = await createApp(model).request("/v1/embeddings", { method: "POST" });
  assert.equal(res.status, 404);
  const body = await res.json();
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
  assert.equal(
    (await createApp(model).request("/v1/chat/completions")).status,
    404,
    "GET is no route",
  );
});

Deno.test("GET /health reports the model and an empty queue", async () => {
  const body = await (await createApp(model).request("/health")).json();
  assert.deepEqual(body, { status: "ok", model: "tiny", queue_depth: 0, active: 0 });
});

Deno.test("GET /metrics counts requests by status and tokens, with the FFN fraction hook", async () => {
  const app = createApp(model, { ffnActiveFraction: () => 0.25 });
  await post(app, "/v1/chat/completions", CHAT);
  await post(app, "/v1/chat/completions", { ...CHAT, n: 2 });
  const res = await app.request("/metrics");
  assert.match(res.headers.get("content-type")!, /^text\/plain; version=0.0.4/);
  const text = await res.text();
  assert.match(
    text,
    /^turbosparse_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} 1$/m,
  );
  assert.match(
    text,
    /^turbosparse_requests_total\{endpoint="\/v1\/chat\/completions",status="400"\} 1$/m,
  );
  assert.match(text, /^turbosparse_completion_tokens_total 4$/m);
  assert.match(text, /^turbosparse_prompt_tokens_total [1-9]\d*$/m);
  assert.match(text, /^turbosparse_decode_tokens_per_second [0-9.e+]+$/m);
  assert.match(text, /^turbosparse_queue_depth 0$/m);
  assert.match(text, /^turbosparse_ffn_active_fraction 0.25$/m);
  assert.match(text, /^# TYPE turbosparse_requests_total counter$/m);
  const dense = await (await createApp(model).request("/metrics")).text();
  assert.match(dense, /^turbosparse_ffn_active_fraction 1$/m);
});

Deno.test("keysMatch() compares keys exactly", () => {
  assert.ok(keysMatch("sk-secret", "sk-secret"));
  assert.ok(!keysMatch("sk-secreT", "sk-secret"));
  assert.ok(!keysMatch("sk-secret-longer", "sk-secret"));
  assert.ok(!keysMatch("", "sk-secret"));
});

Deno.test("an API key guards every route but /health with 401", async () => {
  const app = createApp(model, { apiKey: "sk-test" });
  const none = await post(app, "/v1/chat/completions", CHAT);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), "Bearer");
  assert.equal((await none.json()).error.code, "invalid_api_key");
  const wrong = await post(app, "/v1/chat/completions", CHAT, {
    headers: { authorization: "Bearer sk-nope" },
  });
  assert.equal(wrong.status, 401);
  assert.equal((await app.request("/metrics")).status, 401);
  assert.equal((await app.request("/v1/models")).status, 401);
  const right = await post(app, "/v1/chat/completions", CHAT, {
    headers: { authorization: "Bearer sk-test" },
  });
  assert.equal(right.status, 200);
  assert.equal((await app.request("/health")).status, 200);
});

Deno.test("CORS headers are off by default and on when enabled", async () => {
  const origin = { headers: { origin: "http://example.test" } };
  const plain = await createApp(model).request("/v1/models", origin);
  assert.equal(plain.headers.get("access-control-allow-origin"), null);
  const app = createApp(model, { cors: true, apiKey: "sk-test" });
  const preflight = await app.request("/v1/chat/completions", {
    method: "OPTIONS",
    headers: { origin: "http://example.test", "access-control-request-method": "POST" },
  });
  assert.equal(preflight.status, 204, "preflight needs no key");
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
});

Deno.test("a body over the limit answers 413; a body that is not JSON answers 400", async () => {
  const app = createApp(model, { maxBodyBytes: 1024 });
  const big = await post(app, "/v1/completions", { model: "tiny", prompt: "x".repeat(2000) });
  assert.equal(big.status, 413);
  assert.match((await big.json()).error.message, /larger than 1024 bytes/);
  const bad = await post(app, "/v1/completions", "{not json");
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /not valid JSON/);
});

Deno.test("a POST body not declared as JSON answers 415 (no cross-site simple requests)", async () => {
  const app = createApp(model);
  const res = await app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify(CHAT),
  });
  assert.equal(res.status, 415);
  assert.match((await res.json()).error.message, /Content-Type: application\/json/);
  const charset = await post(app, "/v1/chat/completions", CHAT, {
    headers: { "content-type": "application/json; charset=utf-8" },
  });
  assert.equal(charset.status, 200);
});

Deno.test("a full queue answers 429 with Retry-After", async () => {
  const { app, state } = buildApp(model, { parallel: 1, maxQueue: 1 });
  const ctrl = new AbortController();
  const streams = [
    await post(app, "/v1/chat/completions", { ...CHAT, max_tokens: 150, stream: true }, {
      signal: ctrl.signal,
    }),
    await post(app, "/v1/chat/completions", { ...CHAT, max_tokens: 150, stream: true }, {
      signal: ctrl.signal,
    }),
  ];
  assert.deepEqual(streams.map((s) => s.status), [200, 200]);
  const refused = await post(app, "/v1/chat/completions", CHAT);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.equal((await refused.json()).error.code, "queue_full");
  for (const s of streams) await s.body!.cancel();
  await state.scheduler.idle();
  assert.equal(state.scheduler.queueDepth + state.scheduler.activeCount, 0);
});

Deno.test("a client that cancels its stream frees the slot and is counted", async () => {
  const { app, state } = buildApp(model, { parallel: 2 });
  const res = await post(app, "/v1/chat/completions", { ...CHAT, max_tokens: 150, stream: true });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read(); // the role chunk
  await reader.read(); // some content
  assert.equal(state.scheduler.activeCount, 1);
  await reader.cancel();
  assert.equal(state.scheduler.activeCount, 0, "freed at once, not at the next step");
  await state.scheduler.idle();
  assert.equal(state.metrics.cancelled, 1);
  assert.ok(state.metrics.completionTokens === 0, "a cancelled request completes nothing");
});

Deno.test("an aborted request signal stops a non-streaming generation", async () => {
  const ctrl = new AbortController();
  let steps = 0;
  const step: StepRunner = (m, items) => {
    if (++steps === 3) ctrl.abort(); // the client goes away during the third forward
    return sequentialStep(m, items);
  };
  const { app, state } = buildApp(model, { step });
  const res = await post(app, "/v1/completions", {
    model: "tiny",
    prompt: "hello",
    max_tokens: 200,
  }, {
    signal: ctrl.signal,
  });
  await state.scheduler.idle();
  assert.equal(res.status, 499);
  assert.equal(steps, 3, "no forward after the abort");
  assert.equal(state.metrics.cancelled, 1);
});

Deno.test("a failing forward answers 500 in OpenAI's shape without a stack", async () => {
  const step = () => {
    throw new Error("backend exploded");
  };
  const { app, state } = buildApp(model, { step });
  const res = await post(app, "/v1/chat/completions", CHAT);
  assert.equal(res.status, 500);
  const { error } = await res.json();
  assert.equal(error.type, "server_error");
  assert.match(error.message, /backend exploded/);
  assert.ok(!error.message.includes(" at "), "no stack trace");
  await state.scheduler.idle();
});

Deno.test("GET /metrics records the FFN active fraction of a sparse model when asked", async () => {
  const sparse = await testModel("sparse.gguf", {
    arch: "bamboo",
    layout: "powerinfer",
    activeFraction: 0.25,
    nFF: 256,
  });
  const read = async (app: ReturnType<typeof createApp>) => {
    await post(app, "/v1/completions", {
      model: "sparse",
      prompt: "hello",
      max_tokens: 8,
      temperature: 0,
    });
    const text = await (await app.request("/metrics")).text();
    return Number(/^turbosparse_ffn_active_fraction (\S+)$/m.exec(text)![1]);
  };
  assert.ok(Number.isNaN(await read(createApp(sparse))), "unknown unless recorded");
  const recorded = await read(createApp(sparse, { sparsityStats: true }));
  assert.ok(recorded > 0.05 && recorded < 0.6, `active fraction ${recorded}`);
  assert.equal(
    await read(createApp(model, { sparsityStats: true })),
    1,
    "a dense model computes every neuron",
  );
});
