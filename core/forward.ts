/**
 * The forward pass, top to bottom: embed → per layer (attention; predictor and sparse FFN, or
 * experts) → norm → logits. No backend branches: every op goes through the Backend contract.
 *
 * @module
 */

import { type AttnParams, type Backend, type Buf, hasSparseOps, type IndexBuf } from "./backend.ts";
import type { ModelConfig } from "./config.ts";
import { moeFFN } from "./moe.ts";
import { type FFNRun, ffnUnit } from "./sparse.ts";
import type { Weights } from "./weights.ts";

export type { FFNRun } from "./sparse.ts";

/** Tokens processed per forward call at most; longer prompts run in chunks. */
export const MAX_BATCH = 64;

/** Run state of one sequence: its KV cache and scratch activations. */
export class RunState {
  /** Tokens already in the KV cache. */
  pos = 0;
  readonly k: Buf[]; // per layer [n_ctx, n_kv, head_dim]
  readonly v: Buf[]; // per layer [n_ctx, n_kv, head_dim]
  readonly x: Buf; // residual stream [batch, n_embd]
  readonly xn: Buf; // normed input [batch, n_embd]
  readonly q: Buf; // queries [batch, n_head * head_dim]
  readonly kNew: Buf; // this batch's keys [batch, n_kv * head_dim]
  readonly vNew: Buf; // this batch's values [batch, n_kv * head_dim]
  readonly att: Buf; // attention output [batch, n_head * head_dim]
  readonly o: Buf; // block output [batch, n_embd]
  readonly gate: Buf; // [batch, n_ff]
  readonly up: Buf; // [batch, n_ff]
  readonly logits: Buf; // [batch, n_vocab]
  // Sparse FFNs and experts; present when the backend has the sparse ops.
  readonly act?: Buf; // packed activations of one token [n_ff]
  readonly idx?: IndexBuf; // active neurons of one token [n_ff]
  readonly all?: IndexBuf; // every neuron [n_ff]
  // Experts
  readonly routerLogits: Buf; // [batch, n_expert]
  readonly h1: Buf; // one token's residual [n_embd]
  readonly x1: Buf; // one token's normed input [n_embd]
  readonly e1: Buf; // one expert's output [n_embd]
  /** Keys of this state's captured decode steps, one per predictor (see Backend.step). */
  readonly stepKeys = new Map<unknown, object>();

  constructor(readonly backend: Backend, readonly cfg: ModelConfig, readonly nCtx: number) {
    const b = MAX_BATCH, kvDim = cfg.nKV * cfg.headDim, qDim = cfg.nHead * cfg.headDim;
    this.k = Array.from({ length: cfg.nLayer }, () => backend.alloc(nCtx * kvDim));
    this.v = Array.from({ length: cfg.nLayer }, () => backend.alloc(nCtx * kvDim));
    this.x = backend.alloc(b * cfg.nEmbd);
    this.xn = backend.alloc(b * cfg.nEmbd);
    this.q = backend.alloc(b * qDim);
    this.kNew = backend.alloc(b * kvDim);
    this.vNew = backend.alloc(b * kvDim);
    this.att = backend.alloc(b * qDim);
    this.o = backend.alloc(b * cfg.nEmbd);
    this.gate = backend.alloc(b * cfg.nFF);
    this.up = backend.alloc(b * cfg.nFF);
    this.logits = backend.alloc(b * cfg.nVocab);
    if (hasSparseOps(backend)) {
      this.act = backend.alloc(cfg.nFF);
      this.idx = backend.allocIndex(cfg.nFF);
      this.all = backend.allocIndex(cfg.nFF);
      backend.writeIndex(this.all, Int32Array.from({ length: cfg.nFF }, (_, i) => i));
    }
    const moe = cfg.nExpert > 0;
    this.routerLogits = backend.alloc(moe ? b * cfg.nExpert : 1);
    this.h1 = backend.alloc(moe ? cfg.nEmbd : 1);
    this.x1 = backend.alloc(moe ? cfg.nEmbd : 1);
    this.e1 = backend.alloc(moe ? cfg.nEmbd : 1);
  }
}

/**
 * Run `tokens` (at most MAX_BATCH) through the model at positions `st.pos ...`, append them
 * to the KV cache and return the logits: of every token when `allLogits`, else of the last.
 * `run` picks the predictor of sparse FFNs (default: every neuron) and collects statistics.
 */
export function forward(
  w: Weights,
  cfg: ModelConfig,
  st: RunState,
  tokens: Int32Array,
  allLogits = false,
  run: FFNRun = {},
): Float32Array {
  const be = st.backend, n = tokens.length, pos0 = st.pos, nVocab = cfg.nVocab;
  if (n === 0 || n > MAX_BATCH) throw new Error(`forward takes 1..${MAX_BATCH} tokens, got ${n}`);
  checkFits(cfg, st, n, tokens);
  run.stats?.addTokens(n);
  // One decode token of a model without host decisions (MoE routing, statistics) can be
  // captured once and replayed by the backend; anything else runs op by op.
  const replayable = be.step && n === 1 && cfg.nExpert === 0 && !run.stats;
  const first = allLogits ? 0 : n - 1, rows = n - first;
  const body = passOps(w, cfg, st, tokens, pos0, first, run);
  if (replayable) be.step!(stepKey(st, run), pos0, tokens, body);
  else body();
  st.pos += n;
  return be.read(st.logits, 0, rows * nVocab);
}

