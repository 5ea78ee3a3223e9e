// The small ops of a decode step: rmsnorm, rope, add, glu (swiglu, reglu, drelu).
// All f32 on device buffers; out may alias the input where the Backend contract allows it.
// Rope builds its angle in double (as plugins/reference does); exp is the accurate expf.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (as part of a decode step).
#include "ts_cuda.h"

static int grid_for(size_t n, int block) {
  size_t g = (n + block - 1) / block, cap = (size_t)(ts_sm_count() > 0 ? ts_sm_count() : 132) * 16;
  return (int)(g < cap ? (g > 0 ? g : 1) : cap);
}

__global__ void rmsnorm_kernel(float* out, const float* x, const float* w, int n, float eps) {
  __shared__ float part[32];
  const float* xr = x + (size_t)blockIdx.x * n;
  float* o = out + (size_t)blockIdx.x * n;
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.f;
    v = warp_sum(v);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float inv = 1.0f / sqrtf(part[0] / n + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * inv * w[i];
}

// out [n_tok, n] = x / rms(x) · w; w is the f32 norm weight on the device.
TS_EXPORT int ts_rmsnorm_f32(float* out, const float* x, const float* w, int n_tok, int n, float eps) {
  rmsnorm_kernel<<<n_tok, 256, 0, ts_stream()>>>(out, x, w, n, eps);
  return ts_launch_status();
}

__global__ void rope_kernel(float* x, int n_tok, int n_head, int head_dim, int pos0, int dim,
                            double base) {
  const int half = dim / 2;
  const size_t total = (size_t)n_tok * n_head * half;
  for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < total;
       k += (size_t)gridDim.x * blockDim.x) {
    const int i = (int)(k % half);
    const size_t th = k / half;  // t * n_head + h
    const int t = (int)(th / n_head);
    const double theta = (double)(pos0 + t) * pow(base, (-2.0 * i) / dim);
    double s, c;
    sincos(theta, &s, &c);
    float* p = x + th * head_dim + 2 * i;
    const float x0 = p[0], x1 = p[1];
    p[0] = (float)(x0 * c - x1 * s);
    p[1] = (float)(x0 * s + x1 * c);
  }
}

// Rotate adjacent pairs (2i, 2i+1), 2i < dim, of x [n_tok, n_head, head_dim] in place.
TS_EXPORT int ts_rope_f32(float* x, int n_tok, int n_head, int head_dim, int pos0, int dim,
                          double base) {
  const size_t total = (size_t)n_tok * n_head * (dim / 2);
  if (total == 0) return 0;
  rope_kernel<<<grid_for(total, 256), 256, 0, ts_stream()>>>(x, n_tok, n_head, head_dim, pos0, dim, base);
  return ts_launch_status();
}

__global__ void add_kernel(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

TS_EXPORT int ts_add_f32(float* out, const float* a, const float* b, int n) {
  add_kernel<<<grid_for(n, 256), 256, 0, ts_stream()>>>(out, a, b, (size_t)n);
  return ts_launch_status();
}

enum { GLU_SWIGLU, GLU_REGLU, GLU_DRELU };

template <int K>
__global__ void glu_kernel(float* out, const float* g, const float* u, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float gv = g[i], uv = u[i];
    float v;
    if (K == GLU_SWIGLU) v = gv / (1.0f + expf(-gv)) * uv;
    else if (K == GLU_REGLU) v = fmaxf(gv, 0.f) * uv;
    else v = fmaxf(gv, 0.f) * fmaxf(uv, 0.f);
    out[i] = v;
  }
}

#define TS_GLU(name, K)                                                                     \
  TS_EXPORT int ts_glu_f32_##name(float* out, const float* g, const float* u, int n) {      \
    glu_kernel<K><<<grid_for(n, 256), 256, 0, ts_stream()>>>(out, g, u, (size_t)n);          \
    return ts_launch_status();                                                              \
  }

TS_GLU(swiglu, GLU_SWIGLU)
TS_GLU(reglu, GLU_REGLU)
TS_GLU(drelu, GLU_DRELU)
