/**
 * The portable C backend: every op in plain C11 over FFI, multi-threaded, no SIMD
 * intrinsics. The plain twin of `cpu_x86` and `cpu_neon`, and the fallback on any 64-bit
 * Linux or macOS with a C compiler. Needs `--allow-ffi --allow-read --allow-write=build
 * --allow-run=cc` (write and run only to build the library on first use).
 *
 * @example
 * ```ts
 * import { plugin } from "./mod.ts";
 * if ((await plugin.probe()).score > 0) {
 *   const backend = await plugin.open({ threads: 2 });
 *   const x = backend.alloc(4);
 *   backend.write(x, new Float32Array([1, 2, 3, 4]));
 *   backend.close?.();
 * }
 * ```
 *
 * @module
 */

import type { Backend, BackendOptions, BackendPlugin, Probe } from "../../core/backend.ts";
import { availability, ffiBlocked, openBackend } from "../_native/loader.ts";
import { LIB } from "./_ffi.ts";

/** The registry entry: score 10 where FFI works and the library exists or can be built. */
export const plugin: BackendPlugin = {
  name: "cpu_scalar",
  async probe(): Promise<Probe> {
    const blocked = ffiBlocked();
    if (blocked) return { score: 0, reason: blocked };
    const a = await availability(LIB);
    if (a === "ready") return { score: 10, reason: "portable C library present" };
    if (a === "buildable") return { score: 10, reason: "portable C library, built on first use" };
    return { score: 0, reason: a };
  },
  open(options?: BackendOptions): Promise<Backend> {
    return openBackend("cpu_scalar", LIB, options);
  },
};
