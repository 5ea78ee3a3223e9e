/**
 * The FFI symbol table every libts_* library exports (kernels/c). Pointers are passed as
 * `buffer` (typed arrays are not copied); sizes are i32 element counts.
 *
 * @module
 */

const MATMUL = {
  parameters: ["buffer", "buffer", "buffer", "i32", "i32", "i32"],
  result: "void",
} as const;
const EMBED = { parameters: ["buffer", "buffer", "buffer", "i32", "i32"], result: "void" } as const;
const BINARY = { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" } as const;

/** Symbols of a libts_* library; identical for the scalar, x86 and NEON builds. */
export const SYMBOLS = {
  ts_abi_version: { parameters: [], result: "i32" },
  ts_build_id: { parameters: [], result: "pointer" },
  ts_cpu_features: { parameters: [], result: "u32" },
  ts_matmul_variant: { parameters: [], result: "pointer" },
  ts_set_threads: { parameters: ["i32"], result: "i32" },
  ts_get_threads: { parameters: [], result: "i32" },
  ts_read_bandwidth: { parameters: ["buffer", "i64"], result: "f64" },

  ts_embed_f32: EMBED,
  ts_embed_f16: EMBED,
  ts_embed_bf16: EMBED,
  ts_embed_q8_0: EMBED,
  ts_embed_q4_0: EMBED,
  ts_matmul_f32: MATMUL,
  ts_matmul_f16: MATMUL,
  ts_matmul_bf16: MATMUL,
  ts_matmul_q8_0: MATMUL,
  ts_matmul_q4_0: MATMUL,
  // out, x, w, nTok, n, eps
  ts_rmsnorm_f32: {
    parameters: ["buffer", "buffer", "buffer", "i32", "i32", "f32"],
    result: "void",
  },
  // x, nTok, nHead, headDim, pos0, dim, base
  ts_rope_f32: { parameters: ["buffer", "i32", "i32", "i32", "i32", "i32", "f64"], result: "void" },
  // out, q, k, v, nTok, pos0, nHead, nKV, headDim, scale
  ts_attention_f32: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "i32", "f32"],
    result: "void",
  },
  ts_add_f32: BINARY,
  ts_glu_f32_swiglu: BINARY,
  ts_glu_f32_reglu: BINARY,
  ts_glu_f32_drelu: BINARY,
  ts_copy_f32: { parameters: ["buffer", "buffer", "i32"], result: "void" },
} as const;

/** The ABI version these symbols describe; must equal TS_ABI_VERSION in kernels/c/ts.h. */
export const ABI_VERSION = 1;

/** An opened libts_* library. */
export type NativeLib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** TS_CPU_* bits of kernels/c/ts.h, by name. */
export const CPU_FEATURES = {
  sse2: 1 << 0,
  avx2: 1 << 1,
  fma: 1 << 2,
  f16c: 1 << 3,
  avx512f: 1 << 4,
  avx512bw: 1 << 5,
  avx512vl: 1 << 6,
  avx512vnni: 1 << 7,
  avxvnni: 1 << 8,
  avx512bf16: 1 << 9,
  asimd: 1 << 16,
  dotprod: 1 << 17,
  fp16: 1 << 18,
} as const;

/** Names of the feature bits set in `bits`, e.g. `["avx2", "fma", "f16c"]`. */
export function featureNames(bits: number): string[] {
  return Object.entries(CPU_FEATURES).filter(([, b]) => (bits & b) !== 0).map(([n]) => n);
}
