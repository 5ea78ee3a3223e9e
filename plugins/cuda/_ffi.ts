/**
 * FFI of the CUDA plugin: the symbols of `build/libts_cuda.so` (kernels/cuda) and of the
 * driver library `libcuda.so.1` that the probe opens. Device pointers are `pointer`s, host
 * arrays `buffer`s (never copied); ops return a cudaError_t (0 = queued).
 *
 * @module
 */

/** Must equal TS_CUDA_ABI_VERSION in kernels/cuda/ts_cuda.h. */
export const ABI_VERSION = 10;

const MATMUL = {
  parameters: ["pointer", "pointer", "pointer", "i32", "i32", "i32"],
  result: "i32",
} as const;
// out, w0, rows0, out1, w1, rows1, out2, w2, rows2, matrices, epilogue, x, cols, nTok
const MATVEC_BATCH = {
  parameters: [
    "pointer",
    "pointer",
    "i32",
    "pointer",
    "pointer",
    "i32",
    "pointer",
    "pointer",
    "i32",
    "i32",
    "i32",
    "pointer",
    "i32",
    "i32",
  ],
  result: "i32",
} as const;
// The batch's arguments but nTok (one token), then norm weight, normed x out, eps, side (rmsnorm
// prologue; side: the rows read x as given), residual out and a (add epilogue), index list,
// threshold and local (select; local 1: per-block lists that the next glu places); null = off.
const MATVEC_FUSED = {
  parameters: [
    ...MATVEC_BATCH.parameters.slice(0, 13) as [
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
    ],
    "pointer",
    "pointer",
    "f32",
    "i32",
    "pointer",
    "pointer",
    "pointer",
    "f32",
    "i32",
  ],
  result: "i32",
} as const;
// out, table, tokens, nTok, cols, device token (null: from tokens)
const EMBED = {
  parameters: ["pointer", "pointer", "buffer", "i32", "i32", "pointer"],
  result: "i32",
} as const;
// act, gate (null: gated), gateOut, up, x, idx, capacity, cols, kind, fromSelect (1: idx is
// the held select's list, left in per-block lists by the fused matvec just launched)
const GLU_SPARSE = {
  parameters: [
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "i32",
    "i32",
    "i32",
    "i32",
  ],
  result: "i32",
} as const;
// out, down_t, act, idx, capacity, cols, res_out (null: no residual add), res_a
const DOWN_SPARSE = {
  parameters: ["pointer", "pointer", "pointer", "pointer", "i32", "i32", "pointer", "pointer"],
  result: "i32",
} as const;
const BINARY = { parameters: ["pointer", "pointer", "pointer", "i32"], result: "i32" } as const;

