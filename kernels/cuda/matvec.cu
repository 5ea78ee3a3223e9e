// Matmul for few tokens (decode): out[t, r] = Σ_c W[r, c] · x[t, c], and embed.
//
// Variants: ts_matmul_{f32,f16,bf16,q8_0,q4_0}; x is f32 and the dot product runs in f32.
// Memory-bound, so the kernel streams each weight row once per launch for up to 8 tokens:
// one warp per row (or up to 8 warps per row, split-K through shared memory, when rows are
// few), 8 16-byte loads in flight per lane (raw, converted at use; a gate/up pair reads 4 of
// each), bypassing L1; x (f32) comes through the read-only cache. Before waiting on the
// previous kernel (PDL), each block asks L2 for its first weight lines, so that kernel's tail
// overlaps this one's first memory round trip. Deterministic: no atomics. F16/BF16 with more
// than 8 tokens go to the tensor-core GEMM (gemm.cu); other types loop over groups of 8 tokens.
// Columns that are not a multiple of 8 take a scalar path.
//
// ts_matvec_batch_* runs up to three matrices that share x in one launch (Q, K and V), or a
// gate/up pair with the activation fused into the epilogue (gate[r] = glu(g, u), up[r] = u),
// or one matrix with relu fused (the low-rank predictor's hidden layer): the CUDA backend
// queues matmuls and merges them when the next op allows.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (reports the matvec's GB/s).
#include "matvec.h"

int ts_gemm_tc(int type, float* out, const void* w, const float* x, int rows, int cols, int n_tok);

// Launch shape (bench/cuda_decode.ts sweeps it): grid 0 = auto (matvec_xreg.cu for one
// token), 1 = resident grid striding over the rows, 2 = one block per 8/wpr rows, 3 = as 1
// but never matvec_xreg; wpr 0 = auto; prefetch: what each block reads before the wait on the
// previous kernel (weights only, which no kernel writes): 1 asks L2 for its first rows,
// 2 loads matvec_xreg's first step into registers (the general kernel: as 1), 6 (default)
// also copies its second step into shared memory, and F16/BF16 odd steps keep coming through
// shared memory (two steps in flight; matvec_xreg.cu).
static int g_grid = 0, g_wpr = 0, g_prefetch = 6;

template <int NT, int ROWS>
__device__ __forceinline__ void mv_acc(float (&acc)[ROWS][NT], const float (&wv)[ROWS][8],
                                       const float* x, int cols, int c, int n_tok) {
#pragma unroll
  for (int t = 0; t < NT; t++) {
    if (t >= n_tok) break;
    const float4* xp = reinterpret_cast<const float4*>(x + (size_t)t * cols + c);
    const float4 a = __ldg(xp), b = __ldg(xp + 1);
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
      acc[r][t] += wv[r][0] * a.x + wv[r][1] * a.y + wv[r][2] * a.z + wv[r][3] * a.w +
                   wv[r][4] * b.x + wv[r][5] * b.y + wv[r][6] * b.z + wv[r][7] * b.w;
    }
  }
}

// This warp's place in virtual block vb: job, row r and column slice ks (of jb.wpr).
struct MvPlace {
  int j, r, ks;
};
__device__ __forceinline__ MvPlace mv_place(const MvBatch& b, int vb) {
  int j = 0;
#pragma unroll
  for (int q = 1; q < MV_JOBS; q++) {
    if (q < b.n_job && vb >= b.job[q].block0) j = q;
  }
  const int wpr = b.job[j].wpr, warp = threadIdx.x >> 5;
  return {j, (vb - b.job[j].block0) * (MV_WARPS / wpr) + warp / wpr, warp % wpr};
}

// Before the wait on the previous kernel: its outputs are not read, only weights, which no
// kernel writes. Asks L2 for this warp's first MV_LOADS chunks so they arrive during the wait.
template <int T, int ROWS>
__device__ __forceinline__ void mv_prefetch(const MvBatch& b, int vb, int cols, size_t row_bytes) {
  if (T != TS_F16 && T != TS_BF16) return;
  const MvPlace p = mv_place(b, vb);
  const MvJob& jb = b.job[p.j];
  if (p.r >= jb.rows) return;
  constexpr int U = MV_LOADS / ROWS;
  const int n_chunk = cols >> 3, stride = 32 * jb.wpr, i = p.ks * 32 + (threadIdx.x & 31);
#pragma unroll
  for (int u = 0; u < U; u++) {
    if (i + u * stride < n_chunk) {
      prefetch_l2(jb.w + (size_t)p.r * row_bytes + 16 * (size_t)(i + u * stride));
      if (ROWS == 2) prefetch_l2(jb.w2 + (size_t)p.r * row_bytes + 16 * (size_t)(i + u * stride));
    }
  }
}

