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

#include <climits>

// Bump on any change of an exported signature; plugins/cuda/_ffi.ts checks it at load.
#define TS_CUDA_ABI_VERSION 10

#define TS_EXPORT extern "C" __attribute__((visibility("default")))

// GGUF type ids (core/dtype.ts).
enum { TS_F32 = 0, TS_F16 = 1, TS_Q4_0 = 2, TS_Q8_0 = 8, TS_BF16 = 30 };

// The stream every kernel and copy is queued on (created by ts_cuda_init).
cudaStream_t ts_stream();
// Multiprocessors of the device, for grid sizing.
int ts_sm_count();
// Scratch slots: 0 GEMM input, 1 attention splits, 2 bench sink, 3 overlapping copies,
// 4 sparse down partial sums, 5 per-block lists of a fused select (matvec_xreg.cu), 6 GEMM
// split partial sums, 7 the decode attention's rope angle table.
#define TS_SCRATCH_SLOTS 8
// A device scratch area of at least `bytes`, grown on demand (one per slot, not shared).
void* ts_scratch(int slot, size_t bytes);
// A scratch area's contents changed (its address did not): bumps the scratch epoch, so
// plugins/cuda captures its graphs again.
void ts_scratch_moved();
// 0 when the last launch was accepted, else the cudaError_t value.
int ts_launch_status();

// A select epilogue that left its survivors in per-block lists (matvec_xreg.cu, sel_local):
// block q of `grid` kept ids[q·total/grid ..] (ascending), cnt[q] of them. The gathered glu
// that follows (sparse.cu, from_select) places them into the index list `idx` itself.
struct TsLocalSel {
  int* idx;
  const int* ids;
  const int* cnt;
  int grid, total;
};
// The last such launch's lists (host side; idx null when none is pending).
TsLocalSel& ts_local_sel();

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

// Q8_0 and Q4_0 on the device: each row in groups of 8 GGUF blocks (256 values), a group being
// the 8 f16 scales (16 bytes) then the values (BITS each); a short last group is padded. The
// backend repacks GGUF's blocks (2-byte aligned only) at upload (plugins/cuda/_layout.ts), so
// every group is 16-byte aligned and 8 consecutive values are one aligned load.
// Q8_0: 256 int8, 272 bytes a group; value c = scale[c / 32] · q[c].
// Q4_0: 128 bytes of nibbles, byte k holding values 2k (low nibble) and 2k + 1 (high; GGUF pairs
// value j with j + 16), 144 bytes a group; value c = scale[c / 32] · (nibble - 8).
constexpr int Q8G_VALUES = 256, Q8G_BYTES = 272;
constexpr int Q4G_VALUES = 256, Q4G_BYTES = 144;

template <int GROUP_BYTES, int BITS>
struct QGroups {
  // the group holding value c, its scale, and the byte holding c (Q4_0: with its neighbour)
  static __device__ __forceinline__ const uint8_t* group(const uint8_t* row, int c) {
    return row + (size_t)(c >> 8) * GROUP_BYTES;
  }
  static __device__ __forceinline__ uint16_t scale_bits(const uint8_t* g, int c) {
    return reinterpret_cast<const uint16_t*>(g)[(c >> 5) & 7];
  }
  static __device__ __forceinline__ float scale(const uint8_t* g, int c) {
    return f16_bits(scale_bits(g, c));
  }
  static __device__ __forceinline__ const uint8_t* values(const uint8_t* g, int c) {
    return g + 16 + (BITS == 8 ? (c & 255) : ((c & 255) >> 1));
  }
  static __device__ __forceinline__ const uint8_t* at(const uint8_t* row, int c) {
    return values(group(row, c), c);
  }
  // ld(address of value c's byte), then (in h) its block's scale as raw f16 bits
  template <typename Ld>
  static __device__ __forceinline__ auto load_raw(const uint8_t* row, int c, uint16_t& h, Ld ld) {
    const uint8_t* g = group(row, c);
    const auto q = ld(values(g, c));
    h = scale_bits(g, c);
    return q;
  }
  // the same with the scale as a float (d)
  template <typename Ld>
  static __device__ __forceinline__ auto load(const uint8_t* row, int c, float& d, Ld ld) {
    uint16_t h;
    const auto q = load_raw(row, c, h, ld);
    d = f16_bits(h);
    return q;
  }
};