/** Symbols of libts_cuda. */
export const SYMBOLS = {
  ts_cuda_abi_version: { parameters: [], result: "i32" },
  ts_cuda_build_id: { parameters: [], result: "pointer" },
  ts_cuda_error_string: { parameters: ["i32"], result: "pointer" },
  ts_cuda_init: { parameters: [], result: "i32" },
  ts_cuda_device_name: { parameters: [], result: "pointer" },
  // bytes → zeroed device memory or null
  ts_cuda_malloc: { parameters: ["i64"], result: "pointer" },
  ts_cuda_free: { parameters: ["pointer"], result: "i32" },
  // dst, dstOffset (bytes), src, bytes
  ts_cuda_upload: { parameters: ["pointer", "i64", "buffer", "i64"], result: "i32" },
  // dst, src, srcOffset (bytes), bytes; waits for every queued op
  ts_cuda_download: { parameters: ["buffer", "pointer", "i64", "i64"], result: "i32" },
  ts_cuda_sync: { parameters: [], result: "i32" },
  // p, bytes, iterations → GB/s
  ts_cuda_read_bandwidth: { parameters: ["pointer", "i64", "i32"], result: "f64" },
  // p, type, n, seed, scale, bias
  ts_cuda_fill_random: {
    parameters: ["pointer", "i32", "i64", "i32", "f32", "f32"],
    result: "i32",
  },

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
  ts_matvec_batch_f32: MATVEC_BATCH,
  ts_matvec_batch_f16: MATVEC_BATCH,
  ts_matvec_fused_f16: MATVEC_FUSED,
  ts_matvec_fused_bf16: MATVEC_FUSED,
  ts_matvec_fused_q8_0: MATVEC_FUSED,
  ts_matvec_fused_q4_0: MATVEC_FUSED,
  ts_matvec_batch_bf16: MATVEC_BATCH,
  ts_matvec_batch_q8_0: MATVEC_BATCH,
  ts_matvec_batch_q4_0: MATVEC_BATCH,
  // out, sum, a, b, w, nTok, n, eps
  ts_add_rmsnorm_f32: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32", "i32", "f32"],
    result: "i32",
  },
  // d1, s1, d2 (null: none), s2, n, device position
  ts_store_rows_f32: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "i32", "pointer"],
    result: "i32",
  },
  // q, nHead, k, nKV, headDim, device position, dim, base, k cache, v cache, v
  ts_rope_store_f32: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
      "pointer",
      "i32",
      "f64",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // out, x, w, nTok, n, eps
  ts_rmsnorm_f32: {
    parameters: ["pointer", "pointer", "pointer", "i32", "i32", "f32"],
    result: "i32",
  },
  // x, nTok, nHead, x2 (null: none), nHead2, headDim, pos0, device position (null: pos0), dim, base
  ts_rope_f32: {
    parameters: ["pointer", "i32", "i32", "pointer", "i32", "i32", "i32", "pointer", "i32", "f64"],
    result: "i32",
  },
  // out, q, k, v, nTok, pos0, nHead, nKV, headDim, scale, device position (null: pos0), nCtx
  // out, q, k, v, nTok, pos0, nHead, nKV, headDim, scale, dpos, nCtx, kNew, vNew, ropeDim,
  // ropeBase (kNew null: q and the cache are ready)
  ts_attention_f32: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "f64",
    ],
    result: "i32",
  },
  ts_add_f32: BINARY,
  ts_glu_f32_swiglu: BINARY,
  ts_glu_f32_reglu: BINARY,
  ts_glu_f32_drelu: BINARY,
  // dst, dstOffset, src, srcOffset, n (f32 elements)
  ts_copy_f32: { parameters: ["pointer", "i64", "pointer", "i64", "i64"], result: "i32" },

  // Sparse ops (kernels/cuda/sparse.cu); an index list is int32 [count, ids...] on the device.
  // out, x, n, op (0 relu, 1 abs_silu, 2 nonzero)
  ts_unary_f32: { parameters: ["pointer", "pointer", "i32", "i32"], result: "i32" },
  // idx, score, n, threshold
  ts_select_f32: { parameters: ["pointer", "pointer", "i32", "f32"], result: "i32" },
  ts_glu_sparse_f32: GLU_SPARSE,
  ts_glu_sparse_f16: GLU_SPARSE,
  ts_glu_sparse_bf16: GLU_SPARSE,
  ts_glu_sparse_q8_0: GLU_SPARSE,
  ts_glu_sparse_q4_0: GLU_SPARSE,
  ts_down_sparse_f32: DOWN_SPARSE,
  ts_down_sparse_f16: DOWN_SPARSE,
  ts_down_sparse_bf16: DOWN_SPARSE,
  ts_down_sparse_q8_0: DOWN_SPARSE,
  ts_down_sparse_q4_0: DOWN_SPARSE,
  // bench and tests: decode attention splits merged in a cluster of at most N blocks (0: never)
  ts_attention_config: { parameters: ["i32"], result: "i32" },
  // bench only: 1 the one-launch column-block sparse down (default), 0 split partials + sum
  ts_sparse_config: { parameters: ["i32"], result: "i32" },
  // out, x, n, alpha
  ts_axpy_f32: { parameters: ["pointer", "pointer", "i32", "f32"], result: "i32" },

  // Decode-step graphs (kernels/cuda/graph.cu).
  ts_step_ptr: { parameters: [], result: "pointer" },
  // pos, token
  ts_step_set: { parameters: ["i32", "i32"], result: "i32" },
  ts_scratch_epoch: { parameters: [], result: "i32" },
  ts_graph_begin: { parameters: [], result: "i32" },
  // out: the graph handle (8 bytes)
  ts_graph_end: { parameters: ["buffer"], result: "i32" },
  ts_graph_launch: { parameters: ["pointer"], result: "i32" },
  ts_graph_free: { parameters: ["pointer"], result: "i32" },
  // Greedy steps on the device: begin a run; the argmax of (logits, n) as the step's next
  // token; wait and copy the first n tokens picked (out: Int32Array).
  ts_greedy_begin: { parameters: [], result: "i32" },
  ts_step_argmax: { parameters: ["pointer", "i32"], result: "i32" },
  ts_greedy_read: { parameters: ["buffer", "i32"], result: "i32" },
  // Bench only: ms per replay (median of reps); matvec launch shape (grid, wpr, prefetch).
  ts_graph_time: { parameters: ["pointer", "i32"], result: "f64" },
  ts_matvec_config: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // Bench only: words (null stops), capacity in records (kernels/cuda/ts_cuda.h trace)
  ts_trace_start: { parameters: ["pointer", "i32"], result: "i32" },
} as const;

/** An opened libts_cuda. */
export type CudaLib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** The few driver-API calls the probe makes (CUresult 0 = success). */
export const DRIVER_SYMBOLS = {
  cuInit: { parameters: ["u32"], result: "i32" },
  cuDeviceGetCount: { parameters: ["buffer"], result: "i32" },
  cuDeviceGetName: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // value, attribute, device
  cuDeviceGetAttribute: { parameters: ["buffer", "i32", "i32"], result: "i32" },
} as const;

/** CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR. */
export const CC_MAJOR = 75;
export const CC_MINOR = 76;
