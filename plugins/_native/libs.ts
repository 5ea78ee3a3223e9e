/**
 * The native libraries built from `kernels/c`, with the flags of each source. Files that run
 * before the CPU is checked (pool, features, dispatch) get no SIMD flags, so loading a
 * library never executes an instruction the CPU lacks.
 *
 * @module
 */

import type { LibSpec } from "./build.ts";

const PORTABLE = ["pool.c", "cpu.c", "matmul.c", "sparse.c"].map((file) => ({ file, flags: [] }));

/** Portable C11: the plain twin of every kernel, any 64-bit CPU. */
export const SCALAR: LibSpec = {
  name: "scalar",
  arch: null,
  sources: [
    ...PORTABLE,
    { file: "ops.c", flags: [] },
    { file: "bandwidth.c", flags: [] },
    { file: "peak.c", flags: [] },
    { file: "matmul_scalar.c", flags: ["-DTS_DISPATCH_SCALAR"] },
    { file: "sparse_scalar.c", flags: ["-DTS_DISPATCH_SCALAR"] },
  ],
};

/** x86-64 AVX2+FMA+F16C; 256-bit vectors won on Zen (see BENCHMARKS.md). */
export const X86_FLAGS: readonly string[] = [
  "-mavx2",
  "-mfma",
  "-mf16c",
  "-mprefer-vector-width=256",
];

/** AVX2 kernels with runtime dispatch; needs avx2, fma and f16c (the probe checks). */
export const X86: LibSpec = {
  name: "x86",
  arch: "x86_64",
  sources: [
    ...PORTABLE,
    { file: "dispatch_x86.c", flags: [] },
    { file: "matmul_scalar.c", flags: [] },
    { file: "ops.c", flags: X86_FLAGS },
    { file: "attention_avx2.c", flags: X86_FLAGS },
    { file: "bandwidth.c", flags: X86_FLAGS },
    { file: "peak.c", flags: X86_FLAGS },
    { file: "matmul_avx2.c", flags: X86_FLAGS },
    { file: "matmul_avx2_packed.c", flags: X86_FLAGS },
    { file: "sparse_scalar.c", flags: [] },
    { file: "sparse_avx2.c", flags: X86_FLAGS },
  ],
};

/** aarch64 NEON (Advanced SIMD is baseline there); dot-product kernels picked from HWCAP. */
export const NEON: LibSpec = {
  name: "neon",
  arch: "aarch64",
  sources: [
    ...PORTABLE,
    { file: "dispatch_neon.c", flags: [] },
    { file: "matmul_scalar.c", flags: [] },
    { file: "ops.c", flags: [] },
    { file: "bandwidth.c", flags: [] },
    { file: "peak.c", flags: [] },
    { file: "matmul_neon.c", flags: [] },
    { file: "sparse_scalar.c", flags: [] },
    { file: "sparse_neon.c", flags: [] },
    { file: "matmul_neon_dot.c", flags: ["-march=armv8.2-a+dotprod"] },
  ],
};

/** Every library, for `deno task build`. */
export const LIBS: readonly LibSpec[] = [SCALAR, X86, NEON];