// Virtual block vb: one warp (or wpr warps) per row r of job j; ROWS = 2 reads the pair's gate
// and up rows together. Every thread of the block calls it (it holds barriers when wpr > 1).
template <int T, int NT, bool VEC, int ROWS>
__device__ __forceinline__ void mv_block(const MvBatch& b, int vb, const float* x, int cols,
                                         int n_tok, size_t row_bytes,
                                         float (&red)[MV_WARPS][ROWS][NT]) {
  const MvPlace p = mv_place(b, vb);
  const MvJob& jb = b.job[p.j];
  const int wpr = jb.wpr, rows = jb.rows, r = p.r, ks = p.ks;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float acc[ROWS][NT];
#pragma unroll
  for (int q = 0; q < ROWS; q++)
#pragma unroll
    for (int t = 0; t < NT; t++) acc[q][t] = 0.f;
  if (r < rows) {
    const uint8_t* row[ROWS];
    row[0] = jb.w + (size_t)r * row_bytes;
    if (ROWS == 2) row[ROWS - 1] = jb.w2 + (size_t)r * row_bytes;
    if (VEC) {
      constexpr int U = MV_LOADS / ROWS;  // all U·ROWS loads issued before the first use
      const int n_chunk = cols >> 3, stride = 32 * wpr;
      for (int i = ks * 32 + lane; i < n_chunk; i += stride * U) {
        Chunk<T> w[U][ROWS];
#pragma unroll
        for (int u = 0; u < U; u++) {
          if (i + u * stride < n_chunk) {
#pragma unroll
            for (int q = 0; q < ROWS; q++) w[u][q].load(row[q], (i + u * stride) * 8);
          }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
          if (i + u * stride >= n_chunk) break;
          float wv[ROWS][8];
#pragma unroll
          for (int q = 0; q < ROWS; q++) w[u][q].get(wv[q]);
          mv_acc<NT, ROWS>(acc, wv, x, cols, (i + u * stride) * 8, n_tok);
        }
      }
    } else {
      for (int c = ks * 32 + lane; c < cols; c += 32 * wpr) {
#pragma unroll
        for (int q = 0; q < ROWS; q++) {
          const float wc = Elems<T>::one(row[q], c);
#pragma unroll
          for (int t = 0; t < NT; t++) {
            if (t < n_tok) acc[q][t] += wc * x[(size_t)t * cols + c];
          }
        }
      }
    }
  }
#pragma unroll
  for (int q = 0; q < ROWS; q++)
#pragma unroll
    for (int t = 0; t < NT; t++) acc[q][t] = warp_sum(acc[q][t]);
  if (wpr > 1) {
    __syncthreads();  // the previous virtual block's sums have been read
    if (lane == 0) {
#pragma unroll
      for (int q = 0; q < ROWS; q++)
#pragma unroll
        for (int t = 0; t < NT; t++) red[warp][q][t] = acc[q][t];
    }
    __syncthreads();
    if (ks != 0) return;
#pragma unroll
    for (int q = 0; q < ROWS; q++)
#pragma unroll
      for (int t = 0; t < NT; t++) {
        float s = 0.f;
        for (int k = 0; k < wpr; k++) s += red[warp + k][q][t];
        acc[q][t] = s;
      }
  }
  if (r >= rows || lane != 0) return;
  for (int t = 0; t < n_tok && t < NT; t++) {
    const size_t o = (size_t)t * rows + r;
    if (ROWS == 2) {
      jb.out[o] = epilogue(b.epi, acc[0][t], acc[ROWS - 1][t]);
      jb.out2[o] = acc[ROWS - 1][t];
    } else {
      jb.out[o] = b.epi == EPI_RELU ? fmaxf(acc[0][t], 0.f) : acc[0][t];
    }
  }
}

// The grid (gridDim.x ≤ n_vb blocks) strides over the batch's n_vb virtual blocks.
template <int T, int NT, bool VEC, int ROWS>
__global__ void __launch_bounds__(MV_WARPS * 32)
matvec_kernel(MvBatch b, int n_vb, const float* x, int cols, int n_tok, size_t row_bytes,
              int prefetch) {
  if (prefetch && VEC) mv_prefetch<T, ROWS>(b, blockIdx.x, cols, row_bytes);
  pdl_start();
  __shared__ float red[MV_WARPS][ROWS][NT];
  for (int vb = blockIdx.x; vb < n_vb; vb += gridDim.x) {
    mv_block<T, NT, VEC, ROWS>(b, vb, x, cols, n_tok, row_bytes, red);
  }
}

