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
// act, gate, up, x, idx, stride, cols, kind (gated: gate_out in place of gate)
const GLU_SPARSE = {
  parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32"],
  result: "void",
} as const;
// out, down_t, act, idx, stride, cols
const DOWN_SPARSE = {
  parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32"],
  result: "void",
} as const;
/** (out, down_t, act, score | null, threshold, nTok, rows, stride, cols) */
const DOWN_SPARSE_BATCH = {
  parameters: ["buffer", "buffer", "buffer", "buffer", "f32", "i32", "i32", "i32", "i32"],
  result: "void",
} as const;
const UNARY = { parameters: ["buffer", "buffer", "i32"], result: "void" } as const;

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
  // Weights repacked once at load (dst null: the packed size; 0: this library keeps the file
  // layout) and the matmuls over them: dst, src, rows, cols.
  ts_pack_q8_0: { parameters: ["buffer", "buffer", "i32", "i32"], result: "i64" },
  ts_pack_q4_0: { parameters: ["buffer", "buffer", "i32", "i32"], result: "i64" },
  ts_matmul_q8_0_packed: MATMUL,
  ts_matmul_q4_0_packed: MATMUL,
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

  // Sparse FFN ops (kernels/c/sparse.c); an index list is [count, ids...] as int32.
  // idx, score, n, threshold
  ts_select_f32: { parameters: ["buffer", "buffer", "i32", "f32"], result: "void" },
  ts_unary_f32_relu: UNARY,
  ts_unary_f32_abs_silu: UNARY,
  ts_unary_f32_nonzero: UNARY,
  // out, x, n, alpha
  ts_axpy_f32: { parameters: ["buffer", "buffer", "i32", "f32"], result: "void" },
  ts_glu_sparse_f32: GLU_SPARSE,
  ts_glu_sparse_f16: GLU_SPARSE,
  ts_glu_sparse_bf16: GLU_SPARSE,
  ts_glu_sparse_q8_0: GLU_SPARSE,
  ts_glu_sparse_q4_0: GLU_SPARSE,
  ts_glu_sparse_gated_f32: GLU_SPARSE,
  ts_glu_sparse_gated_f16: GLU_SPARSE,
  ts_glu_sparse_gated_bf16: GLU_SPARSE,
  ts_glu_sparse_gated_q8_0: GLU_SPARSE,
  ts_glu_sparse_gated_q4_0: GLU_SPARSE,
  ts_down_sparse_f32: DOWN_SPARSE,
  ts_down_sparse_f16: DOWN_SPARSE,
  ts_down_sparse_bf16: DOWN_SPARSE,
  ts_down_sparse_q8_0: DOWN_SPARSE,
  ts_down_sparse_q4_0: DOWN_SPARSE,
  ts_down_sparse_batch_f32: DOWN_SPARSE_BATCH,
  ts_down_sparse_batch_f16: DOWN_SPARSE_BATCH,
  ts_down_sparse_batch_bf16: DOWN_SPARSE_BATCH,
  ts_down_sparse_batch_q8_0: DOWN_SPARSE_BATCH,
  ts_down_sparse_batch_q4_0: DOWN_SPARSE_BATCH,

  // Compute rooflines (kernels/c/peak.c), GOP/s of all pool threads: (iters) f32 FMA;
  // (sum16, iters) int8 vpmaddubsw-style products with 32-bit (0) or 16-bit (1) sums.
  ts_peak_fma_f32: { parameters: ["i64"], result: "f64" },
  ts_peak_int8: { parameters: ["i32", "i64"], result: "f64" },
} as const;

/** The ABI version these symbols describe; must equal TS_ABI_VERSION in kernels/c/ts.h. */
export const ABI_VERSION = 3;

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
