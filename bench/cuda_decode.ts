/**
 * Dense decode and prefill speed of the forward pass on the CUDA backend at the Mistral-7B
 * shape (4096, 14336, 32 layers, 32 heads, 8 KV heads, vocab 32000) with random weights made
 * directly in device memory (`CudaBackend.randomWeight`: a 14 GB file would take minutes to
 * write and upload, and the values do not change the speed). Reports, from one run:
 * the read bandwidth of a streaming kernel, the matvec's GB/s per weight shape, prefill
 * tokens/s for a `--prompt`-token prompt (chunks of MAX_BATCH), decode tokens/s, and the host
 * time per decoded token spent outside the synchronising logits read.
 *
 * `--sparse F` makes every FFN sparse (PowerInfer layout) with a rank-`--rank` (1024) low-rank
 * predictor whose per-layer thresholds are calibrated on two tokens to keep a fraction F of
 * the neurons. The activation is swiglu, so every selected neuron also reads its down row
 * (dReLU on random weights would zero ~3/4 of them and flatter the number).
 *
 * @example
 * ```sh
 * deno run -A bench/cuda_decode.ts --dtype f16 --prompt 512 --decode 128 --json out.json
 * deno run -A bench/cuda_decode.ts --sparse 0.1 --prompt 64
 * ```
 *
 * @module
 */

import type { ModelConfig } from "../core/config.ts";
import { parseDType } from "../core/dtype.ts";
import { forward, MAX_BATCH, RunState } from "../core/forward.ts";
import { lowRankPredictor, type Predictor } from "../core/predictor.ts";
import type { DenseFFN, FFNUnit, Layer, SparseFFN, Weights } from "../core/weights.ts";
import { type CudaBackend, type CudaWeight, plugin } from "../plugins/cuda/mod.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const dtype = parseDType(arg("--dtype", "f16"));
const nLayer = Number(arg("--layers", "32"));
const nPrompt = Number(arg("--prompt", "512"));
const nDecode = Number(arg("--decode", "128"));
const jsonPath = arg("--json", "");
const sparse = Number(arg("--sparse", "0")); // fraction of active neurons; 0 = dense FFNs
const rank = Number(arg("--rank", "1024"));

const cfg: ModelConfig = {
  arch: "llama",
  name: "mistral-7b-shape",
  nEmbd: 4096,
  nFF: 14336,
  nLayer,
  nHead: 32,
  nKV: 8,
  headDim: 128,
  nCtx: 4096,
  nVocab: 32000,
  ropeBase: 1e6,
  ropeDim: 128,
  eps: 1e-5,
  nExpert: 0,
  nExpertUsed: 0,
  glu: "swiglu",
  sparseFormat: sparse > 0,
};

const probe = await plugin.probe();
if (probe.score <= 0) throw new Error(`cuda cannot run here: ${probe.reason}`);
const be = await plugin.open() as CudaBackend;
console.log(`device: ${be.device}`);

// U(-a, a) with a = √(3 / cols): unit-variance outputs for unit-variance inputs.
let seed = 1;
const mat = (name: string, rows: number, cols: number) =>
  be.randomWeight(name, dtype, [rows, cols], seed++, Math.sqrt(3 / cols));
const norm = (name: string) => be.randomWeight(name, dtype, [cfg.nEmbd], seed++, 0.1, 1);
const { nEmbd, nFF, nHead, nKV, headDim, nVocab } = cfg;
const t0 = performance.now();
const layers: Layer[] = [];
for (let l = 0; l < nLayer; l++) {
  layers.push({
    attnNorm: norm(`blk.${l}.attn_norm`),
    wq: mat(`blk.${l}.attn_q`, nHead * headDim, nEmbd),
    wk: mat(`blk.${l}.attn_k`, nKV * headDim, nEmbd),
    wv: mat(`blk.${l}.attn_v`, nKV * headDim, nEmbd),
    wo: mat(`blk.${l}.attn_output`, nEmbd, nHead * headDim),
    ffnNorm: norm(`blk.${l}.ffn_norm`),
    ffn: sparse > 0
      ? {
        kind: "sparse",
        layer: l,
        expert: -1,
        gate: mat(`blk.${l}.ffn_gate`, nFF, nEmbd),
        up: mat(`blk.${l}.ffn_up`, nFF, nEmbd),
        downT: mat(`blk.${l}.ffn_down_t`, nFF, nEmbd),
        lowRank: { fc1: mat(`blk.${l}.fc1`, rank, nEmbd), fc2: mat(`blk.${l}.fc2`, nFF, rank) },
        threshold: 0, // calibrated below
      }
      : {
        kind: "dense",
        layer: l,
        expert: -1,
        gate: mat(`blk.${l}.ffn_gate`, nFF, nEmbd),
        up: mat(`blk.${l}.ffn_up`, nFF, nEmbd),
        down: mat(`blk.${l}.ffn_down`, nEmbd, nFF),
      },
  });
}
const w: Weights = {
  tokenEmbd: be.randomWeight("token_embd", dtype, [nVocab, nEmbd], seed++, 1),
  layers,
  outputNorm: norm("output_norm"),
  output: mat("output", nVocab, nEmbd),
};
be.sync();
const ffnBytes = sparse > 0
  ? (rank * nEmbd + nFF * rank + sparse * 3 * nFF * nEmbd) * 2 // predictor + active rows
  : 3 * nFF * nEmbd * 2;
