/**
 * bench/cuda_decode.ts --breakdown: the time of each part of a decode layer on the CUDA
 * backend, measured on a live run state.
 *
 * @module
 */

import type { ModelConfig } from "../core/config.ts";
import type { RunState } from "../core/forward.ts";
import { lowRankPredictor } from "../core/predictor.ts";
import type { DenseFFN, Layer, SparseFFN, Weights } from "../core/weights.ts";
import type { CudaBackend } from "../plugins/cuda/mod.ts";

/**
 * µs per layer of each part of a decode layer, on the live state: each part of every layer in
 * one graph (distinct weights, so L2 holds none), median of 20 replays. The parts overlap in
 * the real step (PDL), so their sum exceeds a layer of the decode.
 */
export function breakdown(
  be: CudaBackend,
  cfg: ModelConfig,
  w: Weights,
  st: RunState,
  thresholds: Float32Array | null,
  rank: number,
): void {
  const { nEmbd, nFF, nHead, nKV, headDim, nLayer } = cfg;
  const layers = w.layers;
  const p = st.pos - 1, rope = { dim: cfg.ropeDim, base: cfg.ropeBase };
  const kvDim = nKV * headDim;
  const attn = { nTok: 1, pos0: p, nHead, nKV, headDim, scale: 1 / Math.sqrt(headDim) };
  const lr = thresholds ? lowRankPredictor(be, cfg, w) : null;
  const sink = be.alloc(nEmbd); // residual adds land here: st.x must keep the decode's values
  const thr = (l: Layer) => thresholds![(l.ffn as SparseFFN).layer];
  const parts: Record<string, (l: Layer, i: number) => void> = {
    "norm+qkv": (l) => {
      be.rmsnorm(st.xn, st.x, l.attnNorm, 1, cfg.eps);
      be.matmul(st.q, l.wq, st.xn, 1);
      be.matmul(st.kNew, l.wk, st.xn, 1);
      be.matmul(st.vNew, l.wv, st.xn, 1);
    },
    "rope+kv": (_l, i) => {
      be.rope(st.q, 1, nHead, headDim, p, rope);
      be.rope(st.kNew, 1, nKV, headDim, p, rope);
      be.copy(st.k[i], p * kvDim, st.kNew, 0, kvDim);
      be.copy(st.v[i], p * kvDim, st.vNew, 0, kvDim);
    },
    attention: (_l, i) => be.attention(st.att, st.q, st.k[i], st.v[i], attn),
    "o+add": (l) => {
      be.matmul(st.o, l.wo, st.att, 1);
      be.add(sink, st.x, st.o, nEmbd);
    },
    "ffn norm": (l) => be.rmsnorm(st.xn, st.x, l.ffnNorm, 1, cfg.eps),
  };
  if (lr) {
    const sp = (l: Layer) => l.ffn as SparseFFN;
    const pr = lr.scores(layers[nLayer - 1].ffn as SparseFFN, st.x, st.xn, 1)!;
    const hidden = be.alloc(rank);
    Object.assign(parts, {
      "fc1+relu": (l: Layer) => {
        be.matmul(hidden, sp(l).lowRank!.fc1, st.x, 1);
        be.unary!(hidden, hidden, rank, "relu");
      },
      fc2: (l: Layer) => be.matmul(pr.score, sp(l).lowRank!.fc2, hidden, 1),
      select: (l: Layer) => be.select!(st.idx!, pr.score, 0, nFF, thr(l)),
      gluSparse: (l: Layer) =>
        be.gluSparse!(st.act!, sp(l).gate, sp(l).up, st.xn, 0, st.idx!, "swiglu"),
      downSparse: (l: Layer) => be.downSparse!(st.o, 0, sp(l).downT, st.act!, st.idx!),
    });
  }
  const full = (l: Layer) => {
    be.rmsnorm(st.xn, st.x, l.ffnNorm, 1, cfg.eps);
    if (lr) {
      const s = lr.scores(l.ffn as SparseFFN, st.x, st.xn, 1)!;
      be.select!(st.idx!, s.score, 0, nFF, thr(l));
      const u = l.ffn as SparseFFN;
      be.gluSparse!(st.act!, u.gate, u.up, st.xn, 0, st.idx!, "swiglu");
      be.downSparse!(st.o, 0, u.downT, st.act!, st.idx!);
    } else {
      const u = l.ffn as DenseFFN;
      be.matmul(st.gate, u.gate, st.xn, 1);
      be.matmul(st.up, u.up, st.xn, 1);
      be.glu(st.gate, st.gate, st.up, nFF, "swiglu");
      be.matmul(st.o, u.down, st.gate, 1);
    }
    be.add(sink, st.x, st.o, nEmbd);
  };
  parts["ffn (all)"] = full;
  parts["layer (all)"] = (l, i) => {
    for (const k of ["norm+qkv", "rope+kv", "attention", "o+add"]) parts[k](l, i);
    full(l);
  };
  // the last layer's real list (its scores, its threshold), so the gathers see ~F active
  const last = layers[nLayer - 1];
  if (lr) {
    be.select!(st.idx!, lr.scores(last.ffn as SparseFFN, st.x, st.xn, 1)!.score, 0, nFF, thr(last));
  }
  const out: Record<string, number> = {};
  for (const [name, f] of Object.entries(parts)) {
    const ms = be.timeGraph(() => layers.forEach((l, i) => f(l, i)), 20);
    out[name] = (1000 * ms) / nLayer;
  }
  const n = lr ? be.readIndex!(st.idx!).length : nFF;
  console.log(
    `breakdown, µs per layer (${n} of ${nFF} neurons listed): ` +
      Object.entries(out).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", "),
  );
}
