import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import { encodeGGUF } from "../../core/gguf_write.ts";
import { Model } from "../../core/model.ts";
import { calibrateCats } from "../../core/sparse_calibrate.ts";
import { toPowerInfer } from "../../core/sparse_convert.ts";
import { ffnUnit } from "../../core/sparse.ts";
import type { SparseFFN } from "../../core/weights.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { synthBytes } from "../../tools/synth.ts";
import { glu, mat, matvec, relErr, rows } from "./_sparse_plain.ts";

const DENSE = synthBytes({
  nEmbd: 64,
  nFF: 128,
  nLayer: 2,
  nVocab: 320,
  dtype: DType.F32,
  seed: 4,
});
const TEXT = ["the quick brown fox jumps over the lazy dog", "hello world, it is a fine day"];

function load(bytes: Uint8Array): Model {
  return new Model(parseGGUF(bytes, "m.gguf"), new ReferenceBackend(), "m.gguf");
}

/** The dense SwiGLU model in PowerInfer's layout with the given cats thresholds. */
function withCats(thresholds: number[]): Model {
  const plan = toPowerInfer(parseGGUF(DENSE, "m.gguf"), "swiglu", { catsThresholds: thresholds });
  return load(
    encodeGGUF(plan.entries, plan.specs.map((spec, i) => ({ spec, data: plan.produce(i) }))),
  );
}

Deno.test("calibrateCats() picks thresholds that skip the asked fraction on its text", async () => {
  const t = calibrateCats(load(DENSE), TEXT, 0.5);
  assert.equal(t.length, 2);
  assert.ok(t.every((v) => v > 0), `${t}`);
  const m = withCats([...t]);
  m.setPredictor("cats");
  const gen = m.generate(TEXT[0], { maxTokens: 1, temperature: 0, sparsity: {} });
  for await (const _ of gen) { /* drain */ }
  const kept = gen.stats!.sparsity!.predictedActive;
  assert.ok(Math.abs(kept - 0.5) < 0.05, `kept ${kept}`);
  assert.ok(calibrateCats(load(DENSE), TEXT, 0.9).every((v, i) => v > t[i]));
});

Deno.test("cats predictor with threshold 0 keeps every neuron and equals the dense model", () => {
  const dense = load(DENSE);
  const cats = withCats([0, 0]);
  cats.setPredictor("cats");
  const tokens = [1, 40, 77, 300, 12];
  const err = relErr(
    cats.eval(cats.newState(), tokens, true),
    dense.eval(dense.newState(), tokens, true),
  );
  assert.ok(err < 1e-6, `relative error ${err}`);
});

Deno.test("ffnUnit() with the cats predictor equals the plain CATS algorithm", () => {
  const m = withCats([0.05, 0.1]);
  m.setPredictor("cats");
  const be = m.backend, st = m.newState();
  const x = rows(2, 64, 3);
  const xb = be.alloc(128), out = be.alloc(128);
  be.write(xb, x);
  for (let l = 0; l < 2; l++) {
    const u = m.weights.layers[l].ffn as SparseFFN;
    ffnUnit(be, m.config, st, u, xb, xb, out, 2, { predictor: m.predictor });
    const got = be.read(out, 0, 128);
    const [g, up, dt] = ["ffn_gate", "ffn_up", "ffn_down_t"].map((n) =>
      mat(m.file, `blk.${l}.${n}.weight`)
    );
    for (let t = 0; t < 2; t++) {
      const xt = x.subarray(t * 64, (t + 1) * 64);
      const gv = matvec(g, xt), uv = matvec(up, xt);
      const want = new Float64Array(64);
      let kept = 0;
      for (let i = 0; i < 128; i++) {
        if (Math.abs(gv[i] / (1 + Math.exp(-gv[i]))) < Math.fround(u.catsThreshold!)) continue;
        kept++;
        const a = Math.fround(glu(gv[i], uv[i], "swiglu"));
        for (let j = 0; j < 64; j++) want[j] += a * dt.data[i * 64 + j];
      }
      assert.ok(kept > 0 && kept < 128, `layer ${l}: kept ${kept}`);
      const err = relErr(got.subarray(t * 64, (t + 1) * 64), want);
      assert.ok(err < 1e-6, `layer ${l} token ${t}: ${err}`);
    }
  }
});

Deno.test("cats predictor on a dense-layout model says to convert it", () => {
  const m = load(DENSE);
  m.setPredictor("cats");
  assert.throws(() => m.eval(m.newState(), [1, 2]), /needs the sparse layout \(ffn_down_t\)/);
});