// Blocks of this kernel resident on the whole GPU at once (asked once per variant).
template <int T, int NT, bool VEC, int ROWS>
static int resident_blocks() {
  static int per_sm = 0;
  if (per_sm == 0) {
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, matvec_kernel<T, NT, VEC, ROWS>,
                                                  MV_WARPS * 32, 0);
    if (per_sm < 1) per_sm = 1;
  }
  return per_sm * (ts_sm_count() > 0 ? ts_sm_count() : 132);
}

// Warps per row: rows are split (up to 8 warps each) only while the resident warps outnumber
// them, so few-row matrices (K, V) still keep every multiprocessor streaming.
template <int T, int NT, bool VEC, int ROWS>
static void launch_v(MvBatch b, int total_rows, const float* x, int cols, int nt) {
  const int resident = resident_blocks<T, NT, VEC, ROWS>();
  int wpr = 1;
  if (g_wpr > 0) {
    while (wpr < g_wpr && wpr < MV_WARPS) wpr *= 2;
  } else {
    // Measured (BENCHMARKS.md, 2026-11-29): 4 warps per row of 4096+ columns beat 1 or 2
    // unless rows are many (the 32000-row output: 2).
    const int want = cols >= 4096 ? (total_rows >= 24576 ? 2 : 4) : 1;
    while (wpr < want) wpr *= 2;
    while (wpr < MV_WARPS && (size_t)total_rows * wpr * 2 <= (size_t)resident * MV_WARPS &&
           cols >= 256 * wpr * 2) {
      wpr *= 2;
    }
  }
  int n_vb = 0;
  for (int j = 0; j < b.n_job; j++) {
    b.job[j].wpr = wpr, b.job[j].block0 = n_vb;
    n_vb += (b.job[j].rows + MV_WARPS / wpr - 1) / (MV_WARPS / wpr);
  }
  const int grid = g_grid == 2 || n_vb < resident ? n_vb : resident;
  ts_launch(matvec_kernel<T, NT, VEC, ROWS>, grid, MV_WARPS * 32, b, n_vb, x, cols, nt,
            ts_row_bytes(T, cols), g_prefetch);
}

template <int T, int NT, int ROWS>
static void launch_nt(MvBatch b, int total_rows, const float* x, int cols, int nt) {
  if (cols % 8 == 0) launch_v<T, NT, true, ROWS>(b, total_rows, x, cols, nt);
  else launch_v<T, NT, false, ROWS>(b, total_rows, x, cols, nt);
}

template <int T, int ROWS>
static void launch(MvBatch b, int total_rows, const float* x, int cols, int nt) {
  if (nt == 1 && g_grid == 0 && matvec_xreg<T, ROWS>(b, x, cols, g_prefetch)) return;
  if (nt == 1) launch_nt<T, 1, ROWS>(b, total_rows, x, cols, nt);
  else if (nt == 2) launch_nt<T, 2, ROWS>(b, total_rows, x, cols, nt);
  else if (nt <= 4) launch_nt<T, 4, ROWS>(b, total_rows, x, cols, nt);
  else launch_nt<T, 8, ROWS>(b, total_rows, x, cols, nt);
}

// Runs batch `b` (jobs' out/w/rows set) over groups of at most 8 tokens.
template <int T>
static int matvec_batch(MvBatch b, const float* x, int cols, int n_tok) {
  const bool pair = b.job[0].w2 != nullptr;
  int total = 0;
  for (int j = 0; j < b.n_job; j++) total += b.job[j].rows * (pair ? 2 : 1);
  for (int t0 = 0; t0 < n_tok; t0 += 8) {
    const int nt = n_tok - t0 < 8 ? n_tok - t0 : 8;
    MvBatch bt = b;
    for (int j = 0; j < b.n_job; j++) {
      bt.job[j].out += (size_t)t0 * b.job[j].rows;
      if (pair) bt.job[j].out2 += (size_t)t0 * b.job[j].rows;
    }
    if (pair) launch<T, 2>(bt, total, x + (size_t)t0 * cols, cols, nt);
    else launch<T, 1>(bt, total, x + (size_t)t0 * cols, cols, nt);
  }
  return ts_launch_status();
}

int ts_matvec_prefetch() { return g_prefetch; }

// Bench only: set the launch shape (see g_grid); 0, 0, 6 is the default.
TS_EXPORT int ts_matvec_config(int grid, int wpr, int prefetch) {
  g_grid = grid, g_wpr = wpr, g_prefetch = prefetch;
  return 0;
}

