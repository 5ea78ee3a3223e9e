// Shared declarations of the CUDA kernels (libts_cuda): the ABI version, weight type ids,
// the one stream every op runs on, and the element decoders of each weight type.
//
// Build: plugins/cuda/_build.ts runs nvcc on every kernels/cuda/*.cu into build/libts_cuda.so
// (sm_90 SASS + compute_90 PTX). Bench: bench/cuda_decode.ts.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

// Bump on any change of an exported signature; plugins/cuda/_ffi.ts checks it at load.
#define TS_CUDA_ABI_VERSION 5

#define TS_EXPORT extern "C" __attribute__((visibility("default")))

// GGUF type ids (core/dtype.ts).
enum { TS_F32 = 0, TS_F16 = 1, TS_Q4_0 = 2, TS_Q8_0 = 8, TS_BF16 = 30 };

// The stream every kernel and copy is queued on (created by ts_cuda_init).
cudaStream_t ts_stream();
// Multiprocessors of the device, for grid sizing.
int ts_sm_count();
// Scratch slots: 0 GEMM input, 1 attention splits, 2 bench sink, 3 overlapping copies,
// 4 sparse down partial sums, 5 per-block lists of a fused select (matvec_xreg.cu).
#define TS_SCRATCH_SLOTS 6
// A device scratch area of at least `bytes`, grown on demand (one per slot, not shared).
void* ts_scratch(int slot, size_t bytes);
// 0 when the last launch was accepted, else the cudaError_t value.
int ts_launch_status();

// Streamed weights: bypass L1 so the activations it holds stay there.
__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ float bf16_bits(uint32_t h) { return __uint_as_float(h << 16); }
__device__ __forceinline__ float f16_bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// Element decoders of a weight row: one(row, c) is element c; eight(row, c, v) elements
// c .. c+7 (c a multiple of 8, the row 16-byte aligned for the float types).
template <int T>
struct Elems;

template <>
struct Elems<TS_F32> {
  static __device__ __forceinline__ float one(const uint8_t* row, int c) {
    return reinterpret_cast<const float*>(row)[c];
  }
  static __device__ __forceinline__ void eight(const uint8_t* row, int c, float* v) {
    uint4 a = ld_stream(row + 4 * (size_t)c), b = ld_stream(row + 4 * (size_t)c + 16);
    v[0] = __uint_as_float(a.x), v[1] = __uint_as_float(a.y);
    v[2] = __uint_as_float(a.z), v[3] = __uint_as_float(a.w);
    v[4] = __uint_as_float(b.x), v[5] = __uint_as_float(b.y);
    v[6] = __uint_as_float(b.z), v[7] = __uint_as_float(b.w);
  }
};

template <>
struct Elems<TS_F16> {
  static __device__ __forceinline__ float one(const uint8_t* row, int c) {
    return f16_bits(reinterpret_cast<const uint16_t*>(row)[c]);
  }
  static __device__ __forceinline__ void eight(const uint8_t* row, int c, float* v) {
    uint4 a = ld_stream(row + 2 * (size_t)c);
    const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
  }
};

template <>
struct Elems<TS_BF16> {
  static __device__ __forceinline__ float one(const uint8_t* row, int c) {
    return bf16_bits(reinterpret_cast<const uint16_t*>(row)[c]);
  }
  static __device__ __forceinline__ void eight(const uint8_t* row, int c, float* v) {
    uint4 a = ld_stream(row + 2 * (size_t)c);
    const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      v[2 * i] = __uint_as_float(w[i] << 16), v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};

// Q8_0: 34-byte blocks of 32 values, f16 scale then 32 int8; 2-byte aligned only.
template <>
struct Elems<TS_Q8_0> {
  static __device__ __forceinline__ float one(const uint8_t* row, int c) {
    const uint8_t* b = row + (size_t)(c >> 5) * 34;
    return f16_bits(*reinterpret_cast<const uint16_t*>(b)) * (float)(int8_t)b[2 + (c & 31)];
  }
  static __device__ __forceinline__ void eight(const uint8_t* row, int c, float* v) {
    const uint8_t* b = row + (size_t)(c >> 5) * 34;
    const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2 + (c & 31));
    float d = f16_bits(*reinterpret_cast<const uint16_t*>(b));
#pragma unroll
    for (int i = 0; i < 4; i++) {
      uint16_t p = q[i];
      v[2 * i] = d * (float)(int8_t)(p & 0xff), v[2 * i + 1] = d * (float)(int8_t)(p >> 8);
    }
  }
};

