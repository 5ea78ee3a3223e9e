/**
 * FFI of the CUDA plugin: the symbols of `build/libts_cuda.so` (kernels/cuda) and of the
 * driver library `libcuda.so.1` that the probe opens. Device pointers are `pointer`s, host
 * arrays `buffer`s (never copied); ops return a cudaError_t (0 = queued).
 *
 * @module
 */

/** Must equal TS_CUDA_ABI_VERSION in kernels/cuda/ts_cuda.h. */
export const ABI_VERSION = 1;

const MATMUL = {
  parameters: ["pointer", "pointer", "pointer", "i32", "i32", "i32"],
  result: "i32",
} as const;
const EMBED = {
  parameters: ["pointer", "pointer", "buffer", "i32", "i32"],
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
  // out, x, w, nTok, n, eps
  ts_rmsnorm_f32: {
    parameters: ["pointer", "pointer", "pointer", "i32", "i32", "f32"],
    result: "i32",
  },
  // x, nTok, nHead, headDim, pos0, dim, base
  ts_rope_f32: { parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "f64"], result: "i32" },
  // out, q, k, v, nTok, pos0, nHead, nKV, headDim, scale
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
    ],
    result: "i32",
  },
  ts_add_f32: BINARY,
  ts_glu_f32_swiglu: BINARY,
  ts_glu_f32_reglu: BINARY,
  ts_glu_f32_drelu: BINARY,
  // dst, dstOffset, src, srcOffset, n (f32 elements)
  ts_copy_f32: { parameters: ["pointer", "i64", "pointer", "i64", "i64"], result: "i32" },
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
