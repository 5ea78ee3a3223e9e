/**
 * End to end: the server on a loopback port, driven by the official `openai` npm client.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { serve } from "../../../plugins/http/mod.ts";
import { testModel } from "./_model.ts";

const KEY = "sk-e2e-test";
const MESSAGES = [{ role: "user" as const, content: "hello world" }];

async function withServer(fn: (client: OpenAI, url: string) => Promise<void>): Promise<void> {
  const model = await testModel();
  const server = serve(model, { port: 0, apiKey: KEY });
  try {
    assert.equal(server.addr.hostname, "127.0.0.1", "binds loopback by default");
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
    await fn(client, server.url);
  } finally {
    await server.shutdown();
    model.close();
  }
}

Deno.test("serve() answers the openai client's chat completions, streamed and not", async () => {
  await withServer(async (client) => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ["tiny"]);

    const full = await client.chat.completions.create({
      model: "tiny",
      messages: MESSAGES,
      max_tokens: 16,
      temperature: 0,
    });
    assert.equal(full.choices[0].finish_reason, "length");
    assert.equal(full.usage?.completion_tokens, 16);
    const text = full.choices[0].message.content ?? "";

    const stream = await client.chat.completions.create({
      model: "tiny",
      messages: MESSAGES,
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamed = "", finish: string | null = null, usage = 0;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage?.completion_tokens ?? usage;
    }
    assert.equal(streamed, text);
    assert.equal(finish, "length");
    assert.equal(usage, 16);
  });
});

Deno.test("serve() answers the openai client's completions, streamed and not, with a stop", async () => {
  await withServer(async (client) => {
    const full = await client.completions.create({
      model: "tiny",
      prompt: "the model",
      max_tokens: 30,
      temperature: 0,
    });
    const text = full.choices[0].text;
    const stop = text.slice(10, 13);
    const cut = await client.completions.create({
      model: "tiny",
      prompt: "the model",
      max_tokens: 30,
      temperature: 0,
      stop: [stop],
    });
    assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
    assert.equal(cut.choices[0].finish_reason, "stop");

    const stream = await client.completions.create({
      model: "tiny",
      prompt: "the model",
      max_tokens: 30,
      temperature: 0,
      stop,
      stream: true,
    });
    let streamed = "";
    for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? "";
    assert.equal(streamed, text.slice(0, text.indexOf(stop)));
  });
});

Deno.test("serve() refuses a bad key with the client's AuthenticationError", async () => {
  await withServer(async (_client, url) => {
    const bad = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    await assert.rejects(
      () => bad.chat.completions.create({ model: "tiny", messages: MESSAGES, max_tokens: 2 }),
      (e: unknown) => e instanceof OpenAI.AuthenticationError && e.status === 401,
    );
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200, "/health needs no key");
    await health.body?.cancel();
  });
});

Deno.test("serve() reports a 400 with the field as the client's BadRequestError", async () => {
  await withServer(async (client) => {
    await assert.rejects(
      () =>
        client.chat.completions.create({ model: "tiny", messages: MESSAGES, max_tokens: 10_000 }),
      (e: unknown) =>
        e instanceof OpenAI.BadRequestError && /context window of 256/.test(e.message),
    );
  });
});
