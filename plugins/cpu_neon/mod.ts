/**
 * The aarch64 NEON backend: Advanced SIMD matmul kernels, with `vdotq_s32` for Q8_0 and
 * Q4_0 where HWCAP reports the dot-product extension, multi-threaded, over FFI. Scores 30
 * on aarch64 with asimd, 0 elsewhere. A prebuilt (cross-compiled) `build/libts_neon.so`
 * is used as is when it matches the sources (see tools/ci_neon.sh). Needs `--allow-ffi
 * --allow-read`, plus `--allow-write=build --allow-run=cc` to build on first use.
 *
 * @example
 * ```ts
 * import { plugin } from "./mod.ts";
 * const probe = await plugin.probe(); // { score: 30, reason: "NEON (asimd dotprod)" } on Graviton 3
 * ```
 *
 * @module
 */

import type { Backend, BackendOptions, BackendPlugin, Probe } from "../../core/backend.ts";
import { availability, ffiBlocked, library, openBackend } from "../_native/loader.ts";
import { CPU_FEATURES, featureNames, LIB } from "./_ffi.ts";

/** The registry entry: 30 on aarch64 CPUs with asimd, 0 elsewhere. */
export const plugin: BackendPlugin = {
  name: "cpu_neon",
  async probe(): Promise<Probe> {
    if (Deno.build.arch !== "aarch64") {
      return { score: 0, reason: `not aarch64 (${Deno.build.arch})` };
    }
    const blocked = ffiBlocked();
    if (blocked) return { score: 0, reason: blocked };
    const a = await availability(LIB);
    if (a !== "ready" && a !== "buildable") return { score: 0, reason: a };
    const bits = (await library(LIB)).symbols.ts_cpu_features();
    if ((bits & CPU_FEATURES.asimd) === 0) return { score: 0, reason: "CPU lacks asimd" };
    return { score: 30, reason: `NEON (${featureNames(bits).join(" ")})` };
  },
  async open(options?: BackendOptions): Promise<Backend> {
    const probe = await plugin.probe();
    if (probe.score <= 0) throw new Error(`cpu_neon cannot run here: ${probe.reason}`);
    return openBackend("cpu_neon", LIB, options);
  },
};
