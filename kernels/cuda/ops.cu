// The small ops of a decode step: rmsnorm (alone, or fused after the residual add), rope
// (of up to two buffers per launch), add, glu (swiglu, reglu, drelu), and the KV-cache row
// store of a captured decode step. All f32 on device buffers; out may alias the input where
// the Backend contract allows it. Rope builds its angle in double (as plugins/reference
// does); exp is the accurate expf. `dpos`, when set, points at the step's position in
// device memory (graph.cu), so a captured graph replays at every position.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (as part of a decode step).
#include "ts_cuda.h"

static int grid_for(size_t n, int block) {
  size_t g = (n + block - 1) / block, cap = (size_t)(ts_sm_count() > 0 ? ts_sm_count() : 132) * 16;
  return (int)(g < cap ? (g > 0 ? g : 1) : cap);
}

// With `b` set: x = a + b first (the residual add), stored to sum, then normed. Plain twin of
// rmsnorm_reg_kernel, used when n is not a multiple of 4 or over RN_MAX.
__global__ void rmsnorm_kernel(float* out, const float* x, const float* w, int n, float eps,
                               const float* b, float* sum) {
  pdl_start();
  __shared__ float part[32];
  const float* xr = x + (size_t)blockIdx.x * n;
  float* o = out + (size_t)blockIdx.x * n;
  float ss = 0.f;
  if (b) {
    const float* br = b + (size_t)blockIdx.x * n;
    float* sr = sum + (size_t)blockIdx.x * n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = xr[i] + br[i];
      sr[i] = v;
      ss += v * v;
    }
    __syncthreads();  // sum may alias x: every thread's element is stored before the reread
    xr = sr;
  } else {
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  }
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

constexpr int RN_THREADS = 256, RN_VEC = 8, RN_MAX = RN_THREADS * RN_VEC * 4;

// The same for n % 4 == 0, n ≤ RN_MAX: one pass, every thread keeps its ≤ 8 float4 of the row
// in registers (read once, no reread of sum), one reduction over 8 warps.
__global__ void __launch_bounds__(RN_THREADS)
rmsnorm_reg_kernel(float* out, const float* x, const float* w, int n, float eps, const float* b,
                   float* sum) {
  pdl_start();
  __shared__ float part[RN_THREADS / 32];
  const int n4 = n / 4;
  const float4* xr = reinterpret_cast<const float4*>(x + (size_t)blockIdx.x * n);
  const float4* br = reinterpret_cast<const float4*>(b + (size_t)blockIdx.x * n);
  float4* sr = reinterpret_cast<float4*>(sum + (size_t)blockIdx.x * n);
  float4 v[RN_VEC];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < RN_VEC; k++) {
    const int i = threadIdx.x + k * RN_THREADS;
    if (i < n4) {
      v[k] = xr[i];
      if (b) {
        const float4 c = br[i];
        v[k].x += c.x, v[k].y += c.y, v[k].z += c.z, v[k].w += c.w;
        sr[i] = v[k];  // each thread rereads only its own elements: sum may alias x
      }
      ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    }
  }
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  float tot = 0.f;
#pragma unroll
  for (int q = 0; q < RN_THREADS / 32; q++) tot += part[q];
  const float inv = 1.0f / sqrtf(tot / n + eps);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  float4* o = reinterpret_cast<float4*>(out + (size_t)blockIdx.x * n);
#pragma unroll
  for (int k = 0; k < RN_VEC; k++) {
    const int i = threadIdx.x + k * RN_THREADS;
    if (i < n4) {
      const float4 g = __ldg(w4 + i);
      o[i] = make_float4(v[k].x * inv * g.x, v[k].y * inv * g.y, v[k].z * inv * g.z,
                         v[k].w * inv * g.w);
    }
  }
}

static void rmsnorm_launch(float* out, const float* x, const float* w, int n_tok, int n,
                           float eps, const float* b, float* sum) {
  const bool aligned = (((uintptr_t)out | (uintptr_t)x | (uintptr_t)w | (uintptr_t)b |
                         (uintptr_t)sum) & 15) == 0;
  if (n % 4 == 0 && n <= RN_MAX && aligned) {
    ts_launch(rmsnorm_reg_kernel, n_tok, RN_THREADS, out, x, w, n, eps, b, sum);
  } else {
    ts_launch(rmsnorm_kernel, n_tok, 1024, out, x, w, n, eps, b, sum);
  }
}

// out [n_tok, n] = x / rms(x) · w; w is the f32 norm weight on the device.
TS_EXPORT int ts_rmsnorm_f32(float* out, const float* x, const float* w, int n_tok, int n, float eps) {
  rmsnorm_launch(out, x, w, n_tok, n, eps, nullptr, nullptr);
  return ts_launch_status();
}

// sum = a + b, then out = sum / rms(sum) · w ([n_tok, n]; sum may alias a, out aliases none).
TS_EXPORT int ts_add_rmsnorm_f32(float* out, float* sum, const float* a, const float* b,
                                 const float* w, int n_tok, int n, float eps) {
  rmsnorm_launch(out, a, w, n_tok, n, eps, b, sum);
  return ts_launch_status();
}

