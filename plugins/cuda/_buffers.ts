/**
 * The CUDA backend's handles: an f32 activation buffer, an index list and a weight, each a
 * device pointer with its size. Ops check that they were given these (`_args.ts`).
 *
 * @module
 */

import type { Buf, IndexBuf, Weight } from "../../core/backend.ts";
import type { DType } from "../../core/dtype.ts";
import { rowsCols } from "./_layout.ts";

/** An f32 activation buffer in device memory. */
export class CudaBuf implements Buf {
  constructor(readonly ptr: Deno.PointerObject, readonly length: number) {}
}

/** An index list in device memory: int32 `[count, id 0, id 1, ...]`, the count on the device. */
export class CudaIndex implements IndexBuf {
  constructor(readonly ptr: Deno.PointerObject, readonly capacity: number) {}
}

/** A weight uploaded once; 1-D weights (norms) also keep an f32 copy for rmsnorm. */
export class CudaWeight implements Weight {
  constructor(
    readonly name: string,
    readonly type: DType,
    readonly shape: readonly number[],
    readonly ptr: Deno.PointerObject,
    readonly bytes: number,
    readonly f32: Deno.PointerObject | null,
  ) {
    [this.rows, this.cols] = rowsCols(shape);
  }
  /** Rows and columns (the last dimension), computed once: ops read them on every call. */
  readonly rows: number;
  readonly cols: number;
}

/** `p` advanced by `bytes`. */
export function at(p: Deno.PointerObject, bytes: number): Deno.PointerObject {
  return Deno.UnsafePointer.offset(p, bytes)!;
}
