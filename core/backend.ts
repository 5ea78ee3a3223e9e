/**
 * The Backend contract: the ops the forward pass needs, nothing more. A backend owns its
 * activation buffers (host memory on CPUs, device memory on GPUs) and prepares weights once.
 *
 * Semantics are defined by `plugins/reference` (pure TypeScript, f32 math); every other
 * backend is checked against it by `tests/backend_conformance_test.ts`.
 *
 * Layout conventions: activations are f32, row-major, one row per token (`[nTok, width]`).
 * Weights are matrices `[rows, cols]` (see `core/tensor.ts`); `matmul` computes
 * `out[t, r] = Σ_c W[r, c] · x[t, c]`. The KV cache of one layer is `[n_ctx, n_kv_head, head_dim]`.
 *
 * @module
 */

import type { DType } from "./dtype.ts";
import type { Tensor } from "./tensor.ts";

/** An f32 activation buffer owned by a backend; opaque outside it. */
export interface Buf {
  /** Number of f32 elements. */
  readonly length: number;
}

/** A weight tensor prepared for a backend: a view on CPUs, an upload on GPUs. */
export interface Weight {
  readonly name: string;
  readonly type: DType;
  /** Outermost first, like `Tensor.shape`. */
  readonly shape: readonly number[];
}

/** Gated activation of the FFN: `silu(g)·u`, `relu(g)·u` or dReLU `relu(g)·relu(u)`. */
export type Glu = "swiglu" | "reglu" | "drelu";

/** Rotary embedding settings (llama.cpp's "normal" mode rotates adjacent pairs). */
export interface RopeParams {
  /** Dimensions rotated per head, from the start; the rest pass through. */
  readonly dim: number;
  /** Frequency base θ. */
  readonly base: number;
}

/** Shape of one causal attention call over a layer's KV cache. */
export interface AttnParams {
  /** Tokens in this batch; query row t sits at position `pos0 + t`. */
  readonly nTok: number;
  readonly pos0: number;
  readonly nHead: number;
  readonly nKV: number;
  readonly headDim: number;
  /** Usually `1 / sqrt(headDim)`. */
  readonly scale: number;
}

/** The ops of one compute device. All ops are synchronous from the caller's view. */
export interface Backend {
  readonly name: string;

