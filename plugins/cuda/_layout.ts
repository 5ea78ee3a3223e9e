/**
 * Weight layouts on the device that differ from the GGUF file's (kernels/cuda/ts_cuda.h
 * `Elems<TS_Q8_0>`, `Elems<TS_Q4_0>`). GGUF's quantised blocks (an f16 scale, then the values)
 * are only 2-byte aligned, so each row is regrouped at upload into groups of 8 blocks (256
 * values): the 8 scales (16 bytes), then the values. Q8_0: 256 int8 (272 bytes a group). Q4_0:
 * 128 bytes, byte k holding values 2k (low nibble) and 2k + 1 (high), where GGUF pairs value j
 * with j + 16 (144 bytes a group). A short last group is padded to the full size with zeros.
 *
 * @module
 */

import { DType } from "../../core/dtype.ts";
import { numel, tensorBytes } from "../../core/tensor.ts";

/** Values of one group on the device, and the bytes of a Q8_0 and a Q4_0 group. */
export const GROUP_VALUES = 256, Q8G_BYTES = 272, Q4G_BYTES = 144;

/** Bytes of one group of `type` on the device, or 0 when the type keeps the file's layout. */
function groupBytes(type: DType): number {
  return type === DType.Q8_0 ? Q8G_BYTES : type === DType.Q4_0 ? Q4G_BYTES : 0;
}

/** True when `type` is regrouped on the device (Q8_0, Q4_0). */
export function isGrouped(type: DType): boolean {
  return groupBytes(type) > 0;
}

/** A weight's rows and columns (the last dimension; a scalar is one row of one). */
export function rowsCols(shape: readonly number[]): [rows: number, cols: number] {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  return [cols === 0 ? 0 : numel(shape) / cols, cols];
}

/** Bytes of a weight of `type` and `shape` on the device. */
export function deviceBytes(type: DType, shape: readonly number[]): number {
  const file = tensorBytes(type, shape); // throws unless cols is a whole number of blocks
  const g = groupBytes(type);
  if (g === 0) return file;
  const [rows, cols] = rowsCols(shape);
  return rows * Math.ceil(cols / GROUP_VALUES) * g;
}

/** A weight's file bytes in its device layout (the same bytes for types without groups). */
export function toDevice(type: DType, src: Uint8Array, rows: number, cols: number): Uint8Array {
  if (type === DType.Q8_0) return q8Groups(src, rows, cols);
  if (type === DType.Q4_0) return q4Groups(src, rows, cols);
  return src.subarray(0, tensorBytes(type, [rows, cols]));
}

/**
 * GGUF blocks of 32 values (`blockBytes` each: an f16 scale, then the values) regrouped per row
 * into groups of 8 (`groupBytes` each: the 8 scales, then the values); `values(s, d)` writes
 * the values of the block at src[s] to dst[d..] (d: where that block's values start).
 */
function regroup(
  what: string,
  type: string,
  src: Uint8Array,
  rows: number,
  cols: number,
  blockBytes: number,
  groupBytes: number,
  values: (dst: Uint8Array, s: number, d: number) => void,
): Uint8Array {
  const blocks = cols / 32, groups = Math.ceil(cols / GROUP_VALUES);
  const srcRow = blocks * blockBytes, dstRow = groups * groupBytes;
  if (!Number.isInteger(blocks) || src.byteLength < rows * srcRow) {
    throw new Error(`${what}: ${src.byteLength} bytes do not hold ${type} [${rows}, ${cols}]`);
  }
  const valueBytes = (groupBytes - 16) / 8;
  const dst = new Uint8Array(rows * dstRow);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const s = r * srcRow + b * blockBytes, g = r * dstRow + (b >> 3) * groupBytes, k = b & 7;
      dst[g + 2 * k] = src[s];
      dst[g + 2 * k + 1] = src[s + 1];
      values(dst, s + 2, g + 16 + valueBytes * k);
    }
  }
  return dst;
}

/** GGUF Q8_0 rows (`rows` × `cols`) in the device's group layout (padding zeroed). */
export function q8Groups(src: Uint8Array, rows: number, cols: number): Uint8Array {
  return regroup("q8Groups", "Q8_0", src, rows, cols, 34, Q8G_BYTES, (dst, s, d) => {
    dst.set(src.subarray(s, s + 32), d);
  });
}

/** GGUF Q4_0 rows (`rows` × `cols`) in the device's group layout (padding zeroed). */
export function q4Groups(src: Uint8Array, rows: number, cols: number): Uint8Array {
  // GGUF: byte j holds value j (low nibble) and j + 16; the device: values 2i, 2i + 1
  const nib = (qs: number, v: number) => v < 16 ? src[qs + v] & 15 : src[qs + v - 16] >> 4;
  return regroup("q4Groups", "Q4_0", src, rows, cols, 18, Q4G_BYTES, (dst, s, d) => {
    for (let i = 0; i < 16; i++) dst[d + i] = nib(s, 2 * i) | (nib(s, 2 * i + 1) << 4);
  });
}
