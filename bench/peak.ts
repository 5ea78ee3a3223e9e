/**
 * Compute peak of this machine through `ts_peak_fma_f32` / `ts_peak_int8` of a native
 * library (register-only loops on every pool thread), beside the read bandwidth: the two
 * rooflines of decode (memory-bound) and prefill (compute-bound), for 1 thread and all.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc bench/peak.ts --threads 2
 * ```
 *
 * @module
 */

import { SCALAR, X86 } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { computePeak, readBandwidth } from "./_native.ts";

if (import.meta.main) {
  const arg = (name: string, dflt: string) => {
    const i = Deno.args.indexOf(name);
    return i < 0 ? dflt : Deno.args[i + 1];
  };
  const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
  const lib = await library(Deno.build.arch === "x86_64" ? X86 : SCALAR);
  for (const t of threads > 1 ? [1, threads] : [1]) {
    lib.symbols.ts_set_threads(t);
    const p = computePeak(lib);
    const bw = readBandwidth(lib, 1 << 30, 5).median;
    console.log(
      `${t} thread(s): f32 FMA ${p.fma.toFixed(1)} GFLOP/s, int8 (32-bit sums) ${
        p.int8.toFixed(1)
      } GOP/s, int8 (16-bit sums) ${p.int8Sum16.toFixed(1)} GOP/s; read ${bw.toFixed(1)} GB/s; ` +
        `f32 FLOP per byte read ${(p.fma / bw).toFixed(1)}`,
    );
  }
  lib.symbols.ts_set_threads(1);
}