const perLayer = (2 * nHead * headDim * nEmbd + 2 * nKV * headDim * nEmbd) * 2 + ffnBytes;
const tokenBytes = nLayer * perLayer + nVocab * nEmbd * 2; // weights read per decoded token
console.log(
  `weights: ${(tokenBytes / 1e9).toFixed(2)} GB read per token, made in ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

const bandwidth = be.readBandwidth(4 * 2 ** 30, 20);
console.log(`read bandwidth: ${bandwidth.toFixed(0)} GB/s (4 GiB streamed 20 times)`);

// The matvec alone, per shape: GB/s of weights over 50 back-to-back launches.
const matvec: Record<string, number> = {};
const x = be.alloc(nFF), y = be.alloc(nVocab);
be.write(x, new Float32Array(nFF).fill(0.01));
const l0 = layers[0], f0 = l0.ffn as DenseFFN | SparseFFN;
const shapes = { q: l0.wq, k: l0.wk, gate: f0.gate, output: w.output };
for (const [name, wt] of Object.entries(shapes)) {
  const m = wt as CudaWeight;
  for (let i = 0; i < 5; i++) be.matmul(y, m, x, 1);
  be.sync();
  const s = performance.now();
  for (let i = 0; i < 50; i++) be.matmul(y, m, x, 1);
  be.sync();
  matvec[name] = (m.bytes * 50) / ((performance.now() - s) * 1e6);
  console.log(`matvec ${name} [${m.shape.join(", ")}]: ${matvec[name].toFixed(0)} GB/s`);
}

// Time spent inside the synchronising read (waiting for the GPU) vs issuing ops.
let readMs = 0;
const read = be.read.bind(be);
be.read = (src, offset, n) => {
  const s = performance.now();
  const r = read(src, offset, n);
  readMs += performance.now() - s;
  return r;
};

const tokens = Int32Array.from({ length: nPrompt + nDecode + 64 }, (_, i) => (i * 7919) % nVocab);
// Sparse: per-layer thresholds keeping the top `sparse` fraction of two tokens' scores.
let predictor: Predictor | undefined;
if (sparse > 0) {
  const lowRank = lowRankPredictor(be, cfg, w);
  const thresholds = new Float32Array(nLayer);
  const calibrate: Predictor = {
    name: "calibrate",
    scores(unit, h, x, nTok) {
      const s = lowRank.scores(unit, h, x, nTok)!;
      const v = be.read(s.score, 0, nTok * nFF).sort();
      thresholds[unit.layer] = v[Math.floor((1 - sparse) * v.length)];
      return { score: s.score, threshold: thresholds[unit.layer] };
    },
    bytesPerToken: lowRank.bytesPerToken,
  };
  forward(w, cfg, new RunState(be, cfg, 8), tokens.subarray(0, 2), false, { predictor: calibrate });
  predictor = {
    name: "lowrank",
    scores: (u: FFNUnit, h, x, nTok) => ({
      ...lowRank.scores(u, h, x, nTok)!,
      threshold: thresholds[u.layer],
    }),
    bytesPerToken: lowRank.bytesPerToken,
  };
}
const run = { predictor };

const prefill = (st: RunState, n: number) => {
  for (let i = 0; i < n; i += MAX_BATCH) {
    forward(w, cfg, st, tokens.subarray(i, Math.min(n, i + MAX_BATCH)), false, run);
  }
};
// Warm-up: scratch areas grow on first use.
{
  const st = new RunState(be, cfg, nPrompt + nDecode + 8);
  prefill(st, 2 * MAX_BATCH);
  for (let i = 0; i < 4; i++) forward(w, cfg, st, tokens.subarray(i, i + 1), false, run);
}

const st = new RunState(be, cfg, nPrompt + nDecode + 8);
let s = performance.now();
prefill(st, nPrompt);
const prefillS = (performance.now() - s) / 1000;
const prefillTps = nPrompt / prefillS;
console.log(
  `prefill: ${nPrompt} tokens in ${(prefillS * 1000).toFixed(0)} ms = ${
    prefillTps.toFixed(0)
  } tokens/s`,
);

readMs = 0;
s = performance.now();
for (let i = 0; i < nDecode; i++) {
  forward(w, cfg, st, tokens.subarray(nPrompt + i, nPrompt + i + 1), false, run);
}
const decodeMs = performance.now() - s;
const decodeTps = nDecode / (decodeMs / 1000);
const hostMs = (decodeMs - readMs) / nDecode;
console.log(
  `decode: ${nDecode} tokens at context ${nPrompt}..${nPrompt + nDecode}: ` +
    `${decodeTps.toFixed(1)} tokens/s (${(decodeMs / nDecode).toFixed(2)} ms/token, ` +
    `${((tokenBytes * decodeTps) / 1e9).toFixed(0)} GB/s of weights = ` +
    `${((100 * tokenBytes * decodeTps) / 1e9 / bandwidth).toFixed(0)}% of the read bandwidth)`,
);
console.log(
  `host: ${hostMs.toFixed(2)} ms/token issuing ops, ${(readMs / nDecode).toFixed(2)} ms/token ` +
    `waiting in the logits read`,
);
// The last layer's active list of the last token: the fraction the thresholds kept.
const active = sparse > 0 && st.idx ? be.readIndex!(st.idx).length / nFF : 1;
if (sparse > 0) console.log(`sparse: ${(100 * active).toFixed(1)}% active in the last layer`);
if (jsonPath) {
  await Deno.writeTextFile(
    jsonPath,
    JSON.stringify(
      {
        device: be.device,
        dtype: arg("--dtype", "f16"),
        nLayer,
        sparse,
        rank,
        active,
        bandwidth,
        matvec,
        nPrompt,
        prefillTps,
        nDecode,
        decodeTps,
        hostMs,
        date: new Date().toISOString(),
      },
      null,
      2,
    ),
  );
}
be.close();
