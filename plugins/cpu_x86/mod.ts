/**
 * The x86-64 SIMD backend: AVX2/FMA/F16C matmul kernels (int8 dot products for Q8_0 and
 * Q4_0), multi-threaded, over FFI. The probe reads cpuid through the library's
 * `ts_cpu_features()` (compiled without SIMD flags, so it runs on any x86-64) and scores 30
 * only when avx2, fma and f16c are all present. Needs `--allow-ffi --allow-read
 * --allow-write=build --allow-run=cc` (write and run only to build on first use).
 *
 * @example
 * ```ts
 * import { plugin } from "./mod.ts";
 * const probe = await plugin.probe();
 * console.log(probe.score, probe.reason); // 30 "avx2 fma f16c ..." on a Haswell or later
 * ```
 *
 * @module
 */

import type { Backend, BackendOptions, BackendPlugin, Probe } from "../../core/backend.ts";
import { availability, ffiBlocked, library, openBackend } from "../_native/loader.ts";
import { CPU_FEATURES, featureNames, LIB } from "./_ffi.ts";

const NEEDED = ["avx2", "fma", "f16c"] as const;

/** The registry entry: 30 on x86-64 CPUs with AVX2+FMA+F16C, 0 elsewhere. */
export const plugin: BackendPlugin = {
  name: "cpu_x86",
  async probe(): Promise<Probe> {
    if (Deno.build.arch !== "x86_64") {
      return { score: 0, reason: `not x86-64 (${Deno.build.arch})` };
    }
    const blocked = ffiBlocked();
    if (blocked) return { score: 0, reason: blocked };
    const a = await availability(LIB);
    if (a !== "ready" && a !== "buildable") return { score: 0, reason: a };
    const bits = (await library(LIB)).symbols.ts_cpu_features();
    const have = featureNames(bits);
    const missing = NEEDED.filter((f) => (bits & CPU_FEATURES[f]) === 0);
    if (missing.length) return { score: 0, reason: `CPU lacks ${missing.join(", ")}` };
    return { score: 30, reason: `x86 SIMD (${have.join(" ")})` };
  },
  async open(options?: BackendOptions): Promise<Backend> {
    const probe = await plugin.probe();
    if (probe.score <= 0) throw new Error(`cpu_x86 cannot run here: ${probe.reason}`);
    return openBackend("cpu_x86", LIB, options);
  },
};
