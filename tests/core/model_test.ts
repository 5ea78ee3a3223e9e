import assert from "node:assert/strict";
import { parseGGUF } from "../../core/gguf.ts";
import type { Backend, GreedySteps } from "../../core/backend.ts";
import { MAX_BATCH } from "../../core/forward.ts";
import { Model } from "../../core/model.ts";
import { argmax } from "../../core/sampler.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { synthBytes } from "../../tools/synth.ts";

function tinyModel(
  contextLength = 128,
  arch: "llama" | "bamboo" = "llama",
  backend: Backend = new ReferenceBackend(),
): Model {
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
  return new Model(parseGGUF(bytes, "tiny.gguf"), backend, "tiny.gguf", {
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

/**
 * The reference backend with `step` and a host-side `stepGreedy` (each step's ops, then the
 * argmax of its logits), counting the steps it was asked for; `override` replaces picked
 * tokens by step index (counted over every call), to force an end-of-generation token.
 */
class GreedyHost extends ReferenceBackend {
  steps = 0;
  calls: number[] = [];
  constructor(readonly override = new Map<number, number>()) {
    super();
  }
  step(_key: object, _pos: number, _tokens: Int32Array, record: () => void): void {
    record();
  }
  stepGreedy({ pos, token, n, logits, nVocab, record }: GreedySteps): Int32Array {
    this.calls.push(n);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      record(pos + i, i === 0 ? token : out[i - 1]);
      out[i] = this.override.get(this.steps++) ?? argmax(this.read(logits, 0, nVocab));
    }
    return out;
  }
}

async function run(model: Model, prompt: string, opts = {}) {
  const gen = model.generate(prompt, opts);
  let out = "";
  for await (const piece of gen) out += piece;
  return { out, stats: gen.stats! };
}

Deno.test("Model.generate() at temperature 0 lets a backend pick the tokens: the same text", async () => {
  const host = new GreedyHost();
  const opts = { maxTokens: 40, temperature: 0 };
  const want = await run(tinyModel(), "hello world", opts);
  const got = await run(tinyModel(128, "llama", host), "hello world", opts);
  assert.equal(got.out, want.out);
  assert.equal(got.stats.generatedTokens, want.stats.generatedTokens);
  assert.equal(got.stats.stopReason, want.stats.stopReason);
  // the first token comes from the prompt's logits; then chunks of at most 16
  assert.ok(host.calls.length >= 3 && host.calls.every((n) => n >= 1 && n <= 16), `${host.calls}`);
  // a repeat penalty needs the host's sampler: no device steps
  const penalised = new GreedyHost();
  const p = { ...opts, repeatPenalty: 1.3 };
  const pw = await run(tinyModel(), "hello world", p);
  assert.equal((await run(tinyModel(128, "llama", penalised), "hello world", p)).out, pw.out);
  assert.deepEqual(penalised.calls, []);
});

Deno.test("Model.generate() with device greedy steps stops at the context, and at an end token", async () => {
  // context: the chunks never run past it, and the generation ends there
  const short = new GreedyHost();
  const prompt = "hello world";
  const nPrompt = tinyModel().tokenizer.encode(prompt).length;
  const ctx = nPrompt + 20;
  const opts = { maxTokens: 100, temperature: 0 };
  const want = await run(tinyModel(ctx), prompt, opts);
  const got = await run(tinyModel(ctx, "llama", short), prompt, opts);
  assert.equal(got.stats.stopReason, "context");
  assert.equal(got.stats.stopReason, want.stats.stopReason);
  assert.equal(got.out, want.out);
  assert.equal(short.calls.reduce((a, b) => a + b, 0), ctx - nPrompt);
  // an end-of-generation token picked in the middle of a chunk ends the generation there
  const model = tinyModel();
  let eog = 0;
  while (!model.tokenizer.isEog(eog)) eog++;
  const ends = new GreedyHost(new Map([[5, eog]]));
  const r = await run(tinyModel(128, "llama", ends), prompt, opts);
  assert.equal(r.stats.stopReason, "eos");
  assert.equal(r.stats.generatedTokens, 6); // the prompt's token, then device steps 0..4
});