// x2 (n_head2 heads), when set, is rotated in the same launch after x's heads.
__global__ void rope_kernel(float* x, int n_tok, int n_head, float* x2, int n_head2,
                            int head_dim, int pos0, const int* dpos, int dim, double base) {
  pdl_start();
  const int half = dim / 2;
  const size_t total1 = (size_t)n_tok * n_head * half;
  const size_t total = total1 + (size_t)n_tok * n_head2 * half;
  if (dpos) pos0 = *dpos;
  for (size_t kk = blockIdx.x * (size_t)blockDim.x + threadIdx.x; kk < total;
       kk += (size_t)gridDim.x * blockDim.x) {
    const bool second = kk >= total1;
    const size_t k = second ? kk - total1 : kk;
    const int nh = second ? n_head2 : n_head;
    const int i = (int)(k % half);
    const size_t th = k / half;  // t * nh + h
    const int t = (int)(th / nh);
    double s, c;
    rope_angle(pos0 + t, i, dim, base, s, c);
    float* p = (second ? x2 : x) + th * head_dim + 2 * i;
    rope_rotate(p[0], p[1], s, c);
  }
}

// Rotate adjacent pairs (2i, 2i+1), 2i < dim, of x [n_tok, n_head, head_dim] in place, and
// of x2 [n_tok, n_head2, head_dim] when set (queries and keys in one launch).
TS_EXPORT int ts_rope_f32(float* x, int n_tok, int n_head, float* x2, int n_head2,
                          int head_dim, int pos0, const int* dpos, int dim, double base) {
  const size_t total = (size_t)n_tok * (n_head + (x2 ? n_head2 : 0)) * (dim / 2);
  if (total == 0) return 0;
  ts_launch(rope_kernel, grid_for(total, 256), 256, x, n_tok, n_head, x2,
                                                             x2 ? n_head2 : 0, head_dim, pos0,
                                                             dpos, dim, base);
  return ts_launch_status();
}

// One decode token of a captured step: rope of q (n_head heads) and k (n_kv heads) in place,
// and the KV-cache rows at the device position: kc[pos] = rotated k, vc[pos] = v. One launch
// instead of a rope and a store; by default the decode attention does this work itself
// (attention.cu, ts_attention_f32 with k_new), and this kernel runs when it cannot.
__global__ void rope_store_kernel(float* q, int n_head, float* k, int n_kv, int head_dim,
                                  const int* dpos, int dim, double base, float* kc, float* vc,
                                  const float* v) {
  pdl_start();
  const int half = dim / 2, pos = *dpos, rest = head_dim - dim, kv = n_kv * head_dim;
  const size_t n_rope = (size_t)(n_head + n_kv) * half, n_rest = (size_t)n_kv * rest;
  const size_t o = (size_t)pos * kv;
  for (size_t kk = blockIdx.x * (size_t)blockDim.x + threadIdx.x; kk < n_rope + n_rest + kv;
       kk += (size_t)gridDim.x * blockDim.x) {
    if (kk < n_rope) {
      const bool is_k = kk >= (size_t)n_head * half;
      const size_t j = is_k ? kk - (size_t)n_head * half : kk;
      const int i = (int)(j % half), h = (int)(j / half);
      double s, c;
      rope_angle(pos, i, dim, base, s, c);
      float* p = (is_k ? k : q) + (size_t)h * head_dim + 2 * i;
      float y0 = p[0], y1 = p[1];
      rope_rotate(y0, y1, s, c);
      p[0] = y0, p[1] = y1;
      if (is_k) kc[o + h * head_dim + 2 * i] = y0, kc[o + h * head_dim + 2 * i + 1] = y1;
    } else if (kk < n_rope + n_rest) {  // k's dims past the rotated ones
      const int j = (int)(kk - n_rope), h = j / rest, d = dim + j % rest;
      kc[o + h * head_dim + d] = k[h * head_dim + d];
    } else {
      const int j = (int)(kk - n_rope - n_rest);
      vc[o + j] = v[j];
    }
  }
}

TS_EXPORT int ts_rope_store_f32(float* q, int n_head, float* k, int n_kv, int head_dim,
                                const int* dpos, int dim, double base, float* kc, float* vc,
                                const float* v) {
  const size_t total = (size_t)(n_head + n_kv) * (dim / 2) + (size_t)n_kv * (head_dim - dim) +
                       (size_t)n_kv * head_dim;
  ts_launch(rope_store_kernel, grid_for(total, 256), 256, q, n_head, k, n_kv, head_dim, dpos, dim,
            base, kc, vc, v);
  return ts_launch_status();
}

__global__ void store_rows_kernel(float* d1, const float* s1, float* d2, const float* s2, int n,
                                  const int* dpos) {
  pdl_start();
  const size_t o = (size_t)*dpos * n;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    d1[o + i] = s1[i];
    if (d2) d2[o + i] = s2[i];
  }
}

// d1[pos · n + i] = s1[i] (and d2 from s2 when set) for i < n, pos read at dpos: the KV-cache
// store of one token in a captured decode step.
TS_EXPORT int ts_store_rows_f32(float* d1, const float* s1, float* d2, const float* s2, int n,
                                const int* dpos) {
  ts_launch(store_rows_kernel, grid_for(n, 256), 256, d1, s1, d2, s2, n, dpos);
  return ts_launch_status();
}

__global__ void add_kernel(float* out, const float* a, const float* b, size_t n) {
  pdl_start();
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

TS_EXPORT int ts_add_f32(float* out, const float* a, const float* b, int n) {
  ts_launch(add_kernel, grid_for(n, 256), 256, out, a, b, (size_t)n);
  return ts_launch_status();
}

enum { GLU_SWIGLU, GLU_REGLU, GLU_DRELU };

template <int K>
__global__ void glu_kernel(float* out, const float* g, const float* u, size_t n) {
  pdl_start();
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
    ts_launch(glu_kernel<K>, grid_for(n, 256), 256, out, g, u, (size_t)n);          \
    return ts_launch_status();                                                              \
  }

TS_GLU(swiglu, GLU_SWIGLU)
TS_GLU(reglu, GLU_REGLU)
TS_GLU(drelu, GLU_DRELU)
