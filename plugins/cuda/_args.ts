/**
 * Argument checks of the CUDA backend's ops (they mirror `plugins/reference`, so bad input
 * fails the same way on every backend), and the context the op files share.
 *
 * @module
 */

import type { Buf, IndexBuf, Weight } from "../../core/backend.ts";
import type { CudaLib } from "./_ffi.ts";
import type { OpQueue } from "./_queue.ts";
import { CudaBuf, CudaIndex, CudaWeight } from "./_buffers.ts";

/** What the backend's op files (`_attention.ts`, `_sparse.ts`, `_graph.ts`) share with it. */
export interface Ctx {
  readonly lib: CudaLib;
  readonly q: OpQueue;
  readonly args: Args;
  /** Throws `cuda <op>: <message>` unless rc is 0 (a cudaError_t). */
  check(op: string, rc: number): void;
  /** cudaMalloc owned by the backend (freed by close()); throws on failure. */
  malloc(what: string, bytes: number): Deno.PointerObject;
}

/** Checks that name the op and the argument; `closed` tells whether the backend is closed. */
export class Args {
  constructor(readonly closed: () => boolean) {}

  buf(op: string, arg: string, b: Buf): CudaBuf {
    if (this.closed()) throw new Error(`cuda ${op}: backend is closed`);
    if (!(b instanceof CudaBuf)) throw new Error(`cuda ${op}: ${arg} is not a cuda buffer`);
    return b;
  }

  index(op: string, i: IndexBuf): CudaIndex {
    if (this.closed()) throw new Error(`cuda ${op}: backend is closed`);
    if (!(i instanceof CudaIndex)) throw new Error(`cuda ${op}: idx is not a cuda index list`);
    return i;
  }

  weight(op: string, w: Weight): CudaWeight {
    if (!(w instanceof CudaWeight)) {
      throw new Error(`cuda ${op}: weight ${w.name} was not prepared by cuda`);
    }
    return w;
  }

  count(op: string, arg: string, v: number): void {
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`cuda ${op}: ${arg} must be a non-negative integer, got ${v}`);
    }
  }

  fits(op: string, arg: string, b: CudaBuf, need: number): void {
    if (b.length < need) {
      throw new Error(`cuda ${op}: ${arg} has ${b.length} elements, needs ${need}`);
    }
  }

  /** Buffers `bufs` (named `names`) checked, each holding at least n elements. */
  three(op: string, names: string[], bufs: Buf[], n: number): CudaBuf[] {
    const arr = bufs.map((x, i) => this.buf(op, names[i], x));
    this.count(op, "n", n);
    arr.forEach((x, i) => this.fits(op, names[i], x, n));
    return arr;
  }
}
