/**
 * The CUDA plugin: the shared conformance suite (skipped with the probe's reason where no
 * GPU runs), the sources compiling with nvcc (skipped where nvcc is absent), and cases the
 * shared suite does not reach: the tensor-core GEMM (more than 8 tokens), split attention
 * (long contexts), fused matvec chains and decode steps. The sparse decode paths are in
 * cuda_sparse_test.ts.
 */

import assert from "node:assert/strict";
import type { Backend } from "../../core/backend.ts";
import type { ModelConfig } from "../../core/config.ts";
import { DType, dtypeName } from "../../core/dtype.ts";
import { decodeGreedy, forward, RunState } from "../../core/forward.ts";
import { argmax } from "../../core/sampler.ts";
import type { Layer, Weights } from "../../core/weights.ts";
import { ABI_VERSION, SYMBOLS } from "../../plugins/cuda/_ffi.ts";
import { buildLibrary, findNvcc } from "../../plugins/cuda/_build.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { conformance, runCase, TOLERANCE } from "../conformance.ts";
import {
  type ConformanceCase,
  normals,
  output,
  result,
  seedOf,
  upload,
  weightOf,
} from "../_conformance_util.ts";
import { gpuTest, near, probe } from "./_cuda_gpu.ts";

await conformance("cuda");

const nvcc = await findNvcc();

Deno.test("cuda probe() scores 100 with a GPU, else 0 with a reason", () => {
  if (probe.score !== 100 && (probe.score !== 0 || !probe.reason)) {
    throw new Error(`score ${probe.score} "${probe.reason}"`);
  }
});

Deno.test({
  name: "kernels/cuda compile with nvcc and export the ABI" + (nvcc ? "" : " — skipped: no nvcc"),
  ignore: !nvcc,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ts_cuda_" });
    try {
      const path = await buildLibrary(nvcc!, `${dir}/libts_cuda.so`, dir);
      // dlopen needs no GPU (the static runtime loads the driver lazily) and checks that
      // every symbol of the FFI table is exported.
      const lib = Deno.dlopen(path, SYMBOLS);
      try {
        const abi = lib.symbols.ts_cuda_abi_version();
        if (abi !== ABI_VERSION) throw new Error(`ABI ${abi}, expected ${ABI_VERSION}`);
      } finally {
        lib.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function gemmCase(type: DType, rows: number, cols: number, nTok: number): ConformanceCase {
  const name = `matmul ${dtypeName(type)} [${rows}, ${cols}] nTok=${nTok}`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.matmul[dtypeName(type)],
    minScale: Math.sqrt(cols),
    op(b) {
      const w = weightOf(b, type, [rows, cols], normals(rows * cols, seed));
      const x = upload(b, normals(nTok * cols, seed + 1));
      const out = output(b, nTok * rows);
      b.matmul(out, w, x, nTok);
      return result(b, out, nTok * rows, name);
    },
  };
}

function longAttention(nTok: number, pos0: number, nHead: number, nKV: number): ConformanceCase {
  const headDim = 128, name = `attention nTok=${nTok} pos0=${pos0} nHead=${nHead} nKV=${nKV}`;
  const seed = seedOf(name), used = (pos0 + nTok) * nKV * headDim;
  return {
    name,
    tolerance: TOLERANCE.attention,
    op(b) {
      const q = upload(b, normals(nTok * nHead * headDim, seed, 2));
      const k = upload(b, normals(used, seed + 1));
      const v = upload(b, normals(used, seed + 2));
      const out = output(b, nTok * nHead * headDim);
      b.attention(out, q, k, v, { nTok, pos0, nHead, nKV, headDim, scale: 1 / Math.sqrt(headDim) });
      return result(b, out, nTok * nHead * headDim, name);
    },
  };
}

// One token: rmsnorm → matmul → residual add, which the CUDA queue runs as one fused matvec
// (norm prologue, add epilogue); returns the residual and the normed x.
function fusedChain(type: DType, rows: number, cols: number): ConformanceCase {
  const name = `rmsnorm → matmul ${dtypeName(type)} [${rows}, ${cols}] → add, one token`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.matmul[dtypeName(type)],
    minScale: Math.sqrt(cols),
    op(b) {
      const w = weightOf(b, type, [rows, cols], normals(rows * cols, seed));
      const nw = weightOf(b, DType.F32, [cols], normals(cols, seed + 1));
      const x = upload(b, normals(cols, seed + 2, 3));
      const res = upload(b, normals(rows, seed + 3));
      const xn = output(b, cols), out = output(b, rows);
      b.rmsnorm(xn, x, nw, 1, 1e-5);
      b.matmul(out, w, xn, 1);
      b.add(res, res, out, rows);
      const r = new Float32Array(rows + cols);
      r.set(b.read(res, 0, rows));
      r.set(result(b, xn, cols, name), rows);
      return r;
    },
  };
}

// One token: rmsnorm of x, then a matvec of x itself (not the normed x), as the predictor's
// fc1 runs beside the FFN norm: the CUDA queue stores the norm from the matvec's prologue.
function sideNorm(type: DType, rows: number, cols: number): ConformanceCase {
  const name = `rmsnorm of x beside matmul ${dtypeName(type)} [${rows}, ${cols}] of x, one token`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.matmul[dtypeName(type)],
    minScale: Math.sqrt(cols),
    op(b) {
      const w = weightOf(b, type, [rows, cols], normals(rows * cols, seed));
      const nw = weightOf(b, DType.F32, [cols], normals(cols, seed + 1));
      const x = upload(b, normals(cols, seed + 2, 3));
      const xn = output(b, cols), out = output(b, rows);
      b.rmsnorm(xn, x, nw, 1, 1e-5);
      b.matmul(out, w, x, 1);
      b.unary!(out, out, rows, "relu");
      const r = new Float32Array(rows + cols);
      r.set(b.read(out, 0, rows));
      r.set(result(b, xn, cols, name), rows);
      return r;
    },
  };
}

// Sparse down then the residual add of its output, which the CUDA queue runs in the down's
// last kernel; returns the residual and the down output.
function downThenAdd(type: DType, nFF: number, cols: number, nActive: number): ConformanceCase {
  const name = `downSparse ${dtypeName(type)} [${nFF}, ${cols}] ${nActive} rows → add`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.matmul[dtypeName(type)],
    minScale: Math.sqrt(nActive),
    op(b) {
      const w = weightOf(b, type, [nFF, cols], normals(nFF * cols, seed));
      const ids = Int32Array.from({ length: nActive }, (_, k) => Math.floor((k * nFF) / nActive));
      const idx = b.allocIndex!(nFF);
      b.writeIndex!(idx, ids);
      const act = upload(b, normals(nActive, seed + 1).map((v, k) => (k % 3 === 0 ? 0 : v)));
      const res = upload(b, normals(cols, seed + 2));
      const o = output(b, cols);
      b.downSparse!(o, 0, w, act, idx);
      b.add(res, res, o, cols);
      const r = new Float32Array(2 * cols);
      r.set(b.read(res, 0, cols));
      r.set(result(b, o, cols, name), cols);
      return r;
    },
  };
}

