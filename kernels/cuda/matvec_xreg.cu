// Matvec for one token with x held in registers: out[r] = Σ_c W[r, c] · x[c], F16/BF16 and
// Q8_0/Q4_0 (their device layouts of aligned groups, ts_cuda.h), cols a whole number of chunks
// (8 values for F16/BF16, 16 for Q8_0/Q4_0), at most 2048 chunks (the decode shapes of a 7B
// model).
//
// The general kernel (matvec.cu) reads 32 bytes of x through L1 for every 16 bytes of weight,
// so the load pipe, not DRAM, caps it near 75% of the bandwidth. Here a block of 8 warps reads
// whole rows: lane l of warp w always owns chunks w·32 + l + 256·u (u < CPL) of a row, loads
// x for them once, and streams R rows at a time (R · CPL · ROWS ≈ 8 chunk loads in flight
// per lane, raw until use). Each block takes a contiguous range of the batch's rows (Q, K, V
// stacked; a gate/up pair reads both rows, ROWS = 2); the 8 warps' sums meet in shared memory
// (double-buffered, one barrier per R rows). Deterministic: fixed order, no atomics. Before
// the PDL wait the block already loads its first step's rows into registers (weights: no
// kernel writes them), so they are in flight while the previous kernel ends: on an H200 a
// 7–8% faster sparse and 3% faster dense decode than asking L2 for them (BENCHMARKS.md).
// F16/BF16 (prefetch 6, the default) also copy the second step's rows into shared memory
// (cp.async) before the wait; then even steps come through registers and odd steps through
// shared memory, each buffer refilled with the step after next as soon as its rows are
// multiplied: two steps in flight per block with no more registers (dense decode +9%, sparse
// +2%; the O projection after attention 10.5 → 7.7 µs). Same arithmetic, same bits.
//
// Q8_0/Q4_0: a lane's chunk is half a 32-value block (16 or 8 bytes, one load); each lane
// quantises its x to int8 (per 32 values, as the CPU backends do) and takes int8 dot products
// (__dp4a): one int-to-float conversion per 16 weights (conversions issue at a quarter of the
// FMA rate), and x as 4 registers per chunk. The block scale stays raw f16 bits until the dot
// product (Wide, ts_cuda.h): converted at load, it made every block wait for its first rows
// before reaching the PDL wait, so the kernel could not start early (H100: sparse decode with
// Q8_0 predictors +4%, dense Q4_0 +24%; BENCHMARKS.md).
//
// Fused variants (ts_matvec_fused_*, one decode token; plugins/cuda/_queue.ts picks them, the
// plain ops stay as the twin and fallback): an rmsnorm prologue (the block holds all of x, so
// it sums the squares itself and scales x in registers), a residual-add epilogue, and a
// select epilogue (each block compacts its own rows' survivors into its slots with a ballot
// scan; the last block to finish places every block's list, in block order: ascending ids;
// on by default for the predictor's fc2: 0.2–2% faster than a select launch in five runs).
// With sel_local the blocks stop at their own lists and the gathered glu that follows places
// them (sparse.cu): the serial last block leaves the decode step's critical path.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (matvec GB/s per shape; grid 3 = off).
#include <type_traits>

#include "matvec.h"

constexpr int XR_THREADS = MV_WARPS * 32;  // 256: one row is read by the whole block
constexpr int XR_MAX_CPL = 8;              // chunks per lane: cols ≤ 8 · 256 · 8

// Values per chunk (one lane's load): 8 for F16/BF16 (16 bytes); 16 for Q8_0 (16 bytes) and
// Q4_0 (8 bytes), one half of a 32-value block, so a Q8_0 lane loads as many bytes as an F16 one.
template <int T>
__host__ __device__ constexpr int xr_vals() {
  return T == TS_Q8_0 || T == TS_Q4_0 ? 16 : 8;
}

// A lane's weights of one chunk: raw until use (Chunk, ts_cuda.h), or the quantised Wide.
template <int T>
using XrChunk = std::conditional_t<xr_vals<T>() == 16, Wide<T>, Chunk<T>>;

