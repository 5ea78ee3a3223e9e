// Tensor-core matmul for batches (prefill): out[t, r] = Σ_c W[r, c] · x[t, c] for F16 and
// BF16 weights with more than 8 tokens. x is first rounded to the weight type (as ggml does
// with its vec_dot_type); products accumulate in f32 on the tensor cores (WMMA 16×16×16).
//
// Tiles: 64 weight rows × 64 tokens × 32 columns per step, 4 warps of 32×32, a 4-stage
// cp.async pipeline. At 64 tokens a 7B layer is still memory-bound (64 FLOP per weight
// byte), so the grid is split along K until it fills every multiprocessor several times
// over; each split writes its own partial sums, which a second kernel adds in split order, so
// the result is the same bits on every run (atomicAdd into a zeroed output was not: it made
// prefill, and with it greedy decoding, differ from run to run).
// Needs cols % 32 == 0 (matvec.cu falls back to its own loop otherwise).
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (prefill tokens/s).
#include <mma.h>

#include "ts_cuda.h"

using namespace nvcuda;

constexpr int BM = 64, BN = 64, BK = 32, LDS = BK + 8, STAGES = 4;
constexpr int LDC = BM + 4;  // epilogue tile [BN][LDC] floats

template <typename H>
__global__ void __launch_bounds__(128)
gemm_kernel(float* out, const H* w, const H* xh, int rows, int cols, int n_tok, int k_split) {
  pdl_start();
  __shared__ __align__(128) H As[STAGES][BM * LDS];
  __shared__ __align__(128) H Bs[STAGES][BN * LDS];
  const int tid = threadIdx.x, warp = tid >> 5, wm = warp >> 1, wn = warp & 1;
  const int r0 = blockIdx.x * BM, t0 = blockIdx.y * BN, k0 = blockIdx.z * k_split;
  const int nk = (min(cols, k0 + k_split) - k0) / BK;

  auto load = [&](int stage, int kt) {
    const int kk = k0 + kt * BK;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int idx = tid + i * 128, rr = idx >> 2, cc = (idx & 3) * 8;
      const int gr = r0 + rr, gt = t0 + rr;
      cp_async16(&As[stage][rr * LDS + cc], w + (size_t)min(gr, rows - 1) * cols + kk + cc,
                 gr < rows ? 16 : 0);
      cp_async16(&Bs[stage][rr * LDS + cc], xh + (size_t)min(gt, n_tok - 1) * cols + kk + cc,
                 gt < n_tok ? 16 : 0);
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);

#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < nk) load(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < nk; kt++) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile kt landed; every warp is done with tile kt - 1
    if (kt + STAGES - 1 < nk) load((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
    cp_async_commit();
    const H* a = As[kt % STAGES];
    const H* b = Bs[kt % STAGES];
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, H, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, H, wmma::col_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], a + (wm * 32 + i * 16) * LDS + kk, LDS);
#pragma unroll
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], b + (wn * 32 + j * 16) * LDS + kk, LDS);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  // Through shared memory, so the stores to out[t, r] run along r (coalesced, bounds-checked).
  float* cs = reinterpret_cast<float*>(&As[0][0]);
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) {
      wmma::store_matrix_sync(cs + (wn * 32 + j * 16) * LDC + wm * 32 + i * 16, acc[i][j], LDC,
                              wmma::mem_col_major);
    }
  __syncthreads();
  float* o = out + (size_t)blockIdx.z * n_tok * rows;  // split z's partial sums (or out)
  for (int idx = tid; idx < BM * BN; idx += 128) {
    const int t = idx / BM, r = idx % BM, gr = r0 + r, gt = t0 + t;
    if (gr >= rows || gt >= n_tok) continue;
    o[(size_t)gt * rows + gr] = cs[t * LDC + r];
  }
}

// out[i] = part[0][i] + part[1][i] + … + part[split - 1][i], in that order; n4 = n / 4.
__global__ void gemm_sum_kernel(float4* out, const float4* part, size_t n4, int split) {
  pdl_start();
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
       i += (size_t)gridDim.x * blockDim.x) {
    float4 s = part[i];
    for (int z = 1; z < split; z++) {
      const float4 v = part[z * n4 + i];
      s.x += v.x, s.y += v.y, s.z += v.z, s.w += v.w;
    }
    out[i] = s;
  }
}

template <typename H>
__global__ void round_kernel(H* dst, const float* src, size_t n);
template <>
__global__ void round_kernel<__half>(__half* dst, const float* src, size_t n) {
  pdl_start();
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = __float2half_rn(src[i]);
}
template <>
__global__ void round_kernel<__nv_bfloat16>(__nv_bfloat16* dst, const float* src, size_t n) {
  pdl_start();
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}

template <typename H>
static int gemm(float* out, const void* w, const float* x, int rows, int cols, int n_tok) {
  const size_t nx = (size_t)n_tok * cols;
  H* xh = (H*)ts_scratch(0, nx * sizeof(H));
  if (!xh) return (int)cudaErrorMemoryAllocation;
  const int sms = ts_sm_count() > 0 ? ts_sm_count() : 132;
  ts_launch(round_kernel<H>, (int)min((nx + 255) / 256, (size_t)sms * 16), 256, xh, x, nx);
  // Split K until about 5 blocks per multiprocessor (the shared-memory limit) are queued;
  // the partial sums (split · n_tok · rows floats) are summed as float4s.
  const int mn = ((rows + BM - 1) / BM) * ((n_tok + BN - 1) / BN);
  const size_t n = (size_t)n_tok * rows;
  int split = 1;
  const bool vec = n % 4 == 0 && ((uintptr_t)out & 15) == 0;
  while (vec && mn * split * 2 <= sms * 5 && cols / (split * 2) >= 8 * BK &&
         cols % (split * 2 * BK) == 0) {
    split *= 2;
  }
  float* part = out;
  if (split > 1) {
    part = (float*)ts_scratch(6, split * n * sizeof(float));
    if (!part) return (int)cudaErrorMemoryAllocation;
  }
  dim3 grid((rows + BM - 1) / BM, (n_tok + BN - 1) / BN, split);
  ts_launch(gemm_kernel<H>, grid, 128, part, (const H*)w, xh, rows, cols, n_tok, cols / split);
  if (split > 1) {
    ts_launch(gemm_sum_kernel, (int)min((n / 4 + 255) / 256, (size_t)sms * 8), 256,
              (float4*)out, (const float4*)part, n / 4, split);
  }
  return ts_launch_status();
}

int ts_gemm_tc(int type, float* out, const void* w, const float* x, int rows, int cols, int n_tok) {
  if (type == TS_F16) return gemm<__half>(out, w, x, rows, cols, n_tok);
  return gemm<__nv_bfloat16>(out, w, x, rows, cols, n_tok);
}
