// Device management of libts_cuda: init, device memory (cudaMalloc only, never managed),
// host<->device copies, the stream, scratch areas, error strings, and two bench helpers
// (a read-bandwidth kernel and device-side random weights).
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (bandwidth and random weights).
#include <stdio.h>
#include <string.h>

#include "ts_cuda.h"

#ifndef TS_BUILD_ID
#define TS_BUILD_ID "dev"
#endif

static cudaStream_t g_stream = nullptr;
static int g_sms = 0;
static char g_name[256] = "";
static void* g_scratch[TS_SCRATCH_SLOTS] = {};
static size_t g_scratch_bytes[TS_SCRATCH_SLOTS] = {};
static int g_scratch_epoch = 0;  // bumped whenever a scratch area moves

static TsLocalSel g_local_sel = {};

static void (*g_trace_binders[16])(unsigned long long*) = {};
static int g_trace_n = 0;

cudaStream_t ts_stream() { return g_stream; }
TsLocalSel& ts_local_sel() { return g_local_sel; }
int ts_sm_count() { return g_sms; }
int ts_launch_status() { return (int)cudaGetLastError(); }

int ts_trace_register(void (*bind)(unsigned long long*)) {
  if (g_trace_n < 16) g_trace_binders[g_trace_n++] = bind;
  return g_trace_n;
}

// Bench: bind `words` (device memory, 2 + 3 · cap words) as every kernel's trace buffer and
// clear its counter (null: stop tracing). Outside graph captures only.
TS_EXPORT int ts_trace_start(unsigned long long* words, int cap) {
  if (words) {
    const unsigned long long head[2] = {0, (unsigned long long)cap};
    cudaMemcpyAsync(words, head, sizeof head, cudaMemcpyHostToDevice, g_stream);
  }
  for (int i = 0; i < g_trace_n; i++) g_trace_binders[i](words);
  return (int)cudaStreamSynchronize(g_stream);
}

void* ts_scratch(int slot, size_t bytes) {
  if (g_scratch_bytes[slot] >= bytes) return g_scratch[slot];
  // Growing frees the old area; the stream is drained first since queued kernels may use it.
  cudaStreamSynchronize(g_stream);
  if (g_scratch[slot]) cudaFree(g_scratch[slot]);
  g_scratch_epoch++;
  size_t want = bytes < (1u << 20) ? (1u << 20) : bytes + bytes / 4;
  if (cudaMalloc(&g_scratch[slot], want) != cudaSuccess) {
    g_scratch[slot] = nullptr, g_scratch_bytes[slot] = 0;
    return nullptr;
  }
  g_scratch_bytes[slot] = want;
  return g_scratch[slot];
}

void ts_scratch_moved() { g_scratch_epoch++; }

// Changes whenever a scratch area moved: graphs captured before then hold stale addresses.
TS_EXPORT int ts_scratch_epoch() { return g_scratch_epoch; }

TS_EXPORT int ts_cuda_abi_version() { return TS_CUDA_ABI_VERSION; }
TS_EXPORT const char* ts_cuda_build_id() { return TS_BUILD_ID; }
TS_EXPORT const char* ts_cuda_error_string(int err) {
  return cudaGetErrorString((cudaError_t)err);
}

// Devices found (device 0 made current, the stream created), or -cudaError_t.
TS_EXPORT int ts_cuda_init() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return -(int)e;
  if (n == 0) return 0;
  if (g_stream) return n;
  if ((e = cudaSetDevice(0)) != cudaSuccess) return -(int)e;
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) return -(int)e;
  g_sms = p.multiProcessorCount;
  snprintf(g_name, sizeof g_name, "%s (sm_%d%d, %d SMs, %.0f GiB)", p.name, p.major, p.minor,
           p.multiProcessorCount, (double)p.totalGlobalMem / (1u << 30));
  if ((e = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking)) != cudaSuccess) {
    return -(int)e;
  }
  return n;
}

TS_EXPORT const char* ts_cuda_device_name() { return g_name; }

// `bytes` of zeroed device memory, or null.
TS_EXPORT void* ts_cuda_malloc(int64_t bytes) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes > 0 ? (size_t)bytes : 1) != cudaSuccess) return nullptr;
  if (cudaMemsetAsync(p, 0, bytes > 0 ? (size_t)bytes : 1, g_stream) != cudaSuccess) {
    cudaFree(p);
    return nullptr;
  }
  return p;
}

TS_EXPORT int ts_cuda_free(void* p) {
  cudaStreamSynchronize(g_stream);
  return (int)cudaFree(p);
}

// Host to device; a pageable source is staged before return, so the caller may reuse it.
TS_EXPORT int ts_cuda_upload(void* dst, int64_t dst_offset, const void* src, int64_t bytes) {
  return (int)cudaMemcpyAsync((char*)dst + dst_offset, src, (size_t)bytes,
                              cudaMemcpyHostToDevice, g_stream);
}

// Device to host, after every queued op: the synchronising read of the Backend contract.
TS_EXPORT int ts_cuda_download(void* dst, const void* src, int64_t src_offset, int64_t bytes) {
  cudaError_t e = cudaMemcpyAsync(dst, (const char*)src + src_offset, (size_t)bytes,
                                  cudaMemcpyDeviceToHost, g_stream);
  if (e != cudaSuccess) return (int)e;
  return (int)cudaStreamSynchronize(g_stream);
}