// Rows per block step: about MV_LOADS chunk loads in flight per lane. Twice as many 8-value
// Q8_0/Q4_0 chunks cost registers and resident blocks (H200, BENCHMARKS.md): a 7–10% slower
// sparse decode with Q8_0 predictors, a 32% slower dense decode of a Q8_0 model.
template <int CPL, int ROWS>
__host__ __device__ constexpr int xr_rows() {
  return CPL * ROWS >= MV_LOADS ? 1 : MV_LOADS / (CPL * ROWS);
}
// An F16/BF16 chunk from its 16 raw bytes (the shared-memory steps; other types: unused).
template <int T>
__device__ __forceinline__ void raw_chunk(XrChunk<T>& c, const uint4& v) {
  if constexpr (T == TS_F16 || T == TS_BF16) c.r = v;
}

// Row g of the stacked batch: its job and the row's pointer(s).
__device__ __forceinline__ int xr_job(const MvBatch& b, int g) {
  int j = 0;
#pragma unroll
  for (int q = 1; q < MV_JOBS; q++) {
    if (q < b.n_job && g >= b.job[q].block0) j = q;
  }
  return j;
}

// The rmsnorm prologue: x (this lane's chunks, all of x over the block) becomes
// x · inv_rms · norm_w, as ops.cu's rmsnorm computes it; block 0 stores the result.
template <int CPL, int SPLIT, int V>
__device__ __forceinline__ void xr_norm(const MvBatch& b, float (&xr)[CPL][V], int i0,
                                        int n_chunk, int cols) {
  constexpr int LANES = XR_THREADS / SPLIT;
  __shared__ float part[MV_WARPS];
  float ss = 0.f;
#pragma unroll
  for (int u = 0; u < CPL; u++) {
#pragma unroll
    for (int e = 0; e < V; e++) ss += xr[u][e] * xr[u][e];
  }
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  float tot = 0.f;  // the first row group's warps hold all of x once
#pragma unroll
  for (int k = 0; k < MV_WARPS / SPLIT; k++) tot += part[k];
  const float inv = 1.0f / sqrtf(tot / cols + b.eps);
#pragma unroll
  for (int u = 0; u < CPL; u++) {
    const int i = i0 + LANES * u;
    if (i >= n_chunk) continue;
    const float4* wp = reinterpret_cast<const float4*>(b.norm_w) + (V / 4) * i;
    float4* op = reinterpret_cast<float4*>(b.norm_out) + (V / 4) * i;
#pragma unroll
    for (int k = 0; k < V / 4; k++) {
      const float4 w = __ldg(wp + k);
      const float y[4] = {xr[u][4 * k] * inv * w.x, xr[u][4 * k + 1] * inv * w.y,
                          xr[u][4 * k + 2] * inv * w.z, xr[u][4 * k + 3] * inv * w.w};
      if (blockIdx.x == 0 && threadIdx.x < LANES) op[k] = make_float4(y[0], y[1], y[2], y[3]);
      if (!b.norm_side) {
#pragma unroll
        for (int e = 0; e < 4; e++) xr[u][4 * k + e] = y[e];
      }
    }
  }
}

__device__ unsigned int g_sel_done = 0;  // blocks of the running select launch that finished

