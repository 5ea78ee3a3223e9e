import assert from "node:assert/strict";
import { argmax, logprobs, mulberry32, Sampler, topK } from "../../core/sampler.ts";

/** Logits whose softmax is exactly `probs` (up to rounding). */
function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, Math.log);
}

function randomLogits(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 8 * rand() - 4);
}

/** How often each token is drawn in `n` samples. */
function counts(sampler: Sampler, logits: Float32Array, n: number): number[] {
  const c = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[sampler.sample(logits, [])]++;
  return c;
}

/** Only the filter under test: no top-k, top-p or min-p, temperature 1. */
const PLAIN = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 7 };

Deno.test("Sampler() fills llama.cpp's defaults", () => {
  const s = new Sampler();
  assert.equal(s.options.temperature, 0.8);
  assert.equal(s.options.topK, 40);
  assert.equal(s.options.topP, 0.95);
  assert.equal(s.options.minP, 0.05);
  assert.equal(s.options.repeatPenalty, 1);
  assert.ok(Number.isInteger(s.seed) && s.seed >= 0);
});

Deno.test("sample() at temperature 0 is argmax with the lowest id on ties", () => {
  const s = new Sampler({ temperature: 0 });
  assert.equal(s.sample(Float32Array.from([1, 3, 3, 2]), []), 1);
  assert.equal(s.sample(Float32Array.from([-5, -2, -9]), []), 1);
  const big = randomLogits(32000, 3);
  assert.equal(s.sample(big, []), argmax(big));
});

Deno.test("isArgmax is true only when sample() is the argmax of the logits alone", () => {
  assert.equal(new Sampler({ temperature: 0 }).isArgmax, true);
  assert.equal(new Sampler({ temperature: 0.5 }).isArgmax, false);
  assert.equal(new Sampler({ temperature: 0, repeatPenalty: 1.1 }).isArgmax, false);
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 0.5 }).isArgmax, false);
  assert.equal(new Sampler({ temperature: 0, frequencyPenalty: -0.5 }).isArgmax, false);
  // penalties that look at no tokens change nothing
  assert.equal(new Sampler({ temperature: 0, repeatPenalty: 1.1, repeatLastN: 0 }).isArgmax, true);
});

Deno.test("sample() gives the same tokens for the same seed, others for another seed", () => {
  const logits = randomLogits(500, 1);
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1.5, topK: 0, topP: 1, minP: 0, seed });
    return Array.from({ length: 50 }, () => s.sample(logits, []));
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
});

Deno.test("sample() with topK 1 equals greedy", () => {
  const s = new Sampler({ ...PLAIN, topK: 1, temperature: 5 });
  for (let i = 0; i < 50; i++) {
    const logits = randomLogits(1000, 100 + i);
    logits[999] = logits[argmax(logits)]; // a tie: the lower id must win
    assert.equal(s.sample(logits, []), argmax(logits));
  }
});

Deno.test("sample() with topP keeps the minimal nucleus", () => {
  const logits = logitsOf([0.5, 0.3, 0.15, 0.05]);
  const two = counts(new Sampler({ ...PLAIN, topP: 0.75 }), logits, 1000);
  assert.ok(two[0] > 0 && two[1] > 0, `${two}`);
  assert.equal(two[2] + two[3], 0, `0.5 + 0.3 already covers 0.75: ${two}`);
  const one = counts(new Sampler({ ...PLAIN, topP: 0.45 }), logits, 200);
  assert.deepEqual(one, [200, 0, 0, 0]);
  const three = counts(new Sampler({ ...PLAIN, topP: 0.9 }), logits, 2000);
  assert.ok(three[2] > 0 && three[3] === 0, `${three}`);
});

Deno.test("sample() with minP drops tokens below minP times the top probability", () => {
  const logits = logitsOf([0.5, 0.3, 0.15, 0.05]);
  const c = counts(new Sampler({ ...PLAIN, minP: 0.2 }), logits, 2000); // floor 0.1
  assert.ok(c[2] > 0, `${c}`);
  assert.equal(c[3], 0, `${c}`);
  const all = counts(new Sampler(PLAIN), logits, 2000);
  assert.ok(all[3] > 0, `without minP the rare token appears: ${all}`);
});

Deno.test("sample() repetition penalty divides positive and multiplies negative logits", () => {
  const greedy = (opts: object, logits: number[], history: number[]) =>
    new Sampler({ temperature: 0, ...opts }).sample(Float32Array.from(logits), history);
  assert.equal(greedy({}, [2, 1.9, -1], [0]), 0);
  assert.equal(greedy({ repeatPenalty: 1.1 }, [2, 1.9, -1], [0]), 1); // 2 / 1.1 < 1.9
  assert.equal(greedy({ repeatPenalty: 1.1 }, [-1, -1.05], [0]), 1); // -1 · 1.1 < -1.05
  // only the last repeatLastN tokens count
  assert.equal(greedy({ repeatPenalty: 1.1, repeatLastN: 2 }, [2, 1.9, -1], [0, 2, 2]), 0);
  assert.equal(greedy({ repeatPenalty: 1.1, repeatLastN: -1 }, [2, 1.9, -1], [0, 2, 2]), 1);
  assert.equal(greedy({ repeatPenalty: 1.1, repeatLastN: 0 }, [2, 1.9, -1], [0]), 0);
});

