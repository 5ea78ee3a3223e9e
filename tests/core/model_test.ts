import assert from "node:assert/strict";
import { parseGGUF } from "../../core/gguf.ts";
import { MAX_BATCH } from "../../core/forward.ts";
import { Model } from "../../core/model.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { synthBytes } from "../../tools/synth.ts";

function tinyModel(contextLength = 128, arch: "llama" | "bamboo" = "llama"): Model {
  const bytes = synthBytes({
    arch,
    nEmbd: 64,
    nFF: 96,
    nLayer: 2,
    nHead: 4,
    nKV: 2,
    nCtx: 256,
    nVocab: 320,
    dtype: 0,
    seed: 3,
  });
  return new Model(parseGGUF(bytes, "tiny.gguf"), new ReferenceBackend(), "tiny.gguf", {
    contextLength,
  });
} // deno-fmt-ignore

async function text(model: Model, prompt: string, opts = {}): Promise<string> {
  let out = "";
  for await (const piece of model.generate(prompt, opts)) out += piece;
  return out;
}

Deno.test("Model.eval() gives the same logits batched in chunks as one token at a time", () => {
  const model = tinyModel(256);
  const tokens = Array.from({ length: MAX_BATCH + 9 }, (_, i) => 3 + ((i * 37) % 300));
  const batched = model.eval(model.newState(), tokens, true);
  const single = model.newState();
  for (let t = 0; t < tokens.length; t++) {
    const row = model.eval(single, [tokens[t]]);
    const ref = batched.subarray(t * 320, (t + 1) * 320);
    for (let i = 0; i < 320; i++) {
      assert.ok(Math.abs(row[i] - ref[i]) < 1e-4, `token ${t} logit ${i}`);
    }
  }
});

Deno.test("Model.eval() refuses tokens beyond the context and ids outside the vocabulary", () => {
  const model = tinyModel(16);
  const state = model.newState();
  model.eval(state, Array(10).fill(5));
  assert.throws(
    () => model.eval(state, Array(7).fill(5)),
    /7 tokens at position 10 do not fit the context of 16/,
  );
  assert.throws(
    () => model.eval(model.newState(), [320]),
    /token id 320 is outside the vocabulary \(320\)/,
  );
});

Deno.test("Model.generate() is deterministic: greedy, and sampling with a seed", async () => {
  const model = tinyModel();
  const a = await text(model, "hello world", { maxTokens: 12, temperature: 0 });
  const b = await text(model, "hello world", { maxTokens: 12, temperature: 0 });
  assert.equal(a, b);
  assert.ok(a.length > 0);
  const s1 = await text(model, "the time", { maxTokens: 12, temperature: 1, seed: 7 });
  const s2 = await text(model, "the time", { maxTokens: 12, temperature: 1, seed: 7 });
  assert.equal(s1, s2);
});

Deno.test("Model.generate() reports stats and stops at maxTokens", async () => {
  const model = tinyModel(128, "bamboo");
  const gen = model.generate("a", { maxTokens: 5, temperature: 0 });
  for await (const _ of gen) { /* drain */ }
  assert.ok(gen.stats);
  assert.ok(gen.stats.generatedTokens <= 5);
  assert.ok(gen.stats.stopReason === "length" || gen.stats.stopReason === "eos");
  assert.equal(gen.stats.promptTokens, model.tokenizer.encode("a").length);
  assert.ok(gen.stats.prefillTokensPerSecond > 0);
});

Deno.test("Model.generate() refuses a prompt longer than the context", async () => {
  const model = tinyModel(8);
  await assert.rejects(() => text(model, "word ".repeat(40)), /does not fit the context of 8/);
});

Deno.test("Model.generate() stops when its signal is aborted", async () => {
  const model = tinyModel();
  const ctl = new AbortController();
  const gen = model.generate("hello", { maxTokens: 50, temperature: 0, signal: ctl.signal });
  let pieces = 0;
  for await (const _ of gen) if (++pieces === 2) ctl.abort();
  assert.equal(gen.stats?.stopReason, "abort");
  assert.ok(gen.stats!.generatedTokens < 50);
});
