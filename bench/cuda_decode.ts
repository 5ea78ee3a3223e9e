/**
 * Dense decode and prefill speed of the forward pass on the CUDA backend at the Mistral-7B
 * shape (4096, 14336, 32 layers, 32 heads, 8 KV heads, vocab 32000) with random weights made
 * directly in device memory (`CudaBackend.randomWeight`: a 14 GB file would take minutes to
 * write and upload, and the values do not change the speed). Reports, from one run:
 * the read bandwidth of a streaming kernel, the matvec's GB/s per weight shape, prefill
 * tokens/s for a `--prompt`-token prompt (chunks of MAX_BATCH), decode tokens/s, and the host
 * time per decoded token spent outside the synchronising logits read.
 *
 * `--mv grid,wpr,prefetch` sets the matvec launch shape for prefill and decode (default
 * `0,0,6`: the first step's rows in registers and the second's in shared memory before the PDL
 * wait, then F16/BF16 odd steps through shared memory; `0,0,2` registers only; `0,0,1` only
 * asks L2 for the first rows; `3,0,1` is the general kernel without matvec_xreg.cu); the
 * per-shape table (bench/_cuda_kernels.ts) sweeps several and checks that the two kernels agree.
 *
 * `--rope-attn 0` gives a decode step's rope and KV-cache store their own launch again (default
 * 1: inside the attention launch).
 *
 * `--sel-glu 0` makes the predictor's fused select complete the index list itself (default 1:
 * it leaves per-block lists, and the gathered glu that follows places them).
 *
 * `--down-cols 0` runs the sparse down as split partial sums plus a sum launch (default 1: one
 * launch of 32-column blocks over every listed row).
 *
 * `--attn-cluster N` merges decode attention's splits of a KV head inside a thread-block cluster
 * when there are at most N (default 8: contexts of up to 256 positions), else by a merge launch
 * (N = 0: always).
 *
 * `--trace` reports what each kernel adds to a decode step (bench/_cuda_trace.ts): block 0 of
 * every kernel records when its PDL wait returned. `--trace-greedy` does the same for 8 steps
 * of greedy decoding on the device (each step ends with its argmax kernel, and the last row is
 * the gap from one step's argmax to the next step's first kernel).
 *
 * After the host loop, the same decode greedy on the device (`decodeGreedy`: the argmax is
 * picked and fed on the GPU, `--greedy-chunk` (16) steps per host round trip) on a fresh
 * state, then again over the same positions with its graph captured ("captured"), checked to
 * pick the same tokens as the host's argmax loop.
 *
 * `--repeat N` runs prefill and decode N more times on fresh states and reports how far their
 * last logits are from the first run's (0: the same bits every run).
 *
 * `--sparse F` makes every FFN sparse (PowerInfer layout) with a rank-`--rank` (1024) low-rank
 * predictor whose per-layer thresholds are calibrated on two tokens to keep a fraction F of
 * the neurons (`--pred q8_0|q4_0`: quantised predictor weights, in the device's group layouts).
 * The activation is swiglu, so every selected neuron also reads its down row (dReLU on random
 * weights would zero ~3/4 of them and flatter the number).
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
import { blockOf, DType, parseDType } from "../core/dtype.ts";
import { decodeGreedy, forward, MAX_BATCH, RunState } from "../core/forward.ts";
import { GREEDY_CHUNK } from "../core/model.ts";
import { lowRankPredictor, type Predictor } from "../core/predictor.ts";
import type { FFNUnit, Layer, Weights } from "../core/weights.ts";
import { type CudaBackend, plugin } from "../plugins/cuda/mod.ts";
import { breakdown } from "./_cuda_breakdown.ts";
import { greedyDecode } from "./_cuda_greedy.ts";
import { kernelTables, setMatvecConfig } from "./_cuda_kernels.ts";
import { reportTrace } from "./_cuda_trace.ts";

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
// the predictor's weights: the model's type (default), or Q8_0 / Q4_0 (device group layouts)
const predType = parseDType(arg("--pred", arg("--dtype", "f16")));
const quick = Deno.args.includes("--quick"); // skip the per-shape tables and the A/B reruns
const breakdownOn = Deno.args.includes("--breakdown"); // time each part of a layer
const traceOn = Deno.args.includes("--trace"); // what each kernel adds to a decode step

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
// norm weights stay F32 in a quantised model, as in its GGUF file
const normType = dtype === DType.Q8_0 || dtype === DType.Q4_0 ? DType.F32 : dtype;
const norm = (name: string) => be.randomWeight(name, normType, [cfg.nEmbd], seed++, 0.1, 1);
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
        lowRank: {
          fc1: be.randomWeight(
            `blk.${l}.fc1`,
            predType,
            [rank, nEmbd],
            seed++,
            Math.sqrt(3 / nEmbd),
          ),
          fc2: be.randomWeight(`blk.${l}.fc2`, predType, [nFF, rank], seed++, Math.sqrt(3 / rank)),
        },
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
// bytes per weight of a type (its blocks)
const per = (t: DType) => blockOf(t).bytes / blockOf(t).elems;
const ffnBytes = sparse > 0
  ? (rank * nEmbd + nFF * rank) * per(predType) + sparse * 3 * nFF * nEmbd * per(dtype) // predictor + rows
  : 3 * nFF * nEmbd * per(dtype);
const perLayer = (2 * nHead * headDim * nEmbd + 2 * nKV * headDim * nEmbd) * per(dtype) + ffnBytes;
const tokenBytes = nLayer * perLayer + nVocab * nEmbd * per(dtype); // weights read per token
console.log(
  `weights: ${(tokenBytes / 1e9).toFixed(2)} GB read per token, made in ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

const bandwidth = be.readBandwidth(4 * 2 ** 30, 20);
console.log(`read bandwidth: ${bandwidth.toFixed(0)} GB/s (4 GiB streamed 20 times)`);

const matvec = kernelTables(be, { cfg, layers, w, sparse, quick, bandwidth });
setMatvecConfig(be, arg("--mv", "0,0,6"));
be.switches.ropeInAttention(arg("--rope-attn", "1") === "1");
be.switches.selectInGlu(arg("--sel-glu", "1") === "1");
be.switches.sparseDownCols(arg("--down-cols", "1") === "1");
if (Deno.args.includes("--attn-cluster")) {
  be.switches.attentionCluster(Number(arg("--attn-cluster", "0")));
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
const thresholds = new Float32Array(nLayer);
if (sparse > 0) {
  const lowRank = lowRankPredictor(be, cfg, w);
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
/** A fresh state with `n` prompt tokens prefilled. */
const freshState = (n: number) => {
  const st = new RunState(be, cfg, nPrompt + nDecode + 8);
  prefill(st, n);
  return st;
};
// Warm-up: scratch areas grow on first use.
{
  const st = freshState(2 * MAX_BATCH);
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
const greedyChunk = Number(arg("--greedy-chunk", String(GREEDY_CHUNK)));
const greedyTps = greedyDecode(
  { w, cfg, run, tokens, nPrompt, nDecode, chunk: greedyChunk, decodeTps },
  freshState,
);
if (breakdownOn) breakdown(be, cfg, w, st, predictor ? thresholds : null, rank);
const fusedLogits = be.read(st.logits, 0, nVocab);
if (traceOn) {
  const steps = 8, at = st.pos;
  const trace = be.traceKernels(() => {
    for (let i = 0; i < steps; i++) {
      forward(w, cfg, st, tokens.subarray(at + i, at + i + 1), false, run);
    }
  });
  reportTrace(trace, steps, nLayer);
}
if (Deno.args.includes("--trace-greedy")) {
  const sg = freshState(nPrompt);
  let tok = decodeGreedy(w, cfg, sg, tokens[nPrompt], 4, run)![3];
  const trace = be.traceKernels(() => {
    tok = decodeGreedy(w, cfg, sg, tok, 8, run)![7];
  });
  reportTrace(trace, 8, nLayer);
}
/** Prefill and decode again on a fresh state: decode tokens/s and the last logits. */
const freshRun = () => {
  const sr = freshState(nPrompt);
  const t0 = performance.now();
  for (let i = 0; i < nDecode; i++) {
    forward(w, cfg, sr, tokens.subarray(nPrompt + i, nPrompt + i + 1), false, run);
  }
  const tps = nDecode / ((performance.now() - t0) / 1000);
  return { tps, logits: be.read(sr.logits, 0, nVocab) };
};
// `--repeat N`: N more runs on fresh states (prefill, then decode): tokens/s, and the largest
// |Δ| of their last logits from the first run's (0 when every run gives the same bits).
const repeats = Number(arg("--repeat", "0"));
if (repeats > 0) {
  const tps: number[] = [];
  let diff = 0;
  for (let r = 0; r < repeats; r++) {
    const again = freshRun();
    tps.push(again.tps);
    again.logits.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - fusedLogits[i]))));
  }
  console.log(
    `repeat: ${tps.map((v) => v.toFixed(1)).join(", ")} tokens/s; ` +
      `last logits max |Δ| from the first run ${diff}`,
  );
}
if (quick) Deno.exit(0);
// The same decode with rmsnorm, residual add and select as their own launches (the plain
// ops beside matvec_xreg.cu's fused prologue/epilogues), on a fresh state: speed, and the
// last logits of both runs (same tokens, same positions) agree.
be.switches.matvecFuse(false);
const { tps: plainTps, logits: plainLogits } = freshRun();
// Sparse: once more with select as its own launch (the default fuses it into fc2).
let selectTps = 0;
if (sparse > 0) {
  be.switches.matvecFuse(true, false);
  selectTps = freshRun().tps;
  console.log(`decode with select as its own launch: ${selectTps.toFixed(1)} tokens/s`);
}
be.switches.matvecFuse(true);
let dl = 0, ml = 0;
fusedLogits.forEach((
  v,
  i,
) => (dl = Math.max(dl, Math.abs(v - plainLogits[i])), ml = Math.max(ml, Math.abs(v))));
console.log(
  `decode with plain norm/add/select launches: ${plainTps.toFixed(1)} tokens/s ` +
    `(fused ${decodeTps.toFixed(1)}); last logits max |fused - plain| / max |y| = ${
      (dl / ml).toExponential(1)
    }`,
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
        pred: arg("--pred", arg("--dtype", "f16")),
        active,
        bandwidth,
        matvec,
        nPrompt,
        prefillTps,
        nDecode,
        decodeTps,
        greedyTps,
        greedyChunk,
        plainTps,
        selectTps,
        hostMs,
        date: new Date().toISOString(),
      },
      null,
      2,
    ),
  );
}
be.close();
