/**
 * What the CUDA backend's op queue (`_queue.ts`) holds back, and the arguments of the matvec
 * entry points it launches (kernels/cuda/matvec.cu, matvec_xreg.cu).
 *
 * @module
 */

import { DType } from "../../core/dtype.ts";
import type { Glu } from "../../core/backend.ts";
import type { CudaLib } from "./_ffi.ts";
import type { CudaBuf, CudaWeight } from "./_buffers.ts";

/** The position and token of a decode step being run or captured, and where they live. */
export interface Dyn {
  readonly pos: number;
  readonly token: number;
  /** Device pointer to int32 `[pos, token]`. */
  readonly ptr: Deno.PointerObject;
}

export interface Matmul {
  out: CudaBuf;
  w: CudaWeight;
  x: CudaBuf;
  nTok: number;
}
export interface Rope {
  x: CudaBuf;
  nTok: number;
  nHead: number;
  headDim: number;
  pos0: number;
  dim: number;
  base: number;
}
export interface Add {
  out: CudaBuf;
  a: CudaBuf;
  b: CudaBuf;
  n: number;
}
export interface Store {
  dst: Deno.PointerObject;
  src: Deno.PointerObject;
  n: number;
}

/** A held rmsnorm of one token: out = rmsnorm(x) · w. */
export interface Norm {
  out: CudaBuf;
  x: CudaBuf;
  w: Deno.PointerObject;
  n: number;
  eps: number;
}
/** A held sparse down projection (kernels/cuda/sparse.cu): out[offset ..] = Σ act · down_t rows. */
export interface Down {
  fn: (...a: [P, P, P, P, number, number, P | null, P | null]) => number;
  out: CudaBuf;
  offset: number;
  w: P;
  act: P;
  idx: P;
  /** Entries of act and of the list that may be read before the count is (≤ both sizes). */
  capacity: number;
  cols: number;
}
export type P = Deno.PointerObject;

/**
 * What the held matvec group fuses: a prologue norm (`side`: the norm's output is stored but
 * the rows read x unnormed, as a predictor does beside the FFN's norm), an add or a select
 * epilogue.
 */
export interface Fused {
  norm: (Norm & { side?: boolean }) | null;
  res: { out: CudaBuf; a: CudaBuf } | null;
  /** `local`: the survivors stay in per-block lists, which the next gathered glu places. */
  sel: { idx: Deno.PointerObject; thr: number; local?: boolean } | null;
}

/** Matvec epilogue codes of kernels/cuda/matvec.cu. */
export const EPI: Record<Glu | "none" | "relu", number> = {
  none: 0,
  relu: 1,
  swiglu: 2,
  reglu: 3,
  drelu: 4,
};

/**
 * The arguments both matvec entry points start with: up to three (out, weight, rows) jobs,
 * their count, the epilogue, x and the columns (kernels/cuda/matvec.cu, matvec_xreg.cu).
 */
export function jobArgs(mm: Matmul[], epi: number, x: CudaBuf) {
  const [a, b, c] = mm;
  return [
    a.out.ptr,
    a.w.ptr,
    a.w.rows,
    b?.out.ptr ?? null,
    b?.w.ptr ?? null,
    b?.w.rows ?? 0,
    c?.out.ptr ?? null,
    c?.w.ptr ?? null,
    c?.w.rows ?? 0,
    mm.length,
    epi,
    x.ptr,
    a.w.cols,
  ] as const;
}

/** The fused matvec of a weight type (matvec_xreg.cu), or null. */
export function fusedOf(lib: CudaLib, type: DType) {
  if (type === DType.F16) return lib.symbols.ts_matvec_fused_f16;
  if (type === DType.BF16) return lib.symbols.ts_matvec_fused_bf16;
  if (type === DType.Q8_0) return lib.symbols.ts_matvec_fused_q8_0;
  if (type === DType.Q4_0) return lib.symbols.ts_matvec_fused_q4_0;
  return null;
}

/** The batched matvec of a weight type. */
export function batchOf(lib: CudaLib, type: DType) {
  const s = lib.symbols;
  switch (type) {
    case DType.F32:
      return s.ts_matvec_batch_f32;
    case DType.BF16:
      return s.ts_matvec_batch_bf16;
    case DType.Q8_0:
      return s.ts_matvec_batch_q8_0;
    case DType.Q4_0:
      return s.ts_matvec_batch_q4_0;
    default:
      return s.ts_matvec_batch_f16;
  }
}
