/**
 * One FFN (of a dense layer, or one expert) on `nTok` tokens: dense, or sparse as PowerInfer
 * computes it. Sparse, per token: the predictor's scores become an index list (`select`), the
 * active rows of gate and up give packed activations (`gluSparse`), and the output sums
 * `a_i · down_t[i, :]` over active neurons with a_i ≠ 0 (`downSparse`).
 *
 * @module
 */

import { type Backend, type Buf, type IndexBuf, sparseOps } from "./backend.ts";
import type { ModelConfig } from "./config.ts";
import { densePredictor, type Predictor, where } from "./predictor.ts";
import type { SparsityRecorder } from "./stats.ts";
import {
  type DenseFFN,
  type FFNUnit,
  type SparseFFN,
  weightBytes,
  weightRowBytes,
} from "./weights.ts";

/** How FFNs run: which predictor chooses neurons, and where statistics go. */
export interface FFNRun {
  /** Default: the dense predictor (every neuron). */
  readonly predictor?: Predictor;
  readonly stats?: SparsityRecorder;
}

/** Scratch an FFN needs; `RunState` provides it. */
export interface FFNScratch {
  readonly gate: Buf; // [batch, n_ff]
  readonly up: Buf; // [batch, n_ff]
  /** Packed activations of one token's active neurons; absent without sparse ops. */
  readonly act?: Buf; // [n_ff]
  /** The active list of one token. */
  readonly idx?: IndexBuf; // [n_ff]
  /** Every neuron 0 .. n_ff - 1: the list of the dense predictor. */
  readonly all?: IndexBuf; // [n_ff]
}

/**
 * Run FFN `u` on `x` (`[nTok, n_embd]`), result in `out` (`[nTok, n_embd]`).
 * @param h the residual stream the predictor reads `[nTok, n_embd]`
 */
export function ffnUnit(
  be: Backend,
  cfg: ModelConfig,
  sc: FFNScratch,
  u: FFNUnit,
  h: Buf,
  x: Buf,
  out: Buf,
  nTok: number,
  run: FFNRun,
): void {
  if (u.kind === "dense") denseFFN(be, cfg, sc, u, h, x, out, nTok, run);
  else sparseFFN(be, cfg, sc, u, h, x, out, nTok, run);
}

/** `down · glu(gate · x, up · x)`, every neuron. */
function denseFFN(
  be: Backend,
  cfg: ModelConfig,
  sc: FFNScratch,
  u: DenseFFN,
  h: Buf,
  x: Buf,
  out: Buf,
  nTok: number,
  run: FFNRun,
): void {
  const predictor = run.predictor ?? densePredictor;
  if (predictor.scores(u, h, x, nTok) !== null) {
    throw new Error(
      `${where(u)} is dense (ffn_down); the ${predictor.name} predictor needs ffn_down_t`,
    );
  }
  const truth = run.stats?.truth(u, h, x, nTok) ?? null;
  be.matmul(sc.gate, u.gate, x, nTok);
  be.matmul(sc.up, u.up, x, nTok);
  be.glu(sc.gate, sc.gate, sc.up, nTok * cfg.nFF, cfg.glu);
  be.matmul(out, u.down, sc.gate, nTok);
  if (run.stats) {
    const bytes = weightBytes(u.gate) + weightBytes(u.up) + weightBytes(u.down);
    for (let t = 0; t < nTok; t++) run.stats.record(u, null, truth, t, bytes, bytes);
  }
}

/**
 * Prompt batches of at least this many tokens run a sparse FFN's gate and up as dense matmuls
 * (each weight row read once for the batch, not once per token that selects it) and the down
 * projection masked by the predictor (`downSparseBatch`); fewer tokens gather per token.
 */
export const BATCH_DENSE_MIN = 8;

/** The sparse FFN: predictor, then per token select, gathered glu and sparse down. */
function sparseFFN(
  be: Backend,
  cfg: ModelConfig,
  sc: FFNScratch,
  u: SparseFFN,
  h: Buf,
  x: Buf,
  out: Buf,
  nTok: number,
  run: FFNRun,
): void {
  const ops = sparseOps(be);
  const { nFF, nEmbd, glu } = cfg;
  const predictor = run.predictor ?? densePredictor;
  const s = predictor.scores(u, h, x, nTok);
  if (nTok >= BATCH_DENSE_MIN && ops.downSparseBatch && !run.stats) {
    // the whole batch at once: activations of every neuron, then the predictor's mask
    if (!s?.gate) be.matmul(sc.gate, u.gate, x, nTok);
    be.matmul(sc.up, u.up, x, nTok);
    be.glu(sc.gate, s?.gate ?? sc.gate, sc.up, nTok * nFF, glu);
    ops.downSparseBatch(out, u.downT, sc.gate, s?.score ?? null, s?.threshold ?? 0, nTok);
    return;
  }
  const truth = run.stats?.truth(u, h, x, nTok) ?? null;
  const act = sc.act!, idx = s ? sc.idx! : sc.all!;
  for (let t = 0; t < nTok; t++) {
    if (s) ops.select(idx, s.score, t * nFF, nFF, s.threshold);
    if (s?.gate) ops.gluSparseGated(act, s.gate, t * nFF, u.up, x, t * nEmbd, idx, glu);
    else ops.gluSparse(act, u.gate, u.up, x, t * nEmbd, idx, glu);
    ops.downSparse(out, t * nEmbd, u.downT, act, idx);
    if (run.stats) record(ops, run.stats, u, predictor, s?.gate !== undefined, idx, act, truth, t);
  }
}

/** Statistics of one token's visit: the list, and the bytes its rows cost. */
function record(
  be: Backend & Required<Pick<Backend, "readIndex">>,
  stats: SparsityRecorder,
  u: SparseFFN,
  predictor: Predictor,
  gateComputed: boolean,
  idx: IndexBuf,
  act: Buf,
  truth: Float32Array | null,
  t: number,
): void {
  const ids = be.readIndex(idx);
  let nonzero = 0;
  for (const a of be.read(act, 0, ids.length)) if (a !== 0) nonzero++;
  const gateRow = gateComputed ? 0 : weightRowBytes(u.gate);
  const bytes = predictor.bytesPerToken(u) + ids.length * (gateRow + weightRowBytes(u.up)) +
    nonzero * weightRowBytes(u.downT);
  const dense = weightBytes(u.gate) + weightBytes(u.up) + weightBytes(u.downT);
  stats.record(u, ids.length === stats.cfg.nFF ? null : ids, truth, t, bytes, dense);
}