// dst[dst_off + i] = src[src_off + i] for i < n (f32 elements); overlapping ranges go
// through scratch, since cudaMemcpy leaves overlap undefined.
TS_EXPORT int ts_copy_f32(float* dst, int64_t dst_off, const float* src, int64_t src_off,
                          int64_t n) {
  float* d = dst + dst_off;
  const float* s = src + src_off;
  size_t bytes = (size_t)n * 4;
  if (d < s + n && s < d + n) {
    void* tmp = ts_scratch(3, bytes);
    if (!tmp) return (int)cudaErrorMemoryAllocation;
    cudaMemcpyAsync(tmp, s, bytes, cudaMemcpyDeviceToDevice, g_stream);
    s = (const float*)tmp;
  }
  return (int)cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, g_stream);
}

TS_EXPORT int ts_cuda_sync() { return (int)cudaStreamSynchronize(g_stream); }

// ---- bench helpers ----

__global__ void read_kernel(const uint4* p, size_t n, uint32_t* sink) {
  uint32_t acc = 0;
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
    uint4 v = ld_stream(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;  // keeps the loads; practically never true
}

// Read bandwidth in GB/s: `iters` passes of a read kernel over `bytes` at `p`.
TS_EXPORT double ts_cuda_read_bandwidth(const void* p, int64_t bytes, int iters) {
  uint32_t* sink = (uint32_t*)ts_scratch(2, 4);
  size_t n = (size_t)bytes / 16;
  int grid = g_sms * 8;
  cudaEvent_t a, b;
  cudaEventCreate(&a), cudaEventCreate(&b);
  read_kernel<<<grid, 512, 0, g_stream>>>((const uint4*)p, n, sink);  // warm-up
  cudaEventRecord(a, g_stream);
  for (int i = 0; i < iters; i++) read_kernel<<<grid, 512, 0, g_stream>>>((const uint4*)p, n, sink);
  cudaEventRecord(b, g_stream);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a), cudaEventDestroy(b);
  return ms > 0 ? (double)n * 16 * iters / (ms * 1e6) : -1;
}

__device__ __forceinline__ float hash_uniform(uint64_t i, uint32_t seed) {
  uint64_t z = i * 0x9e3779b97f4a7c15ull + seed * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [-1, 1)
}

__global__ void fill_kernel(void* p, int type, size_t n, uint32_t seed, float scale, float bias) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
    float v = bias + scale * hash_uniform(i, seed);
    if (type == TS_F32) ((float*)p)[i] = v;
    else if (type == TS_F16) ((__half*)p)[i] = __float2half(v);
    else ((__nv_bfloat16*)p)[i] = __float2bfloat16(v);
  }
}

// Q8_0 in the device's group layout (ts_cuda.h), n a multiple of 256: every scale scale/127,
// every value a uniform int8 in [-127, 127], so the values are scale·U(-1, 1) on a grid.
__global__ void fill_q8_kernel(uint8_t* p, size_t n, uint32_t seed, float scale) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
    uint8_t* g = p + (i / Q8G_VALUES) * Q8G_BYTES;
    const int k = (int)(i % Q8G_VALUES);
    g[16 + k] = (uint8_t)(int8_t)rintf(127.f * hash_uniform(i, seed));
    if (k % 32 == 0) reinterpret_cast<__half*>(g)[k / 32] = __float2half(scale / 127.f);
  }
}

// Q4_0 in the device's group layout (ts_cuda.h), n a multiple of 256: every scale scale/7,
// every nibble uniform in 1..15, so the values are scale·U(-1, 1) on a grid of 15.
__global__ void fill_q4_kernel(uint8_t* p, size_t n, uint32_t seed, float scale) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n / 2; i += stride) {
    const size_t v = 2 * i;  // values v and v + 1 share byte i of the group's nibbles
    uint8_t* g = p + (v / Q4G_VALUES) * Q4G_BYTES;
    const int k = (int)(v % Q4G_VALUES);
    const int lo = 8 + (int)rintf(7.f * hash_uniform(v, seed));
    const int hi = 8 + (int)rintf(7.f * hash_uniform(v + 1, seed));
    g[16 + k / 2] = (uint8_t)(lo | (hi << 4));
    if (k % 32 == 0) reinterpret_cast<__half*>(g)[k / 32] = __float2half(scale / 7.f);
  }
}

// Bench only: fill n elements with bias + scale·U(-1, 1) on the device: F32, F16, BF16, or
// Q8_0 and Q4_0 (device layout, n a multiple of 256, no bias).
TS_EXPORT int ts_cuda_fill_random(void* p, int type, int64_t n, int seed, float scale,
                                  float bias) {
  if (type == TS_Q8_0 || type == TS_Q4_0) {
    if (n % Q8G_VALUES != 0 || bias != 0.f) return (int)cudaErrorInvalidValue;
    if (type == TS_Q8_0) {
      fill_q8_kernel<<<g_sms * 16, 256, 0, g_stream>>>((uint8_t*)p, (size_t)n, (uint32_t)seed, scale);
    } else {
      fill_q4_kernel<<<g_sms * 16, 256, 0, g_stream>>>((uint8_t*)p, (size_t)n, (uint32_t)seed, scale);
    }
    return ts_launch_status();
  }
  if (type != TS_F32 && type != TS_F16 && type != TS_BF16) return (int)cudaErrorInvalidValue;
  fill_kernel<<<g_sms * 16, 256, 0, g_stream>>>(p, type, (size_t)n, (uint32_t)seed, scale, bias);
  return ts_launch_status();
}