  /** Prepare a weight for this backend's ops (called once per tensor at load). */
  weight(t: Tensor): Weight;
  /** A zeroed f32 buffer of `n` elements. */
  alloc(n: number): Buf;
  /** Copy host values into `dst` starting at element `offset`. */
  write(dst: Buf, src: Float32Array, offset?: number): void;
  /** Copy `n` elements from `src` starting at `offset` back to the host. */
  read(src: Buf, offset?: number, n?: number): Float32Array;
  /** `dst[dstOffset + i] = src[srcOffset + i]` for i < n. */
  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, n: number): void;

  /** `out[t, :] = table[tokens[t], :]` for the `[n_vocab, n_embd]` embedding table. */
  embed(out: Buf, table: Weight, tokens: Int32Array): void;
  /** `out[t, r] = Σ_c W[r, c] · x[t, c]` for t < nTok. */
  matmul(out: Buf, w: Weight, x: Buf, nTok: number): void;
  /** `out[t, :] = x[t, :] / sqrt(mean(x[t, :]²) + eps) · w` for t < nTok. */
  rmsnorm(out: Buf, x: Buf, w: Weight, nTok: number, eps: number): void;
  /**
   * Rotate `x` (`[nTok, nHead, headDim]`) in place: for each pair (2i, 2i+1) with 2i < dim,
   * angle = (pos0 + t) · base^(-2i/dim).
   */
  rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams): void;
  /**
   * Causal grouped-query attention: `q` is `[nTok, nHead, headDim]`, `k`/`v` are the layer's
   * cache `[n_ctx, nKV, headDim]` already holding positions `0 .. pos0 + nTok - 1`;
   * query head h reads KV head `floor(h / (nHead / nKV))`. Writes `out` `[nTok, nHead, headDim]`.
   */
  attention(out: Buf, q: Buf, k: Buf, v: Buf, a: AttnParams): void;
  /** `out[i] = a[i] + b[i]` for i < n (out may alias a). */
  add(out: Buf, a: Buf, b: Buf, n: number): void;
  /** `out[i] = act(gate[i]) · up[i]` (dReLU also clamps up) for i < n (out may alias gate or up). */
  glu(out: Buf, gate: Buf, up: Buf, n: number, kind: Glu): void;

  // --- Sparse FFN and MoE ops (optional). They become required members once the native
  // kernels land; until then the forward pass refuses a sparse or MoE model on a backend
  // without them ("backend X has no sparse FFN ops"). Index lists count as one set: a backend
  // implements all of SPARSE_OPS or none.

  /** An empty index list able to hold `capacity` neuron ids. */
  allocIndex?(capacity: number): IndexBuf;
  /** Set the list to `ids` (ascending, each < the FFN's n_ff). */
  writeIndex?(dst: IndexBuf, ids: Int32Array): void;
  /** The list's current ids, back on the host. */
  readIndex?(src: IndexBuf): Int32Array;
  /** `out[i] = op(x[i])` for i < n (out may alias x); see `Unary`. */
  unary?(out: Buf, x: Buf, n: number, op: Unary): void;
  /**
   * Threshold to index list: `idx` becomes every i < n with `score[offset + i] ≥ threshold`,
   * ascending (NaN never qualifies).
   */
  select?(idx: IndexBuf, score: Buf, offset: number, n: number, threshold: number): void;
  /**
   * Gathered gate and up rows with the activation, packed: for each k < count of `idx`, with
   * i = idx[k], `act[k] = glu(gate[i, :] · x[xOffset ..], up[i, :] · x[xOffset ..])`, where
   * both dot products are rounded to f32 before the activation (as `matmul` then `glu` do).
   */
  gluSparse?(
    act: Buf,
    gate: Weight,
    up: Weight,
    x: Buf,
    xOffset: number,
    idx: IndexBuf,
    kind: Glu,
  ): void;
  /**
   * `gluSparse` with the gate projection already computed (the threshold predictor's):
   * `act[k] = glu(gateOut[gateOffset + i], up[i, :] · x[xOffset ..])` with i = idx[k].
   */
  gluSparseGated?(
    act: Buf,
    gateOut: Buf,
    gateOffset: number,
    up: Weight,
    x: Buf,
    xOffset: number,
    idx: IndexBuf,
    kind: Glu,
  ): void;
  /**
   * Sparse down projection over the transposed down matrix `downT` (`[n_ff, n_embd]`, one row
   * per neuron): `out[outOffset + j] = Σ_k act[k] · downT[idx[k], j]` over k with act[k] ≠ 0,
   * in ascending k, for j < n_embd (written, not accumulated).
   */
  downSparse?(out: Buf, outOffset: number, downT: Weight, act: Buf, idx: IndexBuf): void;
  /**
   * Optional (a backend without it runs prompts token by token): the sparse down projection of
   * `nTok` tokens at once from dense activations `act` (`[nTok, n_ff]`): for each t,
   * `out[t, j] = Σ_i act[t, i] · downT[i, j]` over ascending i with `act[t, i] ≠ 0` and, when
   * `score` (`[nTok, n_ff]`) is given, `score[t, i] ≥ threshold` — `downSparse` of token t with
   * the list `select` would make, so a batch equals its tokens run one at a time.
   */
  downSparseBatch?(
    out: Buf,
    downT: Weight,
    act: Buf,
    score: Buf | null,
    threshold: number,
    nTok: number,
  ): void;
  /** Scaled accumulate for mixing experts: `out[outOffset + i] += alpha · x[xOffset + i]`. */
  axpy?(out: Buf, outOffset: number, x: Buf, xOffset: number, n: number, alpha: number): void;
  /**
   * Optional layout hook, called once per sparse FFN (layer or expert) at load with its three
   * matrices. A backend may re-lay them out for `gluSparse`/`downSparse`, e.g. bundle each
   * neuron's gate, up and down rows contiguously; the forward pass never sees the choice.
   */
  prepareSparseFFN?(gate: Weight, up: Weight, downT: Weight): void;

  /**
   * Optional decode-step capture (CUDA graphs): run the ops `record` issues, or replay what it
   * issued on an earlier call with the same `key` (the host then issues nothing). Between
   * calls with one key the ops may differ only in `embed`'s tokens (always `tokens`), the
   * `pos0` of rope and attention (always `pos`), and a `copy` of n elements to offset
   * `pos · n` (a KV-cache row); everything else, buffers and weights included, is the same.
   * `record` must not read back to the host. Without this member callers run `record()`.
   */
  step?(key: object, pos: number, tokens: Int32Array, record: () => void): void;

  /**
   * Optional greedy decoding without host round trips (with `step`): `r.n` decode steps, each
   * one's token picked where its logits are and fed to the next (see GreedySteps). Returns
   * the `n` picked tokens. The caller checks that the positions fit and the token is in the
   * vocabulary.
   */
  stepGreedy?(r: GreedySteps): Int32Array;

  /** Release native resources. */
  close?(): void;
}