template <int T>
static int matmul(float* out, const uint8_t* w, const float* x, int rows, int cols, int n_tok) {
  if ((T == TS_F16 || T == TS_BF16) && n_tok > 8 && cols % 32 == 0) {
    return ts_gemm_tc(T, out, w, x, rows, cols, n_tok);
  }
  MvBatch b = {};
  b.n_job = 1, b.epi = EPI_NONE;
  b.job[0].out = out, b.job[0].w = w, b.job[0].rows = rows;
  return matvec_batch<T>(b, x, cols, n_tok);
}

// Tokens per embed launch, passed by value so no host-to-device copy is queued.
constexpr int EMBED_BATCH = 64;
struct TokenIds {
  int id[EMBED_BATCH];
};

// dtok: when set, the one token id is read from device memory (a captured decode step).
template <int T>
__global__ void embed_kernel(float* out, const uint8_t* table, TokenIds ids, const int* dtok,
                             int cols, size_t row_bytes) {
  pdl_start();
  const int id = dtok ? *dtok : ids.id[blockIdx.x];
  const uint8_t* row = table + (size_t)id * row_bytes;
  float* o = out + (size_t)blockIdx.x * cols;
  // EU loads in flight per thread: the stores could alias the row, so a plain loop would
  // wait for each load before the next (a 4096-wide row: 16 round trips, ~11 µs on an H200)
  constexpr int EU = 16;
  for (int c0 = threadIdx.x; c0 < cols; c0 += EU * blockDim.x) {
    float v[EU];
#pragma unroll
    for (int e = 0; e < EU; e++) {
      const int c = c0 + e * blockDim.x;
      v[e] = c < cols ? Elems<T>::one(row, c) : 0.f;
    }
#pragma unroll
    for (int e = 0; e < EU; e++) {
      if (c0 + e * blockDim.x < cols) o[c0 + e * blockDim.x] = v[e];
    }
  }
}

template <int T>
static int embed(float* out, const uint8_t* table, const int32_t* tokens, int n_tok, int cols,
                 const int* dtok) {
  for (int t0 = 0; t0 < n_tok; t0 += EMBED_BATCH) {
    const int nt = n_tok - t0 < EMBED_BATCH ? n_tok - t0 : EMBED_BATCH;
    TokenIds ids;
    for (int i = 0; i < nt; i++) ids.id[i] = tokens[t0 + i];
    ts_launch(embed_kernel<T>, nt, 256, out + (size_t)t0 * cols, table, ids,
                                                  n_tok == 1 ? dtok : nullptr, cols,
                                                  ts_row_bytes(T, cols));
  }
  return ts_launch_status();
}

// out [n_tok, rows], w [rows, cols] on the device, x [n_tok, cols] on the device.
// Batch: n matrices (1..3) of rows[j] rows sharing x; w2/out2 set (n = 1) makes a gate/up pair
// with epilogue epi (2 swiglu, 3 reglu, 4 drelu); epi 1 is relu on a single matrix.
#define TS_MATMUL(name, T)                                                                    \
  TS_EXPORT int ts_matmul_##name(float* out, const uint8_t* w, const float* x, int rows,     \
                                 int cols, int n_tok) {                                      \
    return matmul<T>(out, w, x, rows, cols, n_tok);                                           \
  }                                                                                           \
  TS_EXPORT int ts_matvec_batch_##name(float* o0, const uint8_t* w0, int r0, float* o1,      \
                                       const uint8_t* w1, int r1, float* o2,                 \
                                       const uint8_t* w2, int r2, int n, int epi,            \
                                       const float* x, int cols, int n_tok) {                \
    MvBatch b = {};                                                                           \
    b.n_job = n, b.epi = epi;                                                                 \
    b.job[0].out = o0, b.job[0].w = w0, b.job[0].rows = r0;                                   \
    if (epi >= EPI_SWIGLU) {                                                                  \
      b.job[0].out2 = o1, b.job[0].w2 = w1, b.n_job = 1;                                      \
    } else {                                                                                  \
      b.job[1].out = o1, b.job[1].w = w1, b.job[1].rows = r1;                                 \
      b.job[2].out = o2, b.job[2].w = w2, b.job[2].rows = r2;                                 \
    }                                                                                         \
    return matvec_batch<T>(b, x, cols, n_tok);                                                \
  }                                                                                           \
  TS_EXPORT int ts_embed_##name(float* out, const uint8_t* table, const int32_t* tokens,     \
                                int n_tok, int cols, const int* dtok) {                      \
    return embed<T>(out, table, tokens, n_tok, cols, dtok);                                   \
  }

TS_MATMUL(f32, TS_F32)
TS_MATMUL(f16, TS_F16)
TS_MATMUL(bf16, TS_BF16)
TS_MATMUL(q8_0, TS_Q8_0)
TS_MATMUL(q4_0, TS_Q4_0)