const EXTRA = [
  sideNorm(DType.F16, 1024, 4096),
  sideNorm(DType.BF16, 64, 256),
  downThenAdd(DType.F16, 2048, 4096, 300),
  downThenAdd(DType.Q8_0, 512, 256, 100),
  fusedChain(DType.F16, 4096, 4096),
  fusedChain(DType.BF16, 300, 1024),
  fusedChain(DType.F16, 100, 50), // cols not a multiple of 8: the plain ops
  ...[DType.F16, DType.BF16].flatMap((t) => [
    gemmCase(t, 100, 1024, 9),
    gemmCase(t, 37, 256, 64),
    gemmCase(t, 300, 4096, 70),
  ]),
  gemmCase(DType.F16, 7, 50, 20), // cols not a multiple of 32: the matvec loop
  gemmCase(DType.F16, 3000, 1024, 1), // one token, short rows: two rows per block step
  gemmCase(DType.BF16, 77, 512, 1),
  gemmCase(DType.Q8_0, 64, 1024, 20),
  // Q8_0 and Q4_0 in the device's groups of 8 blocks (Q4_0: values 2k, 2k + 1 in byte k): x in
  // registers as int8, a short last group, the fused prologue and epilogues (a quantised
  // predictor's fc1 and fc2)
  ...[DType.Q8_0, DType.Q4_0].flatMap((t) => [
    gemmCase(t, 3000, 1024, 1),
    gemmCase(t, 77, 288, 1),
    gemmCase(t, 33, 288, 5),
    sideNorm(t, 1024, 4096),
    fusedChain(t, 300, 1056),
    downThenAdd(t, 600, 4096, 200),
  ]),
  longAttention(1, 1000, 8, 2),
  longAttention(64, 448, 8, 2),
  longAttention(3, 2000, 32, 8),
  longAttention(1, 4000, 32, 8),
  longAttention(1, 100, 8, 8),
];

gpuTest("cuda matches the reference on the GEMM and split-attention paths", async (b, t) => {
  const reference = new ReferenceBackend();
  for (const c of EXTRA) await t.step(c.name, () => runCase(c, b, reference));
});

