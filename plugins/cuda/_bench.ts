/**
 * Bench-only helpers of the CUDA backend (bench/cuda_decode.ts): random weights made on the
 * device, the read bandwidth of a streaming kernel (kernels/cuda/runtime.cu), and a trace of
 * when each kernel started and when its PDL wait returned (kernels/cuda/ts_cuda.h).
 *
 * @module
 */

import { DType, dtypeName } from "../../core/dtype.ts";
import { numel } from "../../core/tensor.ts";
import { deviceBytes, GROUP_VALUES, isGrouped } from "./_layout.ts";
import type { Ctx } from "./_args.ts";
import { CudaWeight } from "./_buffers.ts";

/**
 * A weight of `bias + scale · U(-1, 1)` values made on the device: F32, F16 and BF16, or Q8_0
 * and Q4_0 (in the device layout, rows of whole 256-value groups, no bias).
 */
export function randomWeight(
  c: Ctx,
  name: string,
  type: DType,
  shape: number[],
  seed: number,
  scale: number,
  bias: number,
): CudaWeight {
  const n = numel(shape), bytes = deviceBytes(type, shape);
  if (isGrouped(type) && (shape[shape.length - 1] % GROUP_VALUES !== 0 || bias !== 0)) {
    throw new Error(
      `randomWeight ${name}: ${dtypeName(type)} needs rows of whole ${GROUP_VALUES}-value groups`,
    );
  }
  const fill = c.lib.symbols.ts_cuda_fill_random;
  const ptr = c.malloc(`weight ${name}`, bytes);
  c.check("randomWeight", fill(ptr, type, BigInt(n), seed, scale, bias));
  let f32: Deno.PointerObject | null = null;
  if (shape.length <= 1) {
    f32 = c.malloc(`weight ${name}`, n * 4);
    c.check("randomWeight", fill(f32, DType.F32, BigInt(n), seed, scale, bias));
  }
  return new CudaWeight(name, type, shape, ptr, bytes, f32);
}

/** Read bandwidth (GB/s) of `iters` passes of a streaming kernel over `bytes` of device memory. */
export function readBandwidth(
  c: Ctx,
  bytes: number,
  iters: number,
  free: (p: Deno.PointerObject) => void,
): number {
  const p = c.malloc("readBandwidth", bytes);
  try {
    return c.lib.symbols.ts_cuda_read_bandwidth(p, BigInt(bytes), iters);
  } finally {
    free(p);
  }
}

/** One kernel launch seen by `traceKernels`. */
export interface KernelTrace {
  /** Nanoseconds (device clock) when block 0 started, before its PDL wait. */
  start: number;
  /** Nanoseconds when block 0's PDL wait returned: the kernel before it had finished. */
  waitDone: number;
  /** Blocks of the grid and threads per block, to tell kernels apart. */
  grid: number;
  block: number;
}

/**
 * The kernels that `run` launches (at most `cap`), in launch order, with block 0's clock
 * before and after its PDL wait. Tracing costs block 0 two clock reads and one atomic.
 */
export function traceKernels(
  c: Ctx,
  run: () => void,
  cap: number,
  free: (p: Deno.PointerObject) => void,
): KernelTrace[] {
  const s = c.lib.symbols, bytes = (2 + 3 * cap) * 8;
  c.q.flush();
  const p = c.malloc("trace", bytes);
  try {
    c.check("trace", s.ts_trace_start(p, cap));
    try {
      run();
      c.q.flush();
    } finally {
      c.check("trace", s.ts_trace_start(null, 0));
    }
    const words = new BigUint64Array(bytes / 8);
    c.check("trace", s.ts_cuda_download(words, p, 0n, BigInt(bytes)));
    const n = Math.min(Number(words[0]), cap), out: KernelTrace[] = [];
    for (let i = 0; i < n; i++) {
      const shape = words[4 + 3 * i];
      out.push({
        start: Number(words[2 + 3 * i]),
        waitDone: Number(words[3 + 3 * i]),
        grid: Number(shape & 0xffffffffn),
        block: Number(shape >> 32n),
      });
    }
    return out;
  } finally {
    free(p);
  }
}
