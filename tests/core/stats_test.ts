import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import { Model } from "../../core/model.ts";
import type { PredictorKind } from "../../core/predictor.ts";
import type { SparsityStats } from "../../core/stats.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { synthBytes, type SynthOptions } from "../../tools/synth.ts";

const OPTS: SynthOptions = {
  arch: "bamboo",
  layout: "powerinfer",
  nEmbd: 64,
  nFF: 128,
  nLayer: 2,
  nVocab: 320,
  dtype: DType.F16,
  rank: 16,
  activeFraction: 0.2,
  seed: 9,
};

async function stats(kind: PredictorKind, compareOracle = true): Promise<SparsityStats> {
  const m = new Model(parseGGUF(synthBytes(OPTS), "s.gguf"), new ReferenceBackend(), "s", {
    predictor: kind,
  });
  const gen = m.generate("the cat sat", {
    maxTokens: 6,
    temperature: 0,
    sparsity: { compareOracle },
  });
  for await (const _ of gen) { /* drain */ }
  return gen.stats!.sparsity!;
}

Deno.test("generate() stats: the oracle has recall and precision 1 and reads fewer bytes", async () => {
  const s = await stats("oracle");
  assert.equal(s.predictor, "oracle");
  assert.equal(s.units.length, 2);
  assert.equal(s.recall, 1);
  assert.equal(s.precision, 1);
  assert.ok(Math.abs(s.predictedActive - s.trueActive!) < 1e-12);
  // dReLU on random weights: both gate and up positive for about a quarter of the neurons
  assert.ok(s.trueActive! > 0.1 && s.trueActive! < 0.4, `true active ${s.trueActive}`);
  assert.ok(s.bytesPerToken < s.denseBytesPerToken);
  assert.ok(s.tokens >= 4);
});

Deno.test("generate() stats: the dense predictor's precision is the true-active fraction", async () => {
  const s = await stats("dense");
  assert.equal(s.predictedActive, 1);
  assert.equal(s.recall, 1);
  assert.ok(Math.abs(s.precision! - s.trueActive!) < 1e-12);
});

Deno.test("generate() stats: the lowrank predictor's fraction follows the synth hint", async () => {
  const s = await stats("lowrank");
  assert.ok(s.predictedActive > 0.1 && s.predictedActive < 0.3, `${s.predictedActive}`);
  for (const u of s.units) {
    assert.ok(u.recall! >= 0 && u.recall! <= 1 && u.precision! >= 0 && u.precision! <= 1);
    assert.ok(u.bytesPerToken > 0);
  }
  // bytes: predictor + the active rows, far below the dense FFN
  assert.ok(s.bytesPerToken < 0.5 * s.denseBytesPerToken, `${s.bytesPerToken}`);
  const off = await stats("lowrank", false);
  assert.equal(off.recall, undefined);
  assert.equal(off.trueActive, undefined);
});
