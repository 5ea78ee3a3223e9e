/**
 * Helpers of the native CPU benchmarks: memory read bandwidth through the library's
 * `ts_read_bandwidth`, compute peaks through `ts_peak_*`, synthetic weights with valid
 * scales, medians.
 *
 * @module
 */

import { DType, rowBytes } from "../core/dtype.ts";
import type { NativeLib } from "../plugins/_native/symbols.ts";

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Read bandwidth in GB/s with all pool threads over a buffer far larger than the caches
 * (touched first, so no read lands on the shared zero page): median and best of `runs`.
 */
export function readBandwidth(
  lib: NativeLib,
  bytes = 1 << 30,
  runs = 7,
): { median: number; best: number } {
  const buf = new Uint8Array(bytes);
  const u32 = new Uint32Array(buf.buffer);
  for (let i = 0; i < u32.length; i += 1024) u32[i] = i; // touch every page
  lib.symbols.ts_read_bandwidth(buf, BigInt(bytes)); // warm-up
  const r: number[] = [];
  for (let i = 0; i < runs; i++) r.push(lib.symbols.ts_read_bandwidth(buf, BigInt(bytes)));
  return { median: median(r), best: Math.max(...r) };
}

/** Compute peaks of all pool threads in GOP/s (a multiply-add is 2 ops), medians of runs. */
export interface ComputePeak {
  /** 8-lane f32 FMA: the F32/F16/BF16 matmuls' arithmetic. */
  fma: number;
  /** int8 products widened to 32-bit sums (vpmaddubsw + vpmaddwd): the Q8_0 path. */
  int8: number;
  /** int8 products kept in 16-bit sums (vpmaddubsw + vpaddw): the Q4_0 path. */
  int8Sum16: number;
}

/**
 * Measure the compute roofline with `ts_peak_fma_f32` / `ts_peak_int8` (register-only loops
 * on every pool thread): medians of `runs`, each about `ms` milliseconds long.
 */
export function computePeak(lib: NativeLib, runs = 5, ms = 100): ComputePeak {
  const measure = (f: (iters: bigint) => number): number => {
    const probe = 1e5;
    const t0 = performance.now();
    f(BigInt(probe)); // warm-up, and the loop count for ~ms per run
    const iters = BigInt(Math.max(probe, Math.round(probe * ms / (performance.now() - t0))));
    return median(Array.from({ length: runs }, () => f(iters)));
  };
  return {
    fma: measure((n) => lib.symbols.ts_peak_fma_f32(n)),
    int8: measure((n) => lib.symbols.ts_peak_int8(0, n)),
    int8Sum16: measure((n) => lib.symbols.ts_peak_int8(1, n)),
  };
}

/** `[rows, cols]` weight bytes of `type` with pseudo-random values and finite, normal scales. */
export function synthWeight(type: DType, rows: number, cols: number, seed: number): Uint8Array {
  const rb = rowBytes(type, cols);
  const out = new Uint8Array(rb * rows);
  const u32 = new Uint32Array(out.buffer, 0, out.length >> 2);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < u32.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    u32[i] = s;
  }
  const u16 = new Uint16Array(out.buffer, 0, out.length >> 1);
  if (type === DType.F16) {
    for (let i = 0; i < u16.length; i++) {
      u16[i] = (u16[i] & 0xb3ff) | 0x0400;
    }
  }
  if (type === DType.BF16) {
    for (let i = 0; i < u16.length; i++) u16[i] = (u16[i] & 0xbc7f) | 0x0080;
  }
  if (type === DType.F32) {
    for (let i = 0; i < u32.length; i++) u32[i] = (u32[i] & 0xbc7fffff) | 0x00800000;
  }
  if (type === DType.Q8_0 || type === DType.Q4_0) {
    const bb = type === DType.Q8_0 ? 34 : 18;
    for (let p = 0; p < out.length; p += bb) {
      out[p] = 0x00;
      out[p + 1] = 0x20; // f16 2^-7
    }
  }
  return out;
}
