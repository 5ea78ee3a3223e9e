import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import { Model } from "../../core/model.ts";
import { moeFFN } from "../../core/moe.ts";
import { mixtralRouter } from "../../core/router.ts";
import type { MoEFFN, SparseFFN } from "../../core/weights.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { synthBytes, type SynthOptions } from "../../tools/synth.ts";
import { denseFFN, lowRankActive, mat, matvec, relErr, rows, sparseFFN } from "./_sparse_plain.ts";

const MIXTRAL: SynthOptions = {
  nEmbd: 64,
  nFF: 96,
  nLayer: 2,
  nVocab: 320,
  nExpert: 4,
  nExpertUsed: 2,
  dtype: DType.F32,
  seed: 8,
};
const SPARSE_MOE: SynthOptions = {
  ...MIXTRAL,
  arch: "bamboo",
  layout: "powerinfer",
  rank: [8, 16],
  activeFraction: 0.3,
  thresholds: [0, 0.02, -0.02, 0.01, 0, 0, 0.03, -0.01],
};

function load(o: SynthOptions, predictor?: "lowrank" | "oracle"): Model {
  return new Model(parseGGUF(synthBytes(o), "moe.gguf"), new ReferenceBackend(), "moe.gguf", {
    predictor,
  });
}

Deno.test("mixtralRouter.route() keeps the top k, ties to the lower id, renormalised", () => {
  const a = mixtralRouter.route(Float32Array.from([1, 3, 2, 3]), 2);
  assert.deepEqual([...a.ids], [1, 3]);
  assert.deepEqual([...a.weights], [0.5, 0.5]);
  const b = mixtralRouter.route(Float32Array.from([0, Math.log(3), -5]), 2);
  assert.deepEqual([...b.ids], [1, 0]);
  assert.ok(Math.abs(b.weights[0] - 0.75) < 1e-6 && Math.abs(b.weights[1] - 0.25) < 1e-6);
});

/** The plain MoE of layer `l`: softmax top-k over router · x, renormalised, mixed. */
function plainMoE(
  m: Model,
  l: number,
  h: Float32Array,
  x: Float32Array,
  kind: "dense" | "oracle" | "lowrank",
) {
  const f = m.file, p = `blk.${l}.`, sparse = f.tensors.has(`${p}ffn_down_t_exps.weight`);
  const logits = Array.from(matvec(mat(f, p + "ffn_gate_inp.weight"), x));
  const top = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b).slice(0, 2);
  const z = top.reduce((s, e) => s + Math.exp(logits[e]), 0);
  const out = new Float64Array(64);
  for (const e of top) {
    const w = Math.exp(logits[e]) / z;
    const g = mat(f, p + "ffn_gate_exps.weight", e), u = mat(f, p + "ffn_up_exps.weight", e);
    let y: Float64Array;
    if (!sparse) y = denseFFN(g, u, mat(f, p + "ffn_down_exps.weight", e), x, m.config.glu);
    else {
      const all = Array.from({ length: 96 }, (_, i) => i);
      const thr = (m.weights.layers[l].ffn as MoEFFN).experts[e] as SparseFFN;
      const active = kind === "lowrank"
        ? lowRankActive(
          mat(f, `${p}fc1.${e}.weight`),
          mat(f, `${p}fc2.${e}.weight`),
          h,
          thr.threshold,
        )
        : all;
      y = sparseFFN(g, u, mat(f, p + "ffn_down_t_exps.weight", e), x, active, "drelu");
    }
    for (let j = 0; j < 64; j++) out[j] += w * Math.fround(y[j]);
  }
  return out;
}

for (
  const [label, o, kind] of [
    ["Mixtral experts", MIXTRAL, "dense"],
    ["sparse dReLU experts, oracle", SPARSE_MOE, "oracle"],
    ["sparse dReLU experts, per-expert lowrank predictors", SPARSE_MOE, "lowrank"],
  ] as const
) {
  Deno.test(`moeFFN() routes and mixes like the plain computation (${label})`, () => {
    const m = load(o, kind === "dense" ? undefined : kind);
    const be = m.backend, st = m.newState(), nTok = 3;
    const h = rows(nTok, 64, 21), x = rows(nTok, 64, 22);
    const hb = be.alloc(nTok * 64), xb = be.alloc(nTok * 64), out = be.alloc(nTok * 64);
    be.write(hb, h);
    be.write(xb, x);
    for (let l = 0; l < 2; l++) {
      const ffn = m.weights.layers[l].ffn as MoEFFN;
      moeFFN(be, m.config, st, ffn, hb, xb, out, nTok, { predictor: m.predictor });
      const got = be.read(out, 0, nTok * 64);
      for (let t = 0; t < nTok; t++) {
        const r = (a: Float32Array) => a.subarray(t * 64, (t + 1) * 64);
        const err = relErr(r(got), plainMoE(m, l, r(h), r(x), kind));
        assert.ok(err < 1e-5, `layer ${l} token ${t}: relative error ${err}`);
      }
    }
  });
}

for (
  const [label, o] of [
    ["Mixtral 3-D experts", MIXTRAL],
    ["Mixtral per-expert tensors", { ...MIXTRAL, splitExperts: true }],
    ["sparse MoE", SPARSE_MOE],
  ] as const
) {
  Deno.test(`Model.generate() runs a ${label} fixture`, async () => {
    const m = load(o);
    const gen = m.generate("hello world", { maxTokens: 5, temperature: 0, sparsity: {} });
    let text = "";
    for await (const piece of gen) text += piece;
    assert.ok(gen.stats!.generatedTokens > 0 || gen.stats!.stopReason === "eos");
    // every visited expert is one of 4 per layer, 2 used per token
    const units = gen.stats!.sparsity!.units;
    assert.ok(units.every((u) => u.expert >= 0 && u.expert < 4 && u.layer < 2));
    const visits = units.reduce((s, u) => s + u.tokens, 0);
    assert.equal(visits, gen.stats!.sparsity!.tokens * 2 * 2);
    assert.equal(m.predictor.name, o.layout === "powerinfer" ? "lowrank" : "dense");
    assert.equal(typeof text, "string");
  });
}