/**
 * `n` greedy decode steps of the captured step `key` (as `Backend.step`) at positions `pos ..`:
 * the first fed `token`, each later one the token the one before picked, the argmax of
 * `logits[0 .. nVocab)` after the step's ops (lowest id on ties, as the sampler's `argmax`).
 * `record(p, t)` issues the ops of the step at position p fed token t, under `step`'s rules
 * for one key.
 */
export interface GreedySteps {
  key: object;
  pos: number;
  token: number;
  n: number;
  logits: Buf;
  nVocab: number;
  record: (pos: number, token: number) => void;
}

/** A list of neuron ids owned by a backend (device memory on GPUs); opaque outside it. */
export interface IndexBuf {
  /** Ids it can hold at most. */
  readonly capacity: number;
}

/**
 * Elementwise ops of the predictors: `relu` (the low-rank predictor's hidden layer),
 * `abs_silu` = |x · sigmoid(x)| (the threshold predictor's measure), `nonzero` = 1 where
 * x ≠ 0, else 0 (the oracle's true active set).
 */
export type Unary = "relu" | "abs_silu" | "nonzero";

/** The optional members a backend needs to run sparse FFNs and MoE experts. */
export const SPARSE_OPS = [
  "allocIndex",
  "writeIndex",
  "readIndex",
  "unary",
  "select",
  "gluSparse",
  "gluSparseGated",
  "downSparse",
  "axpy",
] as const;

/** A backend with every sparse op present. */
export type SparseBackend = Backend & Required<Pick<Backend, typeof SPARSE_OPS[number]>>;

/** Whether `b` implements every member of SPARSE_OPS. */
export function hasSparseOps(b: Backend): b is SparseBackend {
  return SPARSE_OPS.every((op) => typeof b[op] === "function");
}

/** `b` as a SparseBackend; throws naming the backend and the missing ops otherwise. */
export function sparseOps(b: Backend): SparseBackend {
  if (hasSparseOps(b)) return b;
  const missing = SPARSE_OPS.filter((op) => typeof b[op] !== "function");
  throw new Error(
    `backend "${b.name}" has no sparse FFN ops (missing ${missing.join(", ")}); ` +
      `run this sparse or MoE model with --backend reference`,
  );
}

/** What a plugin's probe found: a score (0 = unusable here) and why. */
export interface Probe {
  readonly score: number;
  readonly reason: string;
}

/** Options every backend accepts; a backend ignores what does not apply to it. */
export interface BackendOptions {
  /** Worker threads for CPU backends; default: all cores. */
  readonly threads?: number;
}

/** A backend plugin's entry: probed at run time, opened when chosen. */
export interface BackendPlugin {
  readonly name: string;
  probe(): Promise<Probe>;
  open(options?: BackendOptions): Promise<Backend>;
}
