/**
 * Fast seeded random tensor data for synthetic models. Values are uniform on
 * `[center - halfWidth, center + halfWidth]`, drawn from a 65536-entry table of encoded values
 * indexed by xorshift32 output, so F16/BF16/F32 fill at memory speed; Q8_0/Q4_0 fill f32 rows
 * and quantise them with `core/quant.ts`.
 *
 * @module
 */

import { DType, dtypeName, f32ToBF16 } from "../core/dtype.ts";
import { quantize } from "../core/quant.ts";
import { numel, tensorBytes } from "../core/tensor.ts";

/** The distribution of one tensor's values. */
export interface Init {
  readonly center: number;
  readonly halfWidth: number;
}

const TABLE = 65536;

/** A nonzero 32-bit seed for stream `index` of `seed` (splitmix32-style hash). */
export function streamSeed(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b9) + Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z = (z ^ (z >>> 16)) >>> 0;
  return z || 0x6d2b79f5;
}

/** The 65536 evenly spaced values of the distribution, as f32. */
function valueTable(init: Init): Float32Array {
  const t = new Float32Array(TABLE);
  for (let i = 0; i < TABLE; i++) t[i] = init.center + init.halfWidth * ((i + 0.5) / 32768 - 1);
  return t;
}

/** Fill `out` from `table` with two 16-bit indices per xorshift32 step; returns the state. */
function fillFromTable(
  out: Uint16Array | Float32Array,
  table: Uint16Array | Float32Array,
  s: number,
) {
  let x = s | 0;
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = table[x & 0xffff];
    out[i + 1] = table[x >>> 16];
  }
  if (i < n) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = table[x & 0xffff];
  }
  return x;
}

/**
 * Encoded random data for a tensor of `type` and `shape` (outermost first).
 * @param type storage type
 * @param shape outermost first
 * @param init value distribution
 * @param seed 32-bit nonzero seed; equal seeds give equal bytes
 */
export function randomTensor(
  type: DType,
  shape: readonly number[],
  init: Init,
  seed: number,
): Uint8Array {
  const n = numel(shape);
  const f32 = valueTable(init);
  switch (type) {
    case DType.F32: {
      const out = new Float32Array(n);
      fillFromTable(out, f32, seed);
      return new Uint8Array(out.buffer);
    }
    case DType.F16:
    case DType.BF16: {
      const table = new Uint16Array(TABLE);
      if (type === DType.F16) new Float16Array(table.buffer).set(f32);
      else for (let i = 0; i < TABLE; i++) table[i] = f32ToBF16(f32[i]);
      const out = new Uint16Array(n);
      fillFromTable(out, table, seed);
      return new Uint8Array(out.buffer);
    }
    case DType.Q8_0:
    case DType.Q4_0: {
      const out = new Uint8Array(tensorBytes(type, shape));
      const cols = shape[shape.length - 1];
      // quantise a few rows at a time: about 1M values per chunk
      const rowsPer = Math.max(1, Math.floor((1 << 20) / cols));
      const rows = n / cols;
      const chunk = new Float32Array(rowsPer * cols);
      let x = seed;
      let at = 0;
      for (let r = 0; r < rows; r += rowsPer) {
        const m = Math.min(rowsPer, rows - r) * cols;
        const part = chunk.subarray(0, m);
        x = fillFromTable(part, f32, x);
        const q = quantize(type, part);
        out.set(q, at);
        at += q.length;
      }
      return out;
    }
    default:
      throw new Error(
        `synthetic weights cannot be ${dtypeName(type)} (use F32, F16, BF16, Q8_0, Q4_0)`,
      );
  }
}
