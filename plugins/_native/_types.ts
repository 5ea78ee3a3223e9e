/**
 * The buffer and weight types of the native backends: activations are Float32Arrays passed to C
 * as FFI `buffer` arguments (never copied); weights are views of the model file's bytes.
 *
 * @module
 */

import type { Buf, Weight } from "../../core/backend.ts";
import { DType, dtypeName, isSupported } from "../../core/dtype.ts";
import { dequantize } from "../../core/quant.ts";
import { numel, type Tensor, tensorBytes } from "../../core/tensor.ts";

/** An f32 activation buffer in host memory. */
export class NativeBuf implements Buf {
  /** The elements, `[length]`. */
  readonly data: Float32Array;
  constructor(n: number) {
    this.data = new Float32Array(n);
  }
  get length(): number {
    return this.data.length;
  }
}

/** A weight viewed in place; 1-D weights (norms) also keep an f32 copy. */
export class NativeWeight implements Weight {
  readonly name: string;
  readonly type: DType;
  readonly shape: readonly number[];
  /** Encoded elements, row after row: `[rows, cols]`. */
  readonly data: Uint8Array;
  readonly rows: number;
  readonly cols: number;
  #f32: Float32Array | null = null;

  constructor(t: Tensor, backend: string) {
    if (!isSupported(t.type)) {
      throw new Error(`${backend} weight ${t.name}: unsupported type ${dtypeName(t.type)}`);
    }
    const need = tensorBytes(t.type, t.shape);
    if (t.data.byteLength < need) {
      throw new Error(
        `${backend} weight ${t.name}: ${dtypeName(t.type)} [${t.shape.join(", ")}] needs ` +
          `${need} bytes, got ${t.data.byteLength}`,
      );
    }
    this.name = t.name;
    this.type = t.type;
    this.shape = [...t.shape];
    this.data = t.data;
    this.cols = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
    this.rows = this.cols === 0 ? 0 : numel(t.shape) / this.cols;
    if (t.shape.length <= 1) this.f32();
  }

  /** Every element as f32, decoded once. */
  f32(): Float32Array {
    if (!this.#f32) {
      const n = numel(this.shape);
      this.#f32 = new Float32Array(n);
      dequantize(this.type, this.data, 0, n, this.#f32);
    }
    return this.#f32;
  }
}