template <>
struct Elems<TS_Q8_0> : QGroups<Q8G_BYTES, 8> {
  static __device__ __forceinline__ float one(const uint8_t* row, int c) {
    const uint8_t* g = group(row, c);
    return scale(g, c) * (float)(int8_t)*values(g, c);
  }
};

template <>
struct Elems<TS_Q4_0> : QGroups<Q4G_BYTES, 4> {
  static __device__ __forceinline__ float one(const uint8_t* row, int c) {
    const uint8_t* g = group(row, c);
    const int nib = (*values(g, c) >> (4 * (c & 1))) & 15;
    return scale(g, c) * (float)(nib - 8);
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

// Q8_0 (the device's group layout): the 8 values as 8 raw bytes and their scale.
__device__ __forceinline__ uint2 ld_stream8(const void* p) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

template <>
struct Chunk<TS_Q8_0> {
  uint2 q;
  float d;
  __device__ __forceinline__ void load(const uint8_t* row, int c) {
    q = Elems<TS_Q8_0>::load(row, c, d, ld_stream8);
  }
  __device__ __forceinline__ void get(float* o) const {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      o[i] = d * (float)(int8_t)(q.x >> (8 * i));
      o[4 + i] = d * (float)(int8_t)(q.y >> (8 * i));
    }
  }
};

// Q4_0 (the device's group layout): the 8 values as one 4-byte word and their scale.
__device__ __forceinline__ uint32_t ld_stream4(const void* p) {
  uint32_t v;
  asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}

template <>
struct Chunk<TS_Q4_0> {
  uint32_t q;
  float d;
  __device__ __forceinline__ void load(const uint8_t* row, int c) {
    q = Elems<TS_Q4_0>::load(row, c, d, ld_stream4);
  }
  __device__ __forceinline__ void get(float* o) const {
#pragma unroll
    for (int i = 0; i < 8; i++) o[i] = d * (float)((int)((q >> (4 * i)) & 15) - 8);
  }
};

// Sixteen values of a Q8_0/Q4_0 row in the device's group layout (one 32-value block's half)
// for matvec_xreg.cu: 16 bytes (Q8_0) or 8 bytes (Q4_0) in one load, and the block's scale.
// dotq is Σ w·x against x quantised by xq_pack: int8 dot products (__dp4a) and one int-to-
// float conversion instead of sixteen (conversions issue at a quarter of the FMA rate).
template <int T>
struct Wide;

template <>
struct Wide<TS_Q8_0> {
  uint4 q;
  uint16_t h;  // the scale's raw bits: converted at use, so a load before the PDL wait
               // leaves nothing waiting on it there
  __device__ __forceinline__ void load(const uint8_t* row, int c) {
    q = Elems<TS_Q8_0>::load_raw(row, c, h, ld_stream);
  }
  // x values 0-3 in a[0], 4-7 in a[1], …
  __device__ __forceinline__ float dotq(const uint32_t (&a)[4], float dx, int) const {
    int s = __dp4a((int)q.x, (int)a[0], 0);
    s = __dp4a((int)q.y, (int)a[1], s), s = __dp4a((int)q.z, (int)a[2], s);
    return f16_bits(h) * dx * (float)__dp4a((int)q.w, (int)a[3], s);
  }
};

template <>
struct Wide<TS_Q4_0> {
  uint2 q;
  uint16_t h;  // as Wide<TS_Q8_0>::h
  __device__ __forceinline__ void load(const uint8_t* row, int c) {
    q = Elems<TS_Q4_0>::load_raw(row, c, h, ld_stream8);
  }
  // byte k of q holds values 2k (low nibble) and 2k + 1: x's even values 0-6 in a[0], 8-14 in
  // a[1], odd values 1-7 in a[2], 9-15 in a[3]; sx = Σ x_q, so Σ (nibble - 8)·x = Σ nibble·x - 8·sx
  __device__ __forceinline__ float dotq(const uint32_t (&a)[4], float dx, int sx) const {
    const uint32_t m = 0x0f0f0f0fu;
    int s = __dp4a((int)(q.x & m), (int)a[0], 0);
    s = __dp4a((int)(q.y & m), (int)a[1], s);
    s = __dp4a((int)((q.x >> 4) & m), (int)a[2], s);
    s = __dp4a((int)((q.y >> 4) & m), (int)a[3], s);
    return f16_bits(h) * dx * (float)(s - 8 * sx);
  }
};

// x of a quantised matvec: each lane's 16 values (two neighbouring lanes hold a 32-value
// block) as int8 with the block's scale, as the CPU backends quantise x for their int8 dot
// products: dx = max |x| / 127, x_q = round(x / dx); packed as Wide<T>::dotq reads them.
template <int T>
__device__ __forceinline__ void xq_pack(const float* x, uint32_t (&a)[4], float& dx, int& sx) {
  float m = 0.f;
#pragma unroll
  for (int e = 0; e < 16; e++) m = fmaxf(m, fabsf(x[e]));
  m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
  const float inv = m > 0.f ? 127.f / m : 0.f;
  int q[16];
  sx = 0;
#pragma unroll
  for (int e = 0; e < 16; e++) q[e] = __float2int_rn(x[e] * inv), sx += q[e];
  const auto pk = [](int p0, int p1, int p2, int p3) {
    return (uint32_t)(p0 & 255) | (uint32_t)(p1 & 255) << 8 | (uint32_t)(p2 & 255) << 16 |
           (uint32_t)(p3 & 255) << 24;
  };
#pragma unroll
  for (int k = 0; k < 4; k++) {
    if (T == TS_Q4_0) {  // evens of 0-7, evens of 8-15, odds of 0-7, odds of 8-15
      const int o = 8 * (k & 1) + (k >> 1);
      a[k] = pk(q[o], q[o + 2], q[o + 4], q[o + 6]);
    } else {
      a[k] = pk(q[4 * k], q[4 * k + 1], q[4 * k + 2], q[4 * k + 3]);
    }
  }
  dx = m / 127.f;
}

// Where the values c .. c+7 of a row start (for L2 prefetches).
template <int T>
__device__ __forceinline__ const uint8_t* chunk_at(const uint8_t* row, int c) {
  if (T == TS_Q8_0) return Elems<TS_Q8_0>::at(row, c);
  if (T == TS_Q4_0) return Elems<TS_Q4_0>::at(row, c);
  if (T == TS_F32) return row + 4 * (size_t)c;
  return row + 2 * (size_t)c;
}

// 16 bytes from global p to shared dst, asynchronously (L2 only); with src_bytes < 16 only
// that many are read and the rest is zero-filled (gemm.cu's tile edges). cp_async_commit
// closes a group; cp_async_wait<N> waits until at most N groups are pending, cp_async_wait_all
// for all of this thread's copies.
__device__ __forceinline__ void cp_async16(void* dst, const void* p) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(
                   (unsigned)__cvta_generic_to_shared(dst)),
               "l"(p)
               : "memory");
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

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
    case TS_Q8_0: return (size_t)((cols + Q8G_VALUES - 1) / Q8G_VALUES) * Q8G_BYTES;  // groups
    case TS_Q4_0: return (size_t)((cols + Q4G_VALUES - 1) / Q4G_VALUES) * Q4G_BYTES;  // groups
  }
  return 0;
}