gpuTest("cuda prefill matmuls (split along K) give the same bits on every run", (b) => {
  // [type, rows, cols, tokens]: split 8, 16 and 4 ways on an H200's 132 multiprocessors.
  const shapes: [DType, number, number, number][] = [
    [DType.F16, 4096, 4096, 64],
    [DType.F16, 1024, 2048, 40],
    [DType.BF16, 2048, 4096, 17],
  ];
  for (const [type, rows, cols, nTok] of shapes) {
    const w = weightOf(b, type, [rows, cols], normals(rows * cols, rows));
    const x = upload(b, normals(nTok * cols, cols)), y = b.alloc(nTok * rows);
    const first = (b.matmul(y, w, x, nTok), b.read(y, 0, nTok * rows));
    for (let run = 1; run < 5; run++) {
      b.matmul(y, w, x, nTok);
      const again = b.read(y, 0, nTok * rows);
      const i = again.findIndex((v, k) => !Object.is(v, first[k]));
      if (i >= 0) {
        throw new Error(
          `${dtypeName(type)} ${rows}×${cols}, ${nTok} tokens, run ${run}: ` +
            `[${i}] ${again[i]} vs ${first[i]}`,
        );
      }
    }
  }
});

gpuTest("cuda decode attention merged in a cluster matches the merge launch", (b) => {
  // 32 positions per split: nCtx 500 a cluster of 16, nCtx 250 of 8, nCtx 100 of 4
  for (const [nCtx, clusters] of [[500, [16]], [250, [8]], [100, [16]]] as const) {
    const cfg = { ...TINY, nCtx }, n = nCtx - 10;
    const tokens = Int32Array.from({ length: n }, (_, i) => (i * 53 + 3) % cfg.nVocab);
    const w = tinyModel(b, cfg);
    const [launched, ...merged] = [0, ...clusters].map((blocks) => {
      b.switches.attentionCluster(blocks);
      const st = new RunState(b, cfg, cfg.nCtx), out: Float32Array[] = [];
      forward(w, cfg, st, tokens.subarray(0, 3));
      for (let t = 3; t < 9; t++) out.push(forward(w, cfg, st, tokens.subarray(t, t + 1)));
      for (let t = 9; t < n - 40; t += 40) forward(w, cfg, st, tokens.subarray(t, t + 40));
      for (let t = st.pos; t < n; t++) out.push(forward(w, cfg, st, tokens.subarray(t, t + 1)));
      return out;
    });
    b.switches.attentionCluster(8); // the default
    merged.forEach((run, i) => {
      if (run.length !== launched.length) {
        throw new Error(`${run.length} steps vs ${launched.length}`);
      }
      run.forEach((l, t) => {
        near(`nCtx ${nCtx}, cluster ${clusters[i]}, decode step ${t}`, l, launched[t], 1e-5);
      });
    });
  }
});

gpuTest(
  "cuda matvec with odd steps through shared memory (prefetch 6) gives prefetch 2's bits",
  (b) => {
    const shapes: [DType, number, number][] = [
      [DType.F16, 4096, 4096], // 3 steps per block
      [DType.F16, 6000, 1024], // two rows per step (SPLIT 2)
      [DType.BF16, 1000, 3072],
      [DType.F16, 64, 4096], // one step
      [DType.Q8_0, 1024, 4096], // not staged: the flag changes nothing
    ];
    for (const [type, rows, cols] of shapes) {
      const w = weightOf(b, type, [rows, cols], normals(rows * cols, rows + cols));
      const x = upload(b, normals(cols, 5)), y = b.alloc(rows), out: Float32Array[] = [];
      for (const prefetch of [2, 6]) {
        b.switches.matvecConfig(0, 0, prefetch);
        b.write(y, new Float32Array(rows).fill(NaN));
        b.matmul(y, w, x, 1);
        out.push(b.read(y, 0, rows));
      }
      b.switches.matvecConfig(0, 0, 6); // the default
      const i = out[0].findIndex((v, k) => !Object.is(v, out[1][k]));
      if (i >= 0) {
        throw new Error(`${dtypeName(type)} ${rows}×${cols}: [${i}] ${out[1][i]} vs ${out[0][i]}`);
      }
      if (out[0].some((v) => !Number.isFinite(v))) throw new Error(`${rows}×${cols}: not finite`);
    }
  },
);

// A small F16 model (rows of more than 1024 columns, so Q/K/V take matvec_xreg's one-row steps;
// rope over half of each head).
function tinyModel(b: Backend, cfg: ModelConfig): Weights {
  const { nEmbd, nFF, nHead, nKV, headDim, nVocab } = cfg;
  let seed = 11;
  const mat = (rows: number, cols: number) =>
    weightOf(b, DType.F16, [rows, cols], normals(rows * cols, seed++, Math.sqrt(1 / cols)));
  const norm = () => weightOf(b, DType.F32, [nEmbd], normals(nEmbd, seed++, 0.1).map((v) => 1 + v));
  const layers: Layer[] = [];
  for (let l = 0; l < cfg.nLayer; l++) {
    layers.push({
      attnNorm: norm(),
      wq: mat(nHead * headDim, nEmbd),
      wk: mat(nKV * headDim, nEmbd),
      wv: mat(nKV * headDim, nEmbd),
      wo: mat(nEmbd, nHead * headDim),
      ffnNorm: norm(),
      ffn: {
        kind: "dense",
        layer: l,
        expert: -1,
        gate: mat(nFF, nEmbd),
        up: mat(nFF, nEmbd),
        down: mat(nEmbd, nFF),
      },
    });
  }
  return { tokenEmbd: mat(nVocab, nEmbd), layers, outputNorm: norm(), output: mat(nVocab, nEmbd) };
}

