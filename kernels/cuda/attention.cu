// Causal grouped-query attention over an f32 KV cache [n_ctx, n_kv, head_dim].
//
// One block of 4 warps per (head, token, split): the positions 0 .. pos0 + t are cut into
// splits (flash-decoding, so a single decode token still fills the GPU); each warp keeps an
// online softmax (running max, sum, weighted V) over its positions, four positions in flight;
// warps merge in shared memory, splits in a second small kernel. head_dim ≤ 256.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (as part of a decode step).
#include <math.h>

#include "ts_cuda.h"

constexpr int AT_WARPS = 4, AT_POS = 4, MAX_DPL = 8;  // DPL: dims per lane

template <int DPL>
__global__ void __launch_bounds__(AT_WARPS * 32)
attn_kernel(float* out, float* part, const float* q, const float* k, const float* v, int pos0,
            int n_head, int n_kv, int head_dim, float scale, int chunk, const int* dpos) {
  pdl_start();
  __shared__ float sm_m[AT_WARPS], sm_l[AT_WARPS], sm_acc[AT_WARPS][DPL * 32];
  const int h = blockIdx.x, t = blockIdx.y, s = blockIdx.z, n_split = gridDim.z;
  if (dpos) {  // a captured step: the split length follows the position read on the device
    pos0 = *dpos;
    chunk = (pos0 + gridDim.y + n_split - 1) / n_split;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kvh = h / (n_head / n_kv), end = pos0 + t + 1;  // positions < end are visible
  const int p0 = s * chunk, p1 = min(end, p0 + chunk);
  const size_t row = (size_t)n_kv * head_dim;
  const float* qr = q + ((size_t)t * n_head + h) * head_dim;
  const float* kb = k + (size_t)kvh * head_dim;
  const float* vb = v + (size_t)kvh * head_dim;
  float qv[DPL], acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; i++) {
    const int d = lane + 32 * i;
    qv[i] = d < head_dim ? qr[d] : 0.f;
    acc[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int pb = p0 + warp * AT_POS; pb < p1; pb += AT_WARPS * AT_POS) {
    float dot[AT_POS];
#pragma unroll
    for (int u = 0; u < AT_POS; u++) {
      dot[u] = 0.f;
      if (pb + u < p1) {
        const float* kp = kb + (size_t)(pb + u) * row;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
          const int d = lane + 32 * i;
          if (d < head_dim) dot[u] += qv[i] * kp[d];
        }
      }
    }
#pragma unroll
    for (int u = 0; u < AT_POS; u++) {
      if (pb + u >= p1) break;
      const float sc = warp_sum(dot[u]) * scale;
      const float mn = fmaxf(m, sc), corr = expf(m - mn), e = expf(sc - mn);
      const float* vp = vb + (size_t)(pb + u) * row;
      l = l * corr + e;
#pragma unroll
      for (int i = 0; i < DPL; i++) {
        const int d = lane + 32 * i;
        acc[i] = acc[i] * corr + (d < head_dim ? e * vp[d] : 0.f);
      }
      m = mn;
    }
  }
  if (lane == 0) sm_m[warp] = m, sm_l[warp] = l;
#pragma unroll
  for (int i = 0; i < DPL; i++) sm_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < AT_WARPS; w++) mx = fmaxf(mx, sm_m[w]);
  float L = 0.f;
  for (int w = 0; w < AT_WARPS; w++) L += sm_m[w] == -INFINITY ? 0.f : sm_l[w] * expf(sm_m[w] - mx);
  const size_t o = ((size_t)t * n_head + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float a = 0.f;
    for (int w = 0; w < AT_WARPS; w++) {
      if (sm_m[w] != -INFINITY) a += sm_acc[w][d] * expf(sm_m[w] - mx);
    }
    if (n_split == 1) {
      out[o + d] = a / L;
    } else {
      part[(o + d) * n_split + s] = a;  // [t, h, d, split]
    }
  }
  if (n_split > 1 && threadIdx.x == 0) {
    float* ml = part + (size_t)gridDim.y * n_head * head_dim * n_split;  // [t, h, split, 2]
    const size_t base = (((size_t)t * n_head + h) * n_split + s) * 2;
    ml[base] = mx, ml[base + 1] = L;
  }
}

__global__ void attn_merge(float* out, const float* part, int n_tok, int n_head, int head_dim,
                           int n_split) {
  pdl_start();
  const int h = blockIdx.x, t = blockIdx.y;
  const float* ml = part + (size_t)n_tok * n_head * head_dim * n_split +
                    ((size_t)t * n_head + h) * n_split * 2;
  float mx = -INFINITY;
  for (int s = 0; s < n_split; s++) mx = fmaxf(mx, ml[2 * s]);
  float L = 0.f;
  for (int s = 0; s < n_split; s++) L += ml[2 * s] == -INFINITY ? 0.f : ml[2 * s + 1] * expf(ml[2 * s] - mx);
  const size_t o = ((size_t)t * n_head + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float a = 0.f;
    for (int s = 0; s < n_split; s++) {
      if (ml[2 * s] != -INFINITY) a += part[(o + d) * n_split + s] * expf(ml[2 * s] - mx);
    }
    out[o + d] = a / L;
  }
}

// out, q: [n_tok, n_head, head_dim]; k, v: [n_ctx, n_kv, head_dim] holding pos0 + n_tok rows.
// dpos, when set, holds pos0 on the device (a captured step) and n_ctx bounds it; the split
// count then depends on n_ctx alone.
TS_EXPORT int ts_attention_f32(float* out, const float* q, const float* k, const float* v, int n_tok,
                               int pos0, int n_head, int n_kv, int head_dim, float scale,
                               const int* dpos, int n_ctx) {
  if (head_dim > 32 * MAX_DPL) return (int)cudaErrorInvalidValue;
  const int n_pos = dpos ? n_ctx : pos0 + n_tok, blocks = n_head * n_tok;
  const int target = 2 * (ts_sm_count() > 0 ? ts_sm_count() : 132);
  int n_split = (target + blocks - 1) / blocks;
  const int max_split = (n_pos + 63) / 64;  // at least 64 positions per split
  if (n_split > max_split) n_split = max_split;
  if (n_split < 1) n_split = 1;
  const int chunk = (n_pos + n_split - 1) / n_split;
  float* part = nullptr;
  if (n_split > 1) {
    part = (float*)ts_scratch(1, (size_t)blocks * n_split * (head_dim + 2) * sizeof(float));
    if (!part) return (int)cudaErrorMemoryAllocation;
  }
  dim3 grid(n_head, n_tok, n_split);
  cudaStream_t s = ts_stream();
  const int dpl = (head_dim + 31) / 32;
  if (dpl <= 2) ts_launch(attn_kernel<2>, grid, AT_WARPS * 32, out, part, q, k, v, pos0, n_head, n_kv, head_dim, scale, chunk, dpos);
  else if (dpl <= 4) ts_launch(attn_kernel<4>, grid, AT_WARPS * 32, out, part, q, k, v, pos0, n_head, n_kv, head_dim, scale, chunk, dpos);
  else ts_launch(attn_kernel<8>, grid, AT_WARPS * 32, out, part, q, k, v, pos0, n_head, n_kv, head_dim, scale, chunk, dpos);
  if (n_split > 1) ts_launch(attn_merge, dim3(n_head, n_tok), 128, out, part, n_tok, n_head, head_dim, n_split);
  return ts_launch_status();
}