// Bench trace (ts_trace_start, runtime.cu; bench/cuda_decode.ts --trace): while a buffer is
// bound, block 0 of every kernel appends {start, wait done, grid | block << 32} (globaltimer
// ns; start is before the PDL wait) at words[2 + 3 i], i from the counter words[0], while
// i < words[1]. Each translation unit holds its own pointer; ts_trace_register lists the
// binders, which the host calls outside any graph capture (replays read the pointer live).
static __device__ unsigned long long* ts_trace_words;
int ts_trace_register(void (*bind)(unsigned long long*));
static void ts_trace_bind(unsigned long long* words) {
  cudaMemcpyToSymbolAsync(ts_trace_words, &words, sizeof words, 0, cudaMemcpyHostToDevice,
                          ts_stream());
}
[[maybe_unused]] static const int ts_trace_bound = ts_trace_register(ts_trace_bind);

__device__ __forceinline__ unsigned long long globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

// Programmatic dependent launch: every kernel of the library starts with pdl_start(), which
// lets the next kernel on the stream launch now (its blocks wait in their own pdl_start until
// this grid has finished and its writes are visible), hiding the launch gap between kernels.
// With trigger false the kernel lets it in later itself (pdl_trigger); results are the same.
__device__ __forceinline__ void pdl_start(bool trigger = true) {
  const bool lead = (blockIdx.x | blockIdx.y | blockIdx.z | threadIdx.x | threadIdx.y) == 0;
  unsigned long long* tw = lead ? ts_trace_words : nullptr;
  const unsigned long long t0 = tw ? globaltimer() : 0;
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (trigger) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  if (tw) {
    const unsigned long long t1 = globaltimer(), i = atomicAdd(tw, 1ull);
    if (i < tw[1]) {
      tw[2 + 3 * i] = t0, tw[3 + 3 * i] = t1;
      tw[4 + 3 * i] = gridDim.x * gridDim.y | (unsigned long long)(blockDim.x * blockDim.y) << 32;
    }
  }
}