// A one-layer F16 model (head_dim 128, rope over 64 dims, 4 heads per KV head).
const TINY: ModelConfig = {
  arch: "llama",
  name: "tiny-f16",
  nEmbd: 2048,
  nFF: 1024,
  nLayer: 1,
  nHead: 16,
  nKV: 4,
  headDim: 128,
  nCtx: 96,
  nVocab: 256,
  ropeBase: 10000,
  ropeDim: 64,
  eps: 1e-5,
  nExpert: 0,
  nExpertUsed: 0,
  glu: "swiglu",
  sparseFormat: false,
};

gpuTest("cuda decode steps of a small F16 model give the reference's logits", (b) => {
  const tokens = Int32Array.from({ length: 8 }, (_, i) => (i * 37 + 5) % TINY.nVocab);
  const decode = (be: Backend) => {
    const w = tinyModel(be, TINY), st = new RunState(be, TINY, TINY.nCtx);
    const out: Float32Array[] = [];
    forward(w, TINY, st, tokens.subarray(0, 4));
    for (let t = 4; t < tokens.length; t++) {
      out.push(forward(w, TINY, st, tokens.subarray(t, t + 1)));
    }
    return out;
  };
  const want = decode(new ReferenceBackend());
  decode(b).forEach((l, t) => near(`decode step ${t}`, l, want[t], 1e-3));
});

gpuTest(
  "cuda decode steps with the rope and KV store inside attention match separate launches",
  (b) => {
    const tokens = Int32Array.from({ length: 9 }, (_, i) => (i * 53 + 3) % TINY.nVocab);
    const w = tinyModel(b, TINY);
    const [inside, apart] = [true, false].map((on) => {
      b.switches.ropeInAttention(on);
      const st = new RunState(b, TINY, TINY.nCtx), out: Float32Array[] = [];
      forward(w, TINY, st, tokens.subarray(0, 3));
      for (let t = 3; t < tokens.length; t++) {
        out.push(forward(w, TINY, st, tokens.subarray(t, t + 1)));
      }
      return out;
    });
    // Steps 0 and 1 run op by op and are captured; later ones replay the graph.
    inside.forEach((l, t) => near(`decode step ${t}`, l, apart[t], 1e-6));
  },
);

gpuTest("cuda greedy decoding on the device picks the host argmax loop's tokens", (b) => {
  const w = tinyModel(b, TINY);
  const prompt = Int32Array.from({ length: 5 }, (_, i) => (i * 41 + 7) % TINY.nVocab);
  const start = (prompt[4] * 3) % TINY.nVocab;
  // host: forward, read the logits, argmax
  const sh = new RunState(b, TINY, TINY.nCtx);
  forward(w, TINY, sh, prompt);
  const want: number[] = [];
  for (let i = 0, tok = start; i < 37; i++) {
    tok = argmax(forward(w, TINY, sh, Int32Array.of(tok)));
    want.push(tok);
  }
  // device: chunks of 3 (op by op, captured, replayed), then 9, 17 and 8 (replays), each
  // fed the last pick
  const sg = new RunState(b, TINY, TINY.nCtx);
  forward(w, TINY, sg, prompt);
  const got: number[] = [];
  for (const n of [3, 9, 17, 8]) {
    const out = decodeGreedy(w, TINY, sg, got.length ? got[got.length - 1] : start, n);
    assert.ok(out, "the CUDA backend decodes greedy on the device");
    got.push(...out);
  }
  assert.deepEqual(got, want);
  assert.equal(sg.pos, prompt.length + 37);
  assert.throws(
    () => decodeGreedy(w, TINY, sg, 0, TINY.nCtx),
    /context full/,
  );
  // NaN logits: the host sampler refuses them, so does the device's pick
  const vals = normals(TINY.nVocab * TINY.nEmbd, 99, 0.02);
  vals.fill(NaN, 7 * TINY.nEmbd, 8 * TINY.nEmbd);
  const bad = { ...w, output: weightOf(b, DType.F16, [TINY.nVocab, TINY.nEmbd], vals) };
  const sn = new RunState(b, TINY, TINY.nCtx);
  forward(w, TINY, sn, prompt);
  assert.throws(() => decodeGreedy(bad, TINY, sn, start, 4), /contain NaN/);
});