Deno.test("sample() presence and frequency penalties subtract per token and per count", () => {
  const greedy = (opts: object, history: number[]) =>
    new Sampler({ temperature: 0, ...opts }).sample(Float32Array.from([1, 0.5]), history);
  assert.equal(greedy({ presencePenalty: 0.6 }, [0]), 1); // 1 - 0.6 < 0.5
  assert.equal(greedy({ presencePenalty: 0.6 }, [1]), 0);
  assert.equal(greedy({ frequencyPenalty: 0.2 }, [0, 0]), 0); // 1 - 0.4 > 0.5
  assert.equal(greedy({ frequencyPenalty: 0.2 }, [0, 0, 0]), 1); // 1 - 0.6 < 0.5
  assert.equal(greedy({ frequencyPenalty: 0.2 }, [0, 0, 0, 99]), 1); // unknown ids are ignored
});

Deno.test("sample() as temperature approaches 0 becomes argmax", () => {
  const s = new Sampler({ ...PLAIN, temperature: 1e-6 });
  for (let i = 0; i < 50; i++) {
    const logits = randomLogits(300, 200 + i);
    assert.equal(s.sample(logits, []), argmax(logits));
  }
});

Deno.test("sample() draws a known 3-way distribution at the expected frequencies", () => {
  const p = [0.6, 0.3, 0.1];
  const n = 6000;
  const c = counts(new Sampler({ ...PLAIN, seed: 1234 }), logitsOf(p), n);
  let chi2 = 0;
  for (let i = 0; i < 3; i++) chi2 += (c[i] - n * p[i]) ** 2 / (n * p[i]);
  // 2 degrees of freedom: 13.8 is the 0.1% tail; the seed is fixed, so this never flakes
  assert.ok(chi2 < 13.8, `chi² ${chi2} for counts ${c}`);
  // and temperature 2 flattens it: the rare token becomes more common
  const hot = counts(new Sampler({ ...PLAIN, temperature: 2, seed: 1234 }), logitsOf(p), n);
  assert.ok(hot[2] > c[2] * 1.5, `hot ${hot} vs ${c}`);
});

Deno.test("Sampler() rejects invalid options with the field named", () => {
  assert.throws(() => new Sampler({ temperature: -0.1 }), /temperature/);
  assert.throws(() => new Sampler({ topP: 1.5 }), /topP/);
  assert.throws(() => new Sampler({ topP: 0 }), /topP/);
  assert.throws(() => new Sampler({ topK: 2.5 }), /topK/);
  assert.throws(() => new Sampler({ minP: -1 }), /minP/);
  assert.throws(() => new Sampler({ repeatPenalty: 0 }), /repeatPenalty/);
  assert.throws(() => new Sampler({ seed: -3 }), /seed/);
  // unknown keys (a caller's own fields) are dropped, not rejected
  assert.deepEqual(new Sampler({ maxTokens: 3 } as object).options, new Sampler({}).options);
});

Deno.test("sample() refuses NaN and all -Infinity logits", () => {
  const s = new Sampler(PLAIN);
  assert.throws(() => s.sample(Float32Array.from([0, NaN]), []), /logit 1 is NaN/);
  assert.throws(() => s.sample(Float32Array.from([-Infinity, -Infinity]), []), /-Infinity/);
  assert.equal(s.sample(Float32Array.from([-Infinity, 0]), []), 1);
});

Deno.test("topK() equals the first k of a full sort, ties by lower id", () => {
  const values = randomLogits(32000, 9).map((v) => Math.round(v * 20) / 20); // many ties
  const full = Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
  for (const k of [1, 40, 1000]) assert.deepEqual(Array.from(topK(values, k)), full.slice(0, k));
  assert.deepEqual(Array.from(topK(Float32Array.from([1, 2]), 5)), [1, 0]);
});

Deno.test("logprobs() is a stable log-softmax", () => {
  const lp = logprobs(Float32Array.from([1000, 1000 + Math.log(3)]));
  // 1001.1 as f32 is off by up to 3e-5 (its ulp is 2^-14)
  assert.ok(Math.abs(lp[0] - Math.log(0.25)) < 1e-4, `${lp}`);
  assert.ok(Math.abs(lp[1] - Math.log(0.75)) < 1e-4, `${lp}`);
  const r = logprobs(randomLogits(100, 5));
  assert.ok(Math.abs(r.reduce((s, l) => s + Math.exp(l), 0) - 1) < 1e-5);
});
