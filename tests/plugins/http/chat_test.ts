import assert from "node:assert/strict";
import { parseGGUF } from "../../../core/gguf.ts";
import { Model } from "../../../core/model.ts";
import { templateMessages } from "../../../plugins/http/chat.ts";
import { createApp } from "../../../plugins/http/mod.ts";
import { chooseBackend } from "../../../plugins/registry.ts";
import { synthBytes } from "../../../tools/synth.ts";
import { TEST_SHAPE, testModel } from "./_model.ts";
import { post, readSse } from "./_sse.ts";

const model = await testModel();
const app = createApp(model);
const MESSAGES = [{ role: "system", content: "Be brief." }, {
  role: "user",
  content: "hello world",
}];
// deno-lint-ignore no-explicit-any
type Json = any;

async function chat(body: Record<string, unknown>, on = app): Promise<Json> {
  const res = await post(on, "/v1/chat/completions", {
    model: "tiny",
    messages: MESSAGES,
    temperature: 0,
    ...body,
  });
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json();
}

Deno.test("templateMessages() maps developer to system and joins text parts", () => {
  assert.deepEqual(
    templateMessages([
      { role: "developer", content: "rules" },
      { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] },
      { role: "assistant", content: null },
    ]),
    [{ role: "system", content: "rules" }, { role: "user", content: "a\nb" }, {
      role: "assistant",
      content: "",
    }],
  );
});

Deno.test("POST /v1/chat/completions returns an assistant message with usage", async () => {
  const r = await chat({ max_tokens: 10 });
  assert.equal(r.object, "chat.completion");
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.usage.completion_tokens, 10);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 10);
});

Deno.test("POST /v1/chat/completions renders ChatML for a model without a template", async () => {
  const prompt =
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello world<|im_end|>\n" +
    "<|im_start|>assistant\n";
  const viaChat = await chat({ max_tokens: 12 });
  const res = await post(app, "/v1/completions", {
    model: "tiny",
    prompt,
    max_tokens: 12,
    temperature: 0,
  });
  const viaText = await res.json();
  assert.equal(viaChat.usage.prompt_tokens, viaText.usage.prompt_tokens);
  assert.equal(viaChat.choices[0].message.content, viaText.choices[0].text);
});

Deno.test("POST /v1/chat/completions uses the model's tokenizer.chat_template", async () => {
  const file = parseGGUF(synthBytes(TEST_SHAPE), "templated.gguf");
  file.metadata.set(
    "tokenizer.chat_template",
    "{% for m in messages %}{{ m.content }}{% endfor %}",
  );
  const templated = new Model(file, (await chooseBackend("reference")).backend, "templated.gguf");
  const r = await chat({ model: "templated", max_tokens: 4 }, createApp(templated));
  // "Be brief.hello world" with BOS, and no ChatML markup
  assert.equal(r.usage.prompt_tokens, templated.tokenizer.encode("Be brief.hello world").length);
});

Deno.test("POST /v1/chat/completions prefers max_completion_tokens over max_tokens", async () => {
  assert.equal(
    (await chat({ max_tokens: 9, max_completion_tokens: 5 })).usage.completion_tokens,
    5,
  );
});

Deno.test("POST /v1/chat/completions streams a role chunk, content deltas, a finish chunk and [DONE]", async () => {
  const full = (await chat({ max_tokens: 20 })).choices[0].message.content;
  const res = await post(app, "/v1/chat/completions", {
    model: "tiny",
    messages: MESSAGES,
    temperature: 0,
    max_tokens: 20,
    stream: true,
  });
  assert.equal(res.status, 200);
  const { events, done } = await readSse(res);
  const chunks = events as Json[];
  assert.ok(done);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && !("usage" in c)));
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
  assert.deepEqual(chunks.at(-1).choices[0].delta, {});
  assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
  assert.equal(chunks.slice(1, -1).map((c) => c.choices[0].delta.content).join(""), full);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, "one id for the whole stream");
});

Deno.test("POST /v1/chat/completions stops at a stop string without sending it", async () => {
  const full: string = (await chat({ max_tokens: 40 })).choices[0].message.content;
  const stop = full.slice(20, 22);
  const r = await chat({ max_tokens: 40, stop: [stop] });
  assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, "stop");
});

Deno.test("POST /v1/chat/completions reports logprobs with top_logprobs", async () => {
  const r = await chat({ max_tokens: 6, logprobs: true, top_logprobs: 2 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 6);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(Math.abs(t.logprob - t.top_logprobs[0].logprob) < 1e-6, "greedy picks the top token");
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
    assert.ok(Array.isArray(t.bytes));
  }
  assert.equal((await chat({ max_tokens: 2 })).choices[0].logprobs, null);
});

Deno.test("POST /v1/chat/completions refuses unsupported or malformed requests with 400", async () => {
  const cases: [Record<string, unknown>, string | null, RegExp][] = [
    [{ messages: [] }, "messages", /at least one/],
    [{ messages: [{ role: "robot", content: "x" }] }, "messages.0.role", /./],
    [
      { messages: [{ role: "user", content: [{ type: "image_url" }] }] },
      "messages.0.content.0",
      /text/,
    ],
    [{ n: 3 }, "n", /only n = 1/],
    [{ tools: [{ type: "function" }] }, "tools", /not supported/],
    [{ response_format: { type: "json_object" } }, "response_format", /not supported/],
    [{ top_logprobs: 2 }, "top_logprobs", /logprobs: true/],
    [{ top_p: 1.5 }, "top_p", /1/],
    [{ max_tokens: 5000 }, "max_tokens", /context window of 256/],
  ];
  for (const [fields, param, message] of cases) {
    const res = await post(app, "/v1/chat/completions", {
      model: "tiny",
      messages: MESSAGES,
      ...fields,
    });
    assert.equal(res.status, 400, JSON.stringify(fields));
    const { error } = await res.json();
    assert.equal(error.param, param, JSON.stringify(fields));
    assert.match(error.message, message);
  }
});