// Q4_0: 18-byte blocks, f16 scale then 16 bytes; byte j holds value j (low nibble) and
// value j + 16 (high nibble); value = d * (nibble - 8).
template <>
struct Elems<TS_Q4_0> {
  static __device__ __forceinline__ float one(const uint8_t* row, int c) {
    const uint8_t* b = row + (size_t)(c >> 5) * 18;
    int j = c & 31;
    int nib = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);
    return f16_bits(*reinterpret_cast<const uint16_t*>(b)) * (float)(nib - 8);
  }
  static __device__ __forceinline__ void eight(const uint8_t* row, int c, float* v) {
    const uint8_t* b = row + (size_t)(c >> 5) * 18;
    int j = c & 31, shift = j < 16 ? 0 : 4;
    const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2 + (j & 15));
    float d = f16_bits(*reinterpret_cast<const uint16_t*>(b));
#pragma unroll
    for (int i = 0; i < 4; i++) {
      uint16_t p = q[i];
      v[2 * i] = d * (float)((int)((p >> shift) & 15) - 8);
      v[2 * i + 1] = d * (float)((int)((p >> (8 + shift)) & 15) - 8);
    }
  }
};

// Eight weights (elements c .. c+7 of a row) as loaded, converted only at use: F16/BF16 keep
// the raw 16 bytes (4 registers), so 8 loads in flight per lane cost 32 registers.
template <int T>
struct Chunk {
  float v[8];
  __device__ __forceinline__ void load(const uint8_t* row, int c) { Elems<T>::eight(row, c, v); }
  __device__ __forceinline__ void get(float* o) const {
#pragma unroll
    for (int e = 0; e < 8; e++) o[e] = v[e];
  }
};

template <>
struct Chunk<TS_F16> {
  uint4 r;
  __device__ __forceinline__ void load(const uint8_t* row, int c) { r = ld_stream(row + 2 * (size_t)c); }
  __device__ __forceinline__ void get(float* o) const {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      o[2 * i] = f.x, o[2 * i + 1] = f.y;
    }
  }
};

template <>
struct Chunk<TS_BF16> {
  uint4 r;
  __device__ __forceinline__ void load(const uint8_t* row, int c) { r = ld_stream(row + 2 * (size_t)c); }
  __device__ __forceinline__ void get(float* o) const {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      o[2 * i] = __uint_as_float(w[i] << 16), o[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};

// Ask L2 to fetch the line holding p (no register waits for it).
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// Bytes of one row of `cols` elements of type `t` (cols a whole number of blocks).
static inline size_t ts_row_bytes(int t, int cols) {
  switch (t) {
    case TS_F32: return (size_t)cols * 4;
    case TS_F16:
    case TS_BF16: return (size_t)cols * 2;
    case TS_Q8_0: return (size_t)(cols / 32) * 34;
    case TS_Q4_0: return (size_t)(cols / 32) * 18;
  }
  return 0;
}

// Programmatic dependent launch: every kernel of the library starts with pdl_start(), which
// lets the next kernel on the stream launch now (its blocks wait in their own pdl_start until
// this grid has finished and its writes are visible), hiding the launch gap between kernels.
__device__ __forceinline__ void pdl_start() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// Launch `kernel` on the library's stream with programmatic dependent launch allowed.
template <typename... K, typename... A>
static inline void ts_launch(void (*kernel)(K...), dim3 grid, dim3 block, A... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = 0;
  cfg.stream = ts_stream(), cfg.attrs = attr, cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, kernel, ((K)args)...);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