// The select epilogue. Block q keeps rows [g0, g1) with y >= thr in sel_ids[g0 ..] (ascending)
// and their number in sel_cnt[q]; the last block to finish scans the counts and places each
// list at its offset in sel_idx, then resets the finish counter for the next launch (with
// sel_local: nobody here; ts_local_sel records the lists for the next glu launch).
__device__ void xr_select(const MvBatch& b, int total, int g0, int g1) {
  __shared__ int wn[MV_WARPS];
  __shared__ int pre[XR_SEL_MAX_GRID + 1];
  __shared__ bool last;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const float* y = b.job[0].out;
  __syncthreads();  // this block's outputs are stored (visible within the block)
  int base = 0;
  for (int r0 = g0; r0 < g1; r0 += XR_THREADS) {
    const int r = r0 + threadIdx.x;
    const bool keep = r < g1 && y[r] >= b.sel_thr;  // NaN compares false
    const unsigned m = __ballot_sync(0xffffffffu, keep);
    if (lane == 0) wn[warp] = __popc(m);
    __syncthreads();
    int before = base, all = base;
#pragma unroll
    for (int k = 0; k < MV_WARPS; k++) before += k < warp ? wn[k] : 0, all += wn[k];
    if (keep) b.sel_ids[g0 + before - base + __popc(m & ((1u << lane) - 1u))] = r;
    base = all;
    __syncthreads();  // wn is read before the next pass rewrites it
  }
  if (b.sel_local) {  // the next launch scans the counts itself (sparse.cu, glu from_select)
    if (threadIdx.x == 0) b.sel_cnt[blockIdx.x] = base;
    return;
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    b.sel_cnt[blockIdx.x] = base;
    __threadfence();
    last = atomicAdd(&g_sel_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int n_blk = gridDim.x;
  scan_counts<XR_THREADS, XR_SEL_MAX_GRID>(pre, wn, b.sel_cnt, n_blk);
  const int count = pre[n_blk];
  // Output k comes from the block q with pre[q] <= k < pre[q + 1] (binary search).
  for (int k0 = 0; k0 < count; k0 += 8 * XR_THREADS) {
    int v[8];
#pragma unroll
    for (int e = 0; e < 8; e++) {
      const int k = k0 + e * XR_THREADS + threadIdx.x;
      v[e] = -1;
      if (k < count) {
        const int lo = count_owner(pre, n_blk, k);
        v[e] = __ldcg(b.sel_ids + row_split(lo, total, n_blk) + k - pre[lo]);
      }
    }
#pragma unroll
    for (int e = 0; e < 8; e++) {
      const int k = k0 + e * XR_THREADS + threadIdx.x;
      if (k < count) b.sel_idx[1 + k] = v[e];
    }
  }
  if (threadIdx.x == 0) b.sel_idx[0] = count, g_sel_done = 0;
}

// SPLIT 2 or 4 (rows of at most 128 or 64 chunks): the block reads two or four rows at a time,
// one per half or quarter.
template <int T, int CPL, int ROWS, int SPLIT>
__global__ void __launch_bounds__(XR_THREADS)
matvec_xreg_kernel(MvBatch b, int total, const float* x, int cols, size_t row_bytes, int prefetch) {
  constexpr int R = xr_rows<CPL, ROWS>();
  constexpr int LANES = XR_THREADS / SPLIT, WPS = MV_WARPS / SPLIT, STEP = R * SPLIT;
  constexpr int V = xr_vals<T>();
  __shared__ float red[2][MV_WARPS][R][ROWS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_chunk = cols / V;
  const int sub = threadIdx.x / LANES;  // which row of each group (SPLIT 2 or 4)
  const int i0 = threadIdx.x % LANES;   // this lane's first chunk; then every LANES
  // row_split (ts_cuda.h) written out: through the helper ptxas moves spills between instances
  const int g0 = (int)((long long)blockIdx.x * total / gridDim.x);
  const int g1 = (int)((long long)(blockIdx.x + 1) * total / gridDim.x);
  // f(r, q, u, row, i) for chunk i (this lane's chunk u) of row r of matrix q (w, or w2 when
  // ROWS is 2) of step gs: weights only, which no kernel writes, so this may precede the wait.
  auto each_chunk = [&](int gs, auto f) {
#pragma unroll
    for (int r = 0; r < R; r++) {
      const int g = gs + r * SPLIT + sub;
      if (g < g1) {
        const int j = xr_job(b, g);
        const size_t off = (size_t)(g - b.job[j].block0) * row_bytes;
#pragma unroll
        for (int u = 0; u < CPL; u++) {
          if (i0 + LANES * u < n_chunk) {
            f(r, 0, u, b.job[j].w + off, i0 + LANES * u);
            if (ROWS == 2) f(r, ROWS - 1, u, b.job[j].w2 + off, i0 + LANES * u);
          }
        }
      }
    }
  };
  // The rows of step gs into registers.
  auto load_step = [&](int gs, XrChunk<T> (&w)[R][ROWS][CPL]) {
    each_chunk(gs, [&](int r, int q, int u, const uint8_t* row, int i) { w[r][q][u].load(row, i * V); });
  };
  // prefetch bit 4 (F16/BF16): odd steps' rows go through shared memory (cp.async), even
  // steps' through the registers, so two steps are in flight: the first two before the wait,
  // then each buffer is refilled with the step after next as soon as its rows are multiplied.
  constexpr bool STAGE = (T == TS_F16 || T == TS_BF16) && R * ROWS * CPL <= MV_LOADS;
  __shared__ uint4 stage[STAGE ? R * ROWS * CPL : 1][STAGE ? XR_THREADS : 1];
  const bool ring = STAGE && (prefetch & 4) && (prefetch & 3) == 2;
  // The rows of step gs into shared memory.
  auto stage_step = [&](int gs) {
    if constexpr (STAGE) {
      each_chunk(gs, [&](int r, int q, int u, const uint8_t* row, int i) {
        cp_async16(&stage[(r * ROWS + q) * CPL + u][threadIdx.x], row + 16 * (size_t)i);
      });
      cp_async_commit();
    }
  };
  XrChunk<T> w[R][ROWS][CPL];
  if ((prefetch & 3) == 2) load_step(g0, w);  // the first step's rows in registers before the wait
  if (ring && g0 + STEP < g1) stage_step(g0 + STEP);
  if ((prefetch & 3) == 1) {                  // or only asked of L2
#pragma unroll
    for (int r = 0; r < R; r++) {
      const int g = g0 + r * SPLIT + sub;
      if (g >= g1) break;
      const int j = xr_job(b, g);
      const size_t off = (size_t)(g - b.job[j].block0) * row_bytes;
#pragma unroll
      for (int u = 0; u < CPL; u++) {
        if (i0 + LANES * u < n_chunk) {
          prefetch_l2(chunk_at<T>(b.job[j].w + off, (i0 + LANES * u) * V));
          if (ROWS == 2) prefetch_l2(chunk_at<T>(b.job[j].w2 + off, (i0 + LANES * u) * V));
        }
      }
    }
  }
  pdl_start();
  float xr[CPL][V];
#pragma unroll
  for (int u = 0; u < CPL; u++) {
    const int i = i0 + LANES * u;
#pragma unroll
    for (int k = 0; k < V / 4; k++) {
      const float4 a = i < n_chunk ? __ldg(reinterpret_cast<const float4*>(x) + (V / 4) * i + k)
                                   : make_float4(0.f, 0.f, 0.f, 0.f);
      xr[u][4 * k] = a.x, xr[u][4 * k + 1] = a.y, xr[u][4 * k + 2] = a.z, xr[u][4 * k + 3] = a.w;
    }
  }
  if (b.norm_w) xr_norm<CPL, SPLIT, V>(b, xr, i0, n_chunk, cols);
  // Q8_0/Q4_0: x as int8 blocks (int8 dot products; ts_cuda.h, xq_pack)
  constexpr bool QX = V == 16;
  uint32_t xq[CPL][4];
  float xd[CPL];
  int xs[CPL];
  if constexpr (QX) {
#pragma unroll
    for (int u = 0; u < CPL; u++) xq_pack<T>(xr[u], xq[u], xd[u], xs[u]);
  }
  int buf = 0;
  for (int gs = g0, k = 0; gs < g1; gs += STEP, buf ^= 1, k++) {
    const bool shared = ring && (k & 1);  // this step's rows are in `stage`
    if (shared) cp_async_wait_all();      // (this thread's own slots: no barrier)
    else if (!ring && ((prefetch & 3) != 2 || gs != g0)) load_step(gs, w);
    float acc[R][ROWS];
    // This step's row sums, chunk u of row r (matrix q) from `from_smem ? stage : w`. Two
    // separate loops, so the shared-memory one never waits on registers still loading.
    auto sums = [&](auto from_smem) {
#pragma unroll
      for (int r = 0; r < R; r++) {
#pragma unroll
        for (int q = 0; q < ROWS; q++) {
          acc[r][q] = 0.f;
          if (gs + r * SPLIT + sub < g1) {
#pragma unroll
            for (int u = 0; u < CPL; u++) {
              if (i0 + LANES * u < n_chunk) {
                if constexpr (QX) {
                  acc[r][q] += w[r][q][u].dotq(xq[u], xd[u], xs[u]);
                } else {
                  float f[8];
                  if constexpr (STAGE && decltype(from_smem)::value) {
                    XrChunk<T> c;
                    raw_chunk<T>(c, stage[(r * ROWS + q) * CPL + u][threadIdx.x]);
                    c.get(f);
                  } else {
                    w[r][q][u].get(f);
                  }
#pragma unroll
                  for (int e = 0; e < 8; e++) acc[r][q] += f[e] * xr[u][e];
                }
              }
            }
          }
        }
      }
    };
    if (shared) sums(std::true_type{});
    else sums(std::false_type{});
    if (ring && gs + 2 * STEP < g1) {  // refill the buffer just used with the step after next
      if (shared) stage_step(gs + 2 * STEP);
      else load_step(gs + 2 * STEP, w);
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
      for (int q = 0; q < ROWS; q++) {
        const float a = warp_sum(acc[r][q]);
        if (lane == 0) red[buf][warp][r][q] = a;
      }
    }
    __syncthreads();  // one barrier per step: the other buffer is read while this one fills
    if (threadIdx.x < STEP && gs + (int)threadIdx.x < g1) {
      // thread t writes row gs + t: step r = t / SPLIT of row group t % SPLIT
      const int r = threadIdx.x / SPLIT, k0 = (threadIdx.x % SPLIT) * WPS;
      const int g = gs + threadIdx.x, j = xr_job(b, g);
      float s[ROWS];
#pragma unroll
      for (int q = 0; q < ROWS; q++) {
        s[q] = 0.f;
#pragma unroll
        for (int k = 0; k < WPS; k++) s[q] += red[buf][k0 + k][r][q];
      }
      const int o = g - b.job[j].block0;
      if (ROWS == 2) {
        b.job[j].out[o] = epilogue(b.epi, s[0], s[ROWS - 1]);
        b.job[j].out2[o] = s[ROWS - 1];
      } else {
        const float y = b.epi == EPI_RELU ? fmaxf(s[0], 0.f) : s[0];
        b.job[j].out[o] = y;
        if (b.res_out) b.res_out[o] = b.res_a[o] + y;  // one matrix: o is the row
      }
    }
  }
  if (b.sel_idx) xr_select(b, total, g0, g1);
}

template <int T, int CPL, int ROWS, int SPLIT = 1>
static void xreg_launch(MvBatch b, int total, const float* x, int cols, int prefetch) {
  static int per_sm = 0;
  if (per_sm == 0) {
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, matvec_xreg_kernel<T, CPL, ROWS, SPLIT>, XR_THREADS, 0);
    if (per_sm < 1) per_sm = 1;
  }
  constexpr int R = xr_rows<CPL, ROWS>();
  const int resident = per_sm * (ts_sm_count() > 0 ? ts_sm_count() : 132);
  const int steps = (total + R * SPLIT - 1) / (R * SPLIT);
  int grid = steps < resident ? steps : resident;
  if (b.sel_idx) {  // per-block lists [total] then counts [grid], in one scratch area
    if (grid > XR_SEL_MAX_GRID) grid = XR_SEL_MAX_GRID;
    b.sel_ids = (int*)ts_scratch(5, (size_t)(total + XR_SEL_MAX_GRID) * sizeof(int));
    if (!b.sel_ids) return;
    b.sel_cnt = b.sel_ids + total;
    if (b.sel_local) ts_local_sel() = {b.sel_idx, b.sel_ids, b.sel_cnt, grid, total};
  }
  ts_launch(matvec_xreg_kernel<T, CPL, ROWS, SPLIT>, grid, XR_THREADS, b, total, x, cols,
            ts_row_bytes(T, cols), prefetch);
}

template <int T, int ROWS>
bool matvec_xreg(MvBatch b, const float* x, int cols, int prefetch) {
  if (T != TS_F16 && T != TS_BF16 && T != TS_Q8_0 && T != TS_Q4_0) return false;
  constexpr int V = xr_vals<T>();
  const int n_chunk = cols / V;
  if (cols % V != 0 || n_chunk > 256 * XR_MAX_CPL || cols == 0) return false;
  int total = 0;
  for (int j = 0; j < b.n_job; j++) b.job[j].block0 = total, total += b.job[j].rows;
  if (total == 0) return true;
  const int cpl = (n_chunk + 255) / 256;
  // short rows (the predictor's fc2): two or four at a time, one per half or quarter block
  if (n_chunk <= XR_THREADS / 4) {
    xreg_launch<T, 1, ROWS, 4>(b, total, x, cols, prefetch);
    return true;
  }
  if (n_chunk <= XR_THREADS / 2) {
    xreg_launch<T, 1, ROWS, 2>(b, total, x, cols, prefetch);
    return true;
  }
  switch (cpl) {
    case 1: xreg_launch<T, 1, ROWS>(b, total, x, cols, prefetch); break;
    case 2: xreg_launch<T, 2, ROWS>(b, total, x, cols, prefetch); break;
    case 3: xreg_launch<T, 3, ROWS>(b, total, x, cols, prefetch); break;
    case 4: xreg_launch<T, 4, ROWS>(b, total, x, cols, prefetch); break;
    case 5: xreg_launch<T, 5, ROWS>(b, total, x, cols, prefetch); break;
    case 6: xreg_launch<T, 6, ROWS>(b, total, x, cols, prefetch); break;
    case 7: xreg_launch<T, 7, ROWS>(b, total, x, cols, prefetch); break;
    default: xreg_launch<T, 8, ROWS>(b, total, x, cols, prefetch); break;
  }
  return true;
}

template bool matvec_xreg<TS_F32, 1>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_F32, 2>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_F16, 1>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_F16, 2>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_BF16, 1>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_BF16, 2>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_Q8_0, 1>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_Q8_0, 2>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_Q4_0, 1>(MvBatch, const float*, int, int);
template bool matvec_xreg<TS_Q4_0, 2>(MvBatch, const float*, int, int);

// Fused matvec of one token (see the header): the batch of ts_matvec_batch_* (matvec.cu) plus
// norm_w/norm_out/eps/norm_side (rmsnorm prologue), res_out/res_a (residual add after one matrix) and
// sel_idx/sel_thr (select after one matrix); each null to leave it out. Returns 0 when
// queued, -1 when these shapes or types have no fused kernel (nothing was launched).
template <int T>
static int matvec_fused(MvBatch b, const float* x, int cols) {
  const bool one = b.n_job == 1 && b.epi < EPI_SWIGLU;
  if ((b.res_out || b.sel_idx) && !one) return -1;
  if (b.norm_w && ((uintptr_t)b.norm_w & 15 || (uintptr_t)b.norm_out & 15)) return -1;
  if (((uintptr_t)x & 15) != 0) return -1;
  const int pf = ts_matvec_prefetch();
  const bool ok = b.epi >= EPI_SWIGLU ? matvec_xreg<T, 2>(b, x, cols, pf)
                                      : matvec_xreg<T, 1>(b, x, cols, pf);
  if (!ok) return -1;
  return ts_launch_status();
}

#define TS_FUSED(name, T)                                                                      \
  TS_EXPORT int ts_matvec_fused_##name(                                                        \
      float* o0, const uint8_t* w0, int r0, float* o1, const uint8_t* w1, int r1, float* o2,   \
      const uint8_t* w2, int r2, int n, int epi, const float* x, int cols, const float* norm_w, \
      float* norm_out, float eps, int norm_side, float* res_out, const float* res_a,          \
      int* sel_idx, float sel_thr, int sel_local) {                                            \
    MvBatch b = {};                                                                            \
    b.n_job = n, b.epi = epi;                                                                  \
    b.job[0].out = o0, b.job[0].w = w0, b.job[0].rows = r0;                                    \
    if (epi >= EPI_SWIGLU) {                                                                   \
      b.job[0].out2 = o1, b.job[0].w2 = w1, b.n_job = 1;                                       \
    } else {                                                                                   \
      b.job[1].out = o1, b.job[1].w = w1, b.job[1].rows = r1;                                  \
      b.job[2].out = o2, b.job[2].w = w2, b.job[2].rows = r2;                                  \
    }                                                                                          \
    b.norm_w = norm_w, b.norm_out = norm_out, b.eps = eps, b.norm_side = norm_side;            \
    b.res_out = res_out, b.res_a = res_a;                                                      \
    b.sel_idx = sel_idx, b.sel_thr = sel_thr, b.sel_local = sel_idx ? sel_local : 0;           \
    return matvec_fused<T>(b, x, cols);                                                        \
  }

TS_FUSED(f16, TS_F16)
TS_FUSED(bf16, TS_BF16)
TS_FUSED(q8_0, TS_Q8_0)
TS_FUSED(q4_0, TS_Q4_0)
