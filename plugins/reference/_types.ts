/**
 * The reference backend's buffers, weights and index lists: plain host memory.
 *
 * @module
 */

import type { Buf, IndexBuf, Weight } from "../../core/backend.ts";
import { DType, dtypeName, isSupported } from "../../core/dtype.ts";
import { dequantize } from "../../core/quant.ts";
import { numel, type Tensor, tensorBytes } from "../../core/tensor.ts";

/** An f32 activation buffer: a plain Float32Array on the host. */
export class RefBuf implements Buf {
  /** The elements, `[length]`. */
  readonly data: Float32Array;

  /** A zeroed buffer of `n` f32 elements. */
  constructor(n: number) {
    this.data = new Float32Array(n);
  }

  /** Number of f32 elements. */
  get length(): number {
    return this.data.length;
  }
}

/** A weight viewed in place: its encoded bytes plus the row geometry used by the ops. */
export class RefWeight implements Weight {
  readonly name: string;
  readonly type: DType;
  readonly shape: readonly number[];
  /** Encoded elements, row after row (a view, never a copy). */
  readonly data: Uint8Array;
  /** Elements per row: the innermost dimension. */
  readonly cols: number;
  /** Number of rows: every outer dimension multiplied together (1 for a vector). */
  readonly rows: number;
  /** Encoded bytes per row. */
  readonly rowBytes: number;

  /** Wrap `t` without copying; throws when its bytes do not cover its shape. */
  constructor(t: Tensor) {
    if (!isSupported(t.type)) {
      throw new Error(`reference weight ${t.name}: unsupported type ${dtypeName(t.type)}`);
    }
    const need = tensorBytes(t.type, t.shape);
    if (t.data.byteLength < need) {
      throw new Error(
        `reference weight ${t.name}: ${dtypeName(t.type)} [${t.shape.join(", ")}] needs ` +
          `${need} bytes, got ${t.data.byteLength}`,
      );
    }
    this.name = t.name;
    this.type = t.type;
    this.shape = [...t.shape];
    this.data = t.data;
    this.cols = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
    this.rows = this.cols === 0 ? 0 : numel(t.shape) / this.cols;
    this.rowBytes = this.rows === 0 ? 0 : need / this.rows;
  }

  /** Dequantise row `r` into `out[outOffset .. outOffset + cols]`. */
  row(r: number, out: Float32Array, outOffset = 0): void {
    dequantize(this.type, this.data, r * this.rowBytes, this.cols, out, outOffset);
  }
}

/** A list of neuron ids: the first `count` entries of `ids` are valid. */
export class RefIndex implements IndexBuf {
  /** Storage, `[capacity]`. */
  readonly ids: Int32Array;
  /** Valid ids at the front of `ids`. */
  count = 0;

  /** An empty list of at most `capacity` ids. */
  constructor(capacity: number) {
    this.ids = new Int32Array(capacity);
  }

  /** Ids it can hold at most. */
  get capacity(): number {
    return this.ids.length;
  }
}
