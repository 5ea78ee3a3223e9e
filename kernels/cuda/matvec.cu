// Matmul for few tokens (decode): out[t, r] = Σ_c W[r, c] · x[t, c], and embed.
//
// Variants: ts_matmul_{f32,f16,bf16,q8_0,q4_0}; x is f32 and the dot product runs in f32.
// Memory-bound, so the kernel streams each weight row once per launch for up to 8 tokens:
// 16-byte loads (four in flight per lane, bypassing L1), one warp per row, or up to 8 warps
// per row (split-K through shared memory) when rows are few. F16/BF16 with more than 8
// tokens go to the tensor-core GEMM (gemm.cu); other types loop over groups of 8 tokens.
// Columns that are not a multiple of 8 take a scalar path.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (reports the matvec's GB/s).
#include "ts_cuda.h"

int ts_gemm_tc(int type, float* out, const void* w, const float* x, int rows, int cols, int n_tok);

constexpr int MV_WARPS = 8;  // warps per block
constexpr int MV_UNROLL = 4;  // 16-byte weight loads in flight per lane

template <int T, int NT, bool VEC>
__global__ void __launch_bounds__(MV_WARPS * 32)
matvec_kernel(float* out, const uint8_t* w, const float* x, int rows, int cols, int n_tok,
              size_t row_bytes, int wpr) {
  __shared__ float red[MV_WARPS][NT];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int r = blockIdx.x * (MV_WARPS / wpr) + warp / wpr;
  const int ks = warp % wpr;  // this warp's slice of the columns
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = 0.f;
  if (r < rows) {
    const uint8_t* row = w + (size_t)r * row_bytes;
    if (VEC) {
      const int n_chunk = cols >> 3, stride = 32 * wpr;
      for (int i = ks * 32 + lane; i < n_chunk; i += stride * MV_UNROLL) {
        float wv[MV_UNROLL][8];
#pragma unroll
        for (int u = 0; u < MV_UNROLL; u++) {
          if (i + u * stride < n_chunk) Elems<T>::eight(row, (i + u * stride) * 8, wv[u]);
        }
#pragma unroll
        for (int u = 0; u < MV_UNROLL; u++) {
          const int c = (i + u * stride) * 8;
          if (i + u * stride >= n_chunk) break;
#pragma unroll
          for (int t = 0; t < NT; t++) {
            if (t >= n_tok) break;
            const float4* xp = reinterpret_cast<const float4*>(x + (size_t)t * cols + c);
            float4 a = xp[0], b = xp[1];
            acc[t] += wv[u][0] * a.x + wv[u][1] * a.y + wv[u][2] * a.z + wv[u][3] * a.w +
                      wv[u][4] * b.x + wv[u][5] * b.y + wv[u][6] * b.z + wv[u][7] * b.w;
          }
        }
      }
    } else {
      for (int c = ks * 32 + lane; c < cols; c += 32 * wpr) {
        const float wc = Elems<T>::one(row, c);
#pragma unroll
        for (int t = 0; t < NT; t++) {
          if (t < n_tok) acc[t] += wc * x[(size_t)t * cols + c];
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = warp_sum(acc[t]);
  if (wpr == 1) {
    if (r < rows && lane == 0) {
      for (int t = 0; t < n_tok; t++) out[(size_t)t * rows + r] = acc[t];
    }
    return;
  }
  if (lane == 0) {
#pragma unroll
    for (int t = 0; t < NT; t++) red[warp][t] = acc[t];
  }
  __syncthreads();
  if (ks == 0 && r < rows && lane < n_tok) {
    float s = 0.f;
    for (int k = 0; k < wpr; k++) s += red[warp + k][lane];
    out[(size_t)lane * rows + r] = s;
  }
}

// Warps per row: enough warps in flight to cover HBM latency when rows are few.
static int warps_per_row(int rows, int cols) {
  int wpr = 1;
  while (wpr < MV_WARPS && (size_t)rows * wpr < 16384 && cols >= 512 * wpr) wpr *= 2;
  return wpr;
}

template <int T, int NT>
static void launch_nt(float* out, const uint8_t* w, const float* x, int rows, int cols, int nt) {
  const int wpr = warps_per_row(rows, cols);
  const int grid = (rows + MV_WARPS / wpr - 1) / (MV_WARPS / wpr);
  const size_t rb = ts_row_bytes(T, cols);
  if (cols % 8 == 0) {
    matvec_kernel<T, NT, true><<<grid, MV_WARPS * 32, 0, ts_stream()>>>(out, w, x, rows, cols, nt, rb, wpr);
  } else {
    matvec_kernel<T, NT, false><<<grid, MV_WARPS * 32, 0, ts_stream()>>>(out, w, x, rows, cols, nt, rb, wpr);
  }
}

template <int T>
static int matmul(float* out, const uint8_t* w, const float* x, int rows, int cols, int n_tok) {
  if ((T == TS_F16 || T == TS_BF16) && n_tok > 8 && cols % 32 == 0) {
    return ts_gemm_tc(T, out, w, x, rows, cols, n_tok);
  }
  for (int t0 = 0; t0 < n_tok; t0 += 8) {
    const int nt = n_tok - t0 < 8 ? n_tok - t0 : 8;
    float* o = out + (size_t)t0 * rows;
    const float* xt = x + (size_t)t0 * cols;
    if (nt == 1) launch_nt<T, 1>(o, w, xt, rows, cols, nt);
    else if (nt == 2) launch_nt<T, 2>(o, w, xt, rows, cols, nt);
    else if (nt <= 4) launch_nt<T, 4>(o, w, xt, rows, cols, nt);
    else launch_nt<T, 8>(o, w, xt, rows, cols, nt);
  }
  return ts_launch_status();
}

// Tokens per embed launch, passed by value so no host-to-device copy is queued.
constexpr int EMBED_BATCH = 64;
struct TokenIds {
  int id[EMBED_BATCH];
};

template <int T>
__global__ void embed_kernel(float* out, const uint8_t* table, TokenIds ids, int cols,
                             size_t row_bytes) {
  const uint8_t* row = table + (size_t)ids.id[blockIdx.x] * row_bytes;
  float* o = out + (size_t)blockIdx.x * cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) o[c] = Elems<T>::one(row, c);
}

template <int T>
static int embed(float* out, const uint8_t* table, const int32_t* tokens, int n_tok, int cols) {
  for (int t0 = 0; t0 < n_tok; t0 += EMBED_BATCH) {
    const int nt = n_tok - t0 < EMBED_BATCH ? n_tok - t0 : EMBED_BATCH;
    TokenIds ids;
    for (int i = 0; i < nt; i++) ids.id[i] = tokens[t0 + i];
    embed_kernel<T><<<nt, 256, 0, ts_stream()>>>(out + (size_t)t0 * cols, table, ids, cols,
                                                  ts_row_bytes(T, cols));
  }
  return ts_launch_status();
}

// out [n_tok, rows], w [rows, cols] on the device, x [n_tok, cols] on the device.
#define TS_MATMUL(name, T)                                                                    \
  TS_EXPORT int ts_matmul_##name(float* out, const uint8_t* w, const float* x, int rows,     \
                                 int cols, int n_tok) {                                      \
    return matmul<T>(out, w, x, rows, cols, n_tok);                                           \
  }                                                                                           \
  TS_EXPORT int ts_embed_##name(float* out, const uint8_t* table, const int32_t* tokens,     \
                                int n_tok, int cols) {                                       \
    return embed<T>(out, table, tokens, n_tok, cols);                                         \
  }

TS_MATMUL(f32, TS_F32)
TS_MATMUL(f16, TS_F16)
TS_MATMUL(bf16, TS_BF16)
TS_MATMUL(q8_0, TS_Q8_0)
TS_MATMUL(q4_0, TS_Q4_0)
