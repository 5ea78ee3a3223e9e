import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import { normalQuantile } from "../../tools/_synth_sparse.ts";
import { synthBytes, type SynthOptions } from "../../tools/synth.ts";

const SMALL: SynthOptions = { nEmbd: 64, nFF: 96, nLayer: 2, nVocab: 320 };
const load = (o: SynthOptions) => parseGGUF(synthBytes({ ...SMALL, ...o }), "synth");
const shape = (f: ReturnType<typeof load>, n: string) => [...f.tensors.get(n)!.shape];

Deno.test("synthBytes() writes PowerInfer's layout: PWRI, ffn_down_t, per-layer-rank predictors", () => {
  const f = load({
    arch: "bamboo",
    layout: "powerinfer",
    rank: [8, 32],
    threshold: 0.5,
    thresholds: [1, 2],
  });
  assert.equal(f.magic, "PWRI");
  assert.deepEqual(shape(f, "blk.0.ffn_down_t.weight"), [96, 64]);
  assert.equal(f.tensors.has("blk.0.ffn_down.weight"), false);
  assert.deepEqual(shape(f, "blk.0.fc1.weight"), [8, 64]);
  assert.deepEqual(shape(f, "blk.0.fc2.weight"), [96, 8]);
  assert.deepEqual(shape(f, "blk.1.fc1.weight"), [32, 64]);
  assert.equal(f.tensors.get("blk.1.fc2.weight")!.type, DType.F16);
  assert.equal(f.metadata.get("powerinfer.sparse_threshold"), 0.5);
  assert.deepEqual(f.metadata.get("turbosparse.sparse_thresholds"), [1, 2]);
  assert.equal(load({ layout: "powerinfer" }).metadata.has("powerinfer.sparse_threshold"), false);
});

Deno.test("synthBytes() writes the sparse MoE layout with one predictor per expert", () => {
  const f = load({ arch: "bamboo", layout: "powerinfer", nExpert: 4, nExpertUsed: 2, rank: 8 });
  assert.equal(f.metadata.get("bamboo.expert_count"), 4);
  assert.deepEqual(shape(f, "blk.1.ffn_gate_inp.weight"), [4, 64]);
  assert.deepEqual(shape(f, "blk.1.ffn_gate_exps.weight"), [4, 96, 64]);
  assert.deepEqual(shape(f, "blk.1.ffn_down_t_exps.weight"), [4, 96, 64]);
  assert.deepEqual(shape(f, "blk.1.fc1.3.weight"), [8, 64]);
  assert.deepEqual(shape(f, "blk.1.fc2.3.weight"), [96, 8]);
  const split = load({ nExpert: 2, nExpertUsed: 1, splitExperts: true });
  assert.deepEqual(shape(split, "blk.0.ffn_down.1.weight"), [64, 96]);
  assert.equal(split.tensors.has("blk.0.ffn_gate_exps.weight"), false);
});

Deno.test("normalQuantile() inverts the normal CDF", () => {
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-6);
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-4);
  assert.ok(Math.abs(normalQuantile(0.1) + 1.281552) < 1e-4);
});

Deno.test("synthBytes() refuses sparse options that do not fit the model", () => {
  assert.throws(
    () => load({ layout: "powerinfer", rank: [8] }),
    /rank has 1 entries, expected nLayer 2/,
  );
  assert.throws(
    () => load({ layout: "powerinfer", activeFraction: 1 }),
    /activeFraction must be in/,
  );
  assert.throws(() => load({ layout: "powerinfer", thresholds: [1] }), /thresholds has 1 entries/);
  assert.throws(
    () => load({ arch: "bamboo", nExpert: 2, nExpertUsed: 1 }),
    /experts need arch "llama"/,
  );
});
