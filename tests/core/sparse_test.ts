import assert from "node:assert/strict";
import type { Backend } from "../../core/backend.ts";
import { DType } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import { encodeGGUF } from "../../core/gguf_write.ts";
import { Model } from "../../core/model.ts";
import { toDense } from "../../core/sparse_convert.ts";
import { ffnUnit } from "../../core/sparse.ts";
import type { SparseFFN } from "../../core/weights.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { backendNames, chooseBackend, probeAll } from "../../plugins/registry.ts";
import { synthBytes, type SynthOptions } from "../../tools/synth.ts";
import { lowRankActive, mat, relErr, rows, sparseFFN } from "./_sparse_plain.ts";

const BASE: SynthOptions = {
  arch: "bamboo",
  layout: "powerinfer",
  nEmbd: 64,
  nFF: 96,
  nLayer: 2,
  nHead: 4,
  nKV: 2,
  nCtx: 128,
  nVocab: 320,
  dtype: DType.F16,
  rank: [8, 16],
  activeFraction: 0.3,
  seed: 5,
};

function model(o: SynthOptions, predictor: "lowrank" | "oracle" | "dense" | "cats", be?: Backend) {
  const file = parseGGUF(synthBytes({ ...BASE, ...o }), "sparse.gguf");
  return new Model(file, be ?? new ReferenceBackend(), "sparse.gguf", { predictor });
}

const TOKENS = [1, 17, 42, 99, 5, 260, 31, 7];

Deno.test("loadWeights() reads per-layer ranks and thresholds: absent, PowerInfer's, ours", () => {
  const thr = (o: SynthOptions) =>
    model(o, "lowrank").weights.layers.map((l) => (l.ffn as SparseFFN).threshold);
  assert.deepEqual(thr({}), [0, 0]);
  assert.deepEqual(thr({ threshold: 0.25 }), [0.25, 0.25]);
  assert.deepEqual(thr({ threshold: 0.25, thresholds: [0.5, -1] }), [0.5, -1]);
  const m = model({}, "lowrank");
  const ranks = m.weights.layers.map((l) => (l.ffn as SparseFFN).lowRank!.fc1.shape[0]);
  assert.deepEqual(ranks, [8, 16]);
});

for (
  const [label, o] of [
    ["no threshold key", {}],
    ["powerinfer.sparse_threshold", { threshold: 0.05 }],
    ["turbosparse.sparse_thresholds", { threshold: 0.05, thresholds: [0.1, -0.05] }],
  ] as [string, SynthOptions][]
) {
  Deno.test(`ffnUnit() with the lowrank predictor equals the plain algorithm (${label})`, () => {
    const m = model(o, "lowrank");
    const be = m.backend, st = m.newState(), nTok = 3;
    const h = rows(nTok, 64, 11), x = rows(nTok, 64, 12);
    const hb = be.alloc(nTok * 64), xb = be.alloc(nTok * 64), out = be.alloc(nTok * 64);
    be.write(hb, h);
    be.write(xb, x);
    for (let l = 0; l < 2; l++) {
      const u = m.weights.layers[l].ffn as SparseFFN;
      ffnUnit(be, m.config, st, u, hb, xb, out, nTok, { predictor: m.predictor });
      const got = be.read(out, 0, nTok * 64);
      const p = `blk.${l}.`;
      const [fc1, fc2] = [mat(m.file, p + "fc1.weight"), mat(m.file, p + "fc2.weight")];
      const [g, up, dt] = ["ffn_gate", "ffn_up", "ffn_down_t"].map((n) =>
        mat(m.file, `${p}${n}.weight`)
      );
      let someOff = false;
      for (let t = 0; t < nTok; t++) {
        const active = lowRankActive(fc1, fc2, h.subarray(t * 64, (t + 1) * 64), u.threshold);
        someOff ||= active.length < 96;
        const want = sparseFFN(g, up, dt, x.subarray(t * 64, (t + 1) * 64), active, "drelu");
        const err = relErr(got.subarray(t * 64, (t + 1) * 64), want);
        assert.ok(err < 1e-6, `layer ${l} token ${t}: relative error ${err}`);
      }
      assert.ok(someOff, `layer ${l}: the predictor should skip some neurons`);
      // the last token's list, read back, is the plain active set
      const last = lowRankActive(fc1, fc2, h.subarray(2 * 64), u.threshold);
      assert.deepEqual([...be.readIndex!(st.idx!)], last);
    }
  });
}

Deno.test("forward() with the oracle predictor equals the dense model on every backend with sparse ops", async (t) => {
  const bytes = synthBytes(BASE);
  const sparseFile = parseGGUF(bytes, "sparse.gguf");
  const plan = toDense(sparseFile, "drelu");
  const denseBytes = encodeGGUF(
    plan.entries,
    plan.specs.map((spec, i) => ({ spec, data: plan.produce(i) })),
  );
  const reference = new Model(parseGGUF(denseBytes, "dense.gguf"), new ReferenceBackend(), "dense");
  const want = reference.eval(reference.newState(), TOKENS, true);
  const probes = await probeAll();
  for (const name of backendNames) {
    const probe = probes.find((p) => p.name === name)!.probe;
    const backend = probe.score > 0 ? (await chooseBackend(name)).backend : undefined;
    const has = backend?.gluSparse !== undefined;
    await t.step({
      name: has ? name : `${name} skipped: ${backend ? "no sparse FFN ops yet" : probe.reason}`,
      ignore: !has,
      fn() {
        const m = new Model(sparseFile, backend!, "sparse.gguf", { predictor: "oracle" });
        const got = m.eval(m.newState(), TOKENS, true);
        const err = relErr(got, want);
        assert.ok(err < 1e-5, `${name}: relative logit error ${err}`);
      },
    });
    backend?.close?.();
  }
});

Deno.test("forward() with the oracle equals the dense predictor on a Q8_0 sparse model", () => {
  const o = { dtype: DType.Q8_0 };
  const a = model(o, "oracle"), b = model(o, "dense");
  const err = relErr(a.eval(a.newState(), TOKENS, true), b.eval(b.newState(), TOKENS, true));
  assert.ok(err < 1e-6, `relative logit error ${err}`);
});

Deno.test("forward() refuses a sparse model on a backend without sparse FFN ops", () => {
  const ref = new ReferenceBackend();
  const plain: Backend = {
    name: "plain",
    weight: (t) => ref.weight(t),
    alloc: (n) => ref.alloc(n),
    write: (d, s, o) => ref.write(d, s, o),
    read: (s, o, n) => ref.read(s, o, n),
    copy: (d, dof, s, sof, n) => ref.copy(d, dof, s, sof, n),
    embed: (o, t, tok) => ref.embed(o, t, tok),
    matmul: (o, w, x, n) => ref.matmul(o, w, x, n),
    rmsnorm: (o, x, w, n, e) => ref.rmsnorm(o, x, w, n, e),
    rope: (x, n, h, d, p, r) => ref.rope(x, n, h, d, p, r),
    attention: (o, q, k, v, a) => ref.attention(o, q, k, v, a),
    add: (o, a, b, n) => ref.add(o, a, b, n),
    glu: (o, g, u, n, k) => ref.glu(o, g, u, n, k),
  };
  const m = model({}, "dense", plain);
  assert.throws(
    () => m.eval(m.newState(), [1, 2]),
    /backend "plain" has no sparse FFN ops \(missing allocIndex.*\)/,
  );
});