// For a kernel that started with pdl_start(false): let the next kernel launch now (after this
// block's own loads, so that the next kernel's early loads do not queue in front of them).
__device__ __forceinline__ void pdl_trigger() {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// Launch `kernel` on the library's stream with programmatic dependent launch allowed, in
// thread-block clusters of `cluster` blocks along z when that is more than 1.
template <typename... K, typename... A>
static inline void ts_launch_cluster(void (*kernel)(K...), dim3 grid, dim3 block, int cluster,
                                     A... args) {
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  attr[1].id = cudaLaunchAttributeClusterDimension;
  attr[1].val.clusterDim.x = 1, attr[1].val.clusterDim.y = 1, attr[1].val.clusterDim.z = cluster;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = 0;
  cfg.stream = ts_stream(), cfg.attrs = attr, cfg.numAttrs = cluster > 1 ? 2 : 1;
  cudaLaunchKernelEx(&cfg, kernel, ((K)args)...);
}
template <typename... K, typename... A>
static inline void ts_launch(void (*kernel)(K...), dim3 grid, dim3 block, A... args) {
  ts_launch_cluster(kernel, grid, block, 1, args...);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Rope (ops.cu, attention.cu): the angle of pair i (dims 2i, 2i+1, 2i < dim) at position pos,
// as sine and cosine in double precision, and a pair rotated by it.
__device__ __forceinline__ void rope_angle(int pos, int i, int dim, double base, double& s,
                                           double& c) {
  sincos((double)pos * pow(base, (-2.0 * i) / dim), &s, &c);
}
__device__ __forceinline__ void rope_rotate(float& x0, float& x1, double s, double c) {
  const float a = x0, b = x1;
  x0 = (float)(a * c - b * s), x1 = (float)(a * s + b * c);
}

// Block q of n splitting `total` rows evenly: its first row (row_split(q + 1, …) ends it).
__host__ __device__ __forceinline__ int row_split(int q, int total, int n) {
  return (int)((long long)q * total / n);
}

// Inclusive prefix sum of v over the lanes of a warp (all 32 lanes take part).
__device__ __forceinline__ int warp_scan(int v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  return v;
}

// Per-block survivor lists of a select (matvec_xreg.cu): pre[q] = Σ cnt[p] over p < q for
// q < n, pre[n] = the total; one block of THREADS threads, n ≤ MAX, cnt read through L2
// (other blocks of a running launch may have just written it), wt shared scratch of
// THREADS / 32 ints. Ends with a block barrier.
template <int THREADS, int MAX>
__device__ __forceinline__ void scan_counts(int* pre, int* wt, const int* cnt, int n) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, per = (n + THREADS - 1) / THREADS;
  int c[MAX / THREADS], mine = 0;
#pragma unroll
  for (int e = 0; e < MAX / THREADS; e++) {
    const int q = threadIdx.x * per + e;
    c[e] = e < per && q < n ? __ldcg(cnt + q) : 0;
    mine += c[e];
  }
  const int incl = warp_scan(mine);
  if (lane == 31) wt[warp] = incl;
  __syncthreads();
  int at = incl - mine, all = 0;
#pragma unroll
  for (int k = 0; k < THREADS / 32; k++) at += k < warp ? wt[k] : 0, all += wt[k];
#pragma unroll
  for (int e = 0; e < MAX / THREADS; e++) {
    const int q = threadIdx.x * per + e;
    if (e < per && q < n) pre[q] = at;
    at += c[e];
  }
  if (threadIdx.x == 0) pre[n] = all;
  __syncthreads();
}

// The block q < n whose list holds survivor k: pre[q] <= k < pre[q + 1] (k < pre[n]).
__device__ __forceinline__ int count_owner(const int* pre, int n, int k) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (pre[mid] <= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