/**
 * Greedy decoding of `n` tokens after `token` (fed at position `st.pos`) with the backend's
 * `stepGreedy`: the argmax of each step's logits, picked on the device and fed to the next
 * step there, so the host waits once for all n (the sampler at temperature 0 picks the same
 * tokens from `forward`'s logits). Returns the picked tokens, the last not fed yet, and
 * advances `st.pos` by n; null, doing nothing, when the backend cannot (no `stepGreedy`,
 * experts, statistics).
 */
export function decodeGreedy(
  w: Weights,
  cfg: ModelConfig,
  st: RunState,
  token: number,
  n: number,
  run: FFNRun = {},
): Int32Array | null {
  const be = st.backend;
  if (!be.step || !be.stepGreedy || cfg.nExpert > 0 || run.stats) return null;
  if (!Number.isInteger(n) || n < 1) throw new Error(`decodeGreedy: n must be >= 1, got ${n}`);
  checkFits(cfg, st, n, [token]);
  const ops = (pos: number, fed: number) => passOps(w, cfg, st, Int32Array.of(fed), pos, 0, run)();
  const key = stepKey(st, run);
  const out = be.stepGreedy({
    key,
    pos: st.pos,
    token,
    n,
    logits: st.logits,
    nVocab: cfg.nVocab,
    record: ops,
  });
  st.pos += n;
  return out;
}

/** Throws unless `n` more positions fit in `st`'s context and every token is a vocabulary id. */
function checkFits(cfg: ModelConfig, st: RunState, n: number, tokens: ArrayLike<number>): void {
  if (st.pos + n > st.nCtx) throw new Error(`context full: ${st.pos} + ${n} tokens > ${st.nCtx}`);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= cfg.nVocab) {
      throw new Error(`token id ${t} is outside the vocabulary (${cfg.nVocab})`);
    }
  }
}

/**
 * The ops of one pass of `tokens` at positions `pos0 ..`, as a function that issues them:
 * embed → per layer (attention; predictor and sparse FFN, or experts) → norm → the logits of
 * rows `first ..` into `st.logits`.
 */
function passOps(
  w: Weights,
  cfg: ModelConfig,
  st: RunState,
  tokens: Int32Array,
  pos0: number,
  first: number,
  run: FFNRun,
): () => void {
  const be = st.backend, n = tokens.length, rows = n - first;
  const { nEmbd, nHead, nKV, headDim, eps } = cfg;
  const kvDim = nKV * headDim;
  const rope = { dim: cfg.ropeDim, base: cfg.ropeBase };
  const attn: AttnParams = { nTok: n, pos0, nHead, nKV, headDim, scale: 1 / Math.sqrt(headDim) };

  const runLayer = (l: number) => {
    const layer = w.layers[l];
    // attention
    be.rmsnorm(st.xn, st.x, layer.attnNorm, n, eps);
    be.matmul(st.q, layer.wq, st.xn, n);
    be.matmul(st.kNew, layer.wk, st.xn, n);
    be.matmul(st.vNew, layer.wv, st.xn, n);
    be.rope(st.q, n, nHead, headDim, pos0, rope);
    be.rope(st.kNew, n, nKV, headDim, pos0, rope);
    be.copy(st.k[l], pos0 * kvDim, st.kNew, 0, n * kvDim);
    be.copy(st.v[l], pos0 * kvDim, st.vNew, 0, n * kvDim);
    be.attention(st.att, st.q, st.k[l], st.v[l], attn);
    be.matmul(st.o, layer.wo, st.att, n);
    be.add(st.x, st.x, st.o, n * nEmbd);
    // feed-forward: the predictor reads the residual st.x, the FFN the normed st.xn
    be.rmsnorm(st.xn, st.x, layer.ffnNorm, n, eps);
    if (layer.ffn.kind === "moe") moeFFN(be, cfg, st, layer.ffn, st.x, st.xn, st.o, n, run);
    else ffnUnit(be, cfg, st, layer.ffn, st.x, st.xn, st.o, n, run);
    be.add(st.x, st.x, st.o, n * nEmbd);
  };
  return () => {
    be.embed(st.x, w.tokenEmbd, tokens);
    for (let l = 0; l < cfg.nLayer; l++) runLayer(l);
    // logits: only the rows asked for
    if (first > 0) be.copy(st.x, 0, st.x, first * nEmbd, nEmbd);
    be.rmsnorm(st.xn, st.x, w.outputNorm, rows, eps);
    be.matmul(st.logits, w.output, st.xn, rows);
  };
}

/** The capture key of `st`'s decode step under `run`'s predictor. */
function stepKey(st: RunState, run: FFNRun): object {
  let key = st.stepKeys.get(run.predictor);
  if (!key) st.stepKeys.set(run.predictor, key = {});
  return key;
}
