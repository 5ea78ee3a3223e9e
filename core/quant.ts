/**
 * Conversions between f32 and every supported storage type: the plain twins of the native
 * kernels' dequantisation, and the quantisers the GGUF writer uses (llama.cpp's reference
 * rounding, so files match what llama.cpp's quantize would write).
 *
 * @module
 */

import {
  bf16ToF32,
  blockOf,
  DType,
  dtypeName,
  f16ToF32,
  f32ToBF16,
  f32ToF16,
  QK,
} from "./dtype.ts";
import { numel, type Tensor } from "./tensor.ts";

const F16_TABLE = new Float32Array(65536);
for (let i = 0; i < 65536; i++) F16_TABLE[i] = f16ToF32(i);

/**
 * Dequantise `n` elements of `type` starting at byte `offset` of `src` into `out[outOffset..]`.
 * `offset` must sit on a block boundary.
 */
export function dequantize(
  type: DType,
  src: Uint8Array,
  offset: number,
  n: number,
  out: Float32Array,
  outOffset = 0,
): void {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (type) {
    case DType.F32:
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getFloat32(offset + 4 * i, true);
      return;
    case DType.F16:
      for (let i = 0; i < n; i++) {
        out[outOffset + i] = F16_TABLE[dv.getUint16(offset + 2 * i, true)];
      }
      return;
    case DType.BF16:
      for (let i = 0; i < n; i++) {
        out[outOffset + i] = bf16ToF32(dv.getUint16(offset + 2 * i, true));
      }
      return;
    case DType.I32:
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getInt32(offset + 4 * i, true);
      return;
    case DType.Q8_0:
      for (let b = 0; b < n / QK; b++) {
        const p = offset + b * (2 + QK);
        const d = F16_TABLE[dv.getUint16(p, true)];
        for (let j = 0; j < QK; j++) out[outOffset + b * QK + j] = d * dv.getInt8(p + 2 + j);
      }
      return;
    case DType.Q4_0:
      for (let b = 0; b < n / QK; b++) {
        const p = offset + b * (2 + QK / 2);
        const d = F16_TABLE[dv.getUint16(p, true)];
        const o = outOffset + b * QK;
        for (let j = 0; j < QK / 2; j++) {
          const q = src[p + 2 + j];
          out[o + j] = d * ((q & 0x0f) - 8);
          out[o + j + QK / 2] = d * ((q >> 4) - 8);
        }
      }
      return;
  }
}

/** C's roundf: halves round away from zero. */
function roundAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/** All values of tensor `t` as f32. */
export function valuesF32(t: Pick<Tensor, "type" | "shape" | "data">): Float32Array {
  const x = new Float32Array(numel(t.shape));
  dequantize(t.type, t.data, 0, x.length, x);
  return x;
}

/** The bytes of tensor `t` re-encoded as `type` (its rows whole blocks of `type`). */
export function requantize(t: Pick<Tensor, "type" | "shape" | "data">, type: DType): Uint8Array {
  return quantize(type, valuesF32(t));
}

/** `x·id + 8.5` with f32 rounding after each step, as llama.cpp's Q4_0 quantiser computes it. */
function f32Step(x: number, id: number): number {
  return Math.fround(Math.fround(x * id) + 8.5);
}

/** Encode f32 values as `type` (length must be a whole number of blocks). */
export function quantize(type: DType, x: Float32Array): Uint8Array {
  const { elems, bytes } = blockOf(type);
  if (x.length % elems !== 0) {
    throw new Error(`${dtypeName(type)} needs a multiple of ${elems} values, got ${x.length}`);
  }
  const out = new Uint8Array((x.length / elems) * bytes);
  const dv = new DataView(out.buffer);
  switch (type) {
    case DType.F32:
      for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i], true);
      break;
    case DType.F16:
      for (let i = 0; i < x.length; i++) dv.setUint16(2 * i, f32ToF16(x[i]), true);
      break;
    case DType.BF16:
      for (let i = 0; i < x.length; i++) dv.setUint16(2 * i, f32ToBF16(x[i]), true);
      break;
    case DType.I32:
      for (let i = 0; i < x.length; i++) dv.setInt32(4 * i, x[i], true);
      break;
    case DType.Q8_0:
      for (let b = 0; b < x.length / QK; b++) {
        let amax = 0;
        for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
        // llama.cpp computes d, 1/d and x·(1/d) in f32; doubles round differently at halves.
        const d = Math.fround(amax / 127);
        const id = d ? Math.fround(1 / d) : 0;
        const p = b * bytes;
        dv.setUint16(p, f32ToF16(d), true);
        for (let j = 0; j < QK; j++) {
          dv.setInt8(p + 2 + j, roundAway(Math.fround(x[b * QK + j] * id)));
        }
      }
      break;
    case DType.Q4_0:
      for (let b = 0; b < x.length / QK; b++) {
        // llama.cpp: the value of largest magnitude maps to -8 exactly.
        let max = 0;
        for (let j = 0; j < QK; j++) {
          const v = x[b * QK + j];
          if (Math.abs(v) > Math.abs(max)) max = v;
        }
        const d = Math.fround(max / -8);
        const id = d ? Math.fround(1 / d) : 0;
        const p = b * bytes;
        dv.setUint16(p, f32ToF16(d), true);
        for (let j = 0; j < QK / 2; j++) {
          const lo = Math.min(15, Math.trunc(f32Step(x[b * QK + j], id)));
          const hi = Math.min(15, Math.trunc(f32Step(x[b * QK + j + QK / 2], id)));
          out[p + 2 + j] = lo | (hi << 4);
        }
      }
      break;
  }
  return out;
}
