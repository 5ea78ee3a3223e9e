// Sparse FFN and MoE ops (core/backend.ts SPARSE_OPS): predictor unary, threshold → index
// list, gathered gate/up rows with the activation, sparse down over down_t rows, axpy.
//
// An index list is one device array of int32: [count, id 0, id 1, ...]; the count stays on
// the device, so kernels after `select` size their work from it (grids are sized for the
// capacity, surplus warps exit at once) and a captured decode step needs no host read.
// `select` is one block, one pass per 16384 scores (a block-wide prefix sum of per-thread
// counts; ids come out ascending). Gathered rows keep 8 16-byte loads in flight per lane and
// matrix, raw until use. When the list comes from the predictor's fused select (matvec_xreg.cu,
// sel_local), the gathered glu places it: every block scans the per-block counts itself, so
// no single last block of the select does that serially (+3.6% sparse decode on an H200).
// Sparse down is deterministic and one launch: block x owns 32 output columns and every
// listed row (64-byte row pieces, 12 rows in flight per lane), adds in a fixed order and
// applies the residual add (+3% over 256-column blocks on list slices plus a sum launch,
// which stays for F32 weights and widths not a multiple of 8).
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts --sparse 0.1.
#include "ts_cuda.h"

enum { U_RELU = 0, U_ABS_SILU = 1, U_NONZERO = 2 };
enum { G_SWIGLU = 0, G_REGLU = 1, G_DRELU = 2 };

static int grid_of(size_t n, int block) {
  size_t g = (n + block - 1) / block, cap = (size_t)ts_sm_count() * 16;
  return (int)(g < cap ? (g > 0 ? g : 1) : cap);
}

__global__ void unary_kernel(float* out, const float* x, size_t n, int op) {
  pdl_start();
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    if (op == U_RELU) out[i] = fmaxf(v, 0.f);
    else if (op == U_ABS_SILU) out[i] = fabsf(v / (1.0f + expf(-v)));
    else out[i] = v != 0.f ? 1.f : 0.f;
  }
}

TS_EXPORT int ts_unary_f32(float* out, const float* x, int n, int op) {
  ts_launch(unary_kernel, grid_of(n, 256), 256, out, x, (size_t)n, op);
  return ts_launch_status();
}

constexpr int SEL_THREADS = 1024, SEL_PER = 16, SEL_TILE = SEL_THREADS * SEL_PER;

// idx = [count, every i < n with score[i] >= thr, ascending]; one block of 1024 threads, one
// pass per tile of 16384 scores: each thread tests a contiguous run of up to 16 (a bit mask),
// one block-wide exclusive scan of the counts places every run, then the ids are written.
__global__ void __launch_bounds__(SEL_THREADS) select_kernel(int* idx, const float* score, int n, float thr) {
  pdl_start();
  __shared__ int warp_n[SEL_THREADS / 32];
  __shared__ int tile_n;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int base = 0;
  for (int t0 = 0; t0 < n; t0 += SEL_TILE) {
    const int len = min(n - t0, SEL_TILE), per = (len + SEL_THREADS - 1) / SEL_THREADS;
    const int i0 = t0 + threadIdx.x * per, i1 = min(t0 + len, i0 + per);
    unsigned bits = 0;
#pragma unroll
    for (int e = 0; e < SEL_PER; e++) {
      if (i0 + e < i1 && __ldg(score + i0 + e) >= thr) bits |= 1u << e;  // NaN compares false
    }
    const int mine = __popc(bits);
    const int incl = warp_scan(mine);  // inclusive scan within the warp
    if (lane == 31) warp_n[warp] = incl;
    __syncthreads();
    if (warp == 0) {
      const int w = warp_n[lane];
      warp_n[lane] = warp_scan(w) - w;  // exclusive prefix of the warp totals
    }
    __syncthreads();
    int at = base + warp_n[warp] + incl - mine;
    if (threadIdx.x == SEL_THREADS - 1) tile_n = warp_n[warp] + incl;
    for (int e = 0; bits; e++, bits >>= 1) {
      if (bits & 1u) idx[1 + at++] = i0 + e;
    }
    __syncthreads();  // tile_n is set, and warp_n read before the next tile rewrites it
    base += tile_n;
  }
  if (threadIdx.x == 0) idx[0] = base;
}

TS_EXPORT int ts_select_f32(int* idx, const float* score, int n, float thr) {
  ts_launch(select_kernel, 1, 1024, idx, score, n, thr);
  return ts_launch_status();
}

__device__ __forceinline__ float glu1(int kind, float g, float u) {
  if (kind == G_SWIGLU) return g / (1.0f + expf(-g)) * u;
  if (kind == G_REGLU) return fmaxf(g, 0.f) * u;
  return fmaxf(g, 0.f) * fmaxf(u, 0.f);
}

constexpr int GS_WARPS = 8, GS_LOADS = 8;  // 16-byte loads in flight per lane and matrix

__device__ __forceinline__ float dot8(const float* w, const float* x) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(x));
  const float4 b = __ldg(reinterpret_cast<const float4*>(x) + 1);
  return w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
         w[6] * b.z + w[7] * b.w;
}

constexpr int GS_MAX_LISTS = 2048;  // per-block lists a from_select glu scans (XR_SEL_MAX_GRID)

// Survivor k of a select epilogue's per-block lists, pre their scanned counts (scan_counts).
__device__ __forceinline__ int lists_id(const int* pre, const TsLocalSel& ls, int k) {
  const int q = count_owner(pre, ls.grid, k);
  return ls.ids[row_split(q, ls.total, ls.grid) + k - pre[q]];
}

// act[k] = glu(gate[i]·x or gate_out[i], up[i]·x), i = idx[1 + k], k < count; wpr warps per k.
// The grid is sized for the GPU, not the list's capacity: blocks stride over the count read
// on the device (few idle blocks when the list is short). VEC: cols % 8 == 0, x 16-byte aligned.
// LISTS: the list comes from a select epilogue's per-block lists (ls); every block scans their
// counts, and the warps write the ids they take (and block 0 the count) into ls.idx.
template <int T, bool VEC, bool LISTS>
__global__ void __launch_bounds__(GS_WARPS * 32)
glu_sparse_kernel(float* act, const uint8_t* gate, const float* gate_out, const uint8_t* up,
                  const float* x, const int* idx, int cols, size_t row_bytes, int kind, int wpr,
                  TsLocalSel ls) {
  pdl_start();
  __shared__ float red[GS_WARPS][2];
  __shared__ int pre[LISTS ? GS_MAX_LISTS + 1 : 1], wt[GS_WARPS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, ks = warp % wpr;
  const int per = GS_WARPS / wpr;
  int count;
  if constexpr (LISTS) {
    scan_counts<GS_WARPS * 32, GS_MAX_LISTS>(pre, wt, ls.cnt, ls.grid);
    count = pre[ls.grid];
    if (blockIdx.x == 0 && threadIdx.x == 0) ls.idx[0] = count;
  } else {
    count = idx[0];
  }
  for (int kb = blockIdx.x * per; kb < count; kb += gridDim.x * per) {
    const int k = kb + warp / wpr;
    const bool live = k < count;
    float g = 0.f, u = 0.f;
    int i = 0;
    if (live) {
      if constexpr (LISTS) {
        i = lists_id(pre, ls, k);
        if (lane == 0 && ks == 0) ls.idx[1 + k] = i;
      } else {
        i = idx[1 + k];
      }
      const uint8_t* ur = up + (size_t)i * row_bytes;
      const uint8_t* gr = gate ? gate + (size_t)i * row_bytes : nullptr;
      if (VEC) {
        const int n_chunk = cols >> 3, stride = 32 * wpr;
        for (int c0 = ks * 32 + lane; c0 < n_chunk; c0 += stride * GS_LOADS) {
          Chunk<T> uv[GS_LOADS], gv[GS_LOADS];
#pragma unroll
          for (int q = 0; q < GS_LOADS; q++) {
            if (c0 + q * stride < n_chunk) {
              uv[q].load(ur, (c0 + q * stride) * 8);
              if (gr) gv[q].load(gr, (c0 + q * stride) * 8);
            }
          }
#pragma unroll
          for (int q = 0; q < GS_LOADS; q++) {
            if (c0 + q * stride >= n_chunk) break;
            const float* xp = x + (c0 + q * stride) * 8;
            float f[8];
            uv[q].get(f);
            u += dot8(f, xp);
            if (gr) {
              gv[q].get(f);
              g += dot8(f, xp);
            }
          }
        }
      } else {
        for (int c = ks * 32 + lane; c < cols; c += 32 * wpr) {
          u += Elems<T>::one(ur, c) * x[c];
          if (gr) g += Elems<T>::one(gr, c) * x[c];
        }
      }
    }
    u = warp_sum(u), g = warp_sum(g);
    if (wpr > 1) {
      if (lane == 0) red[warp][0] = g, red[warp][1] = u;
      __syncthreads();
      g = 0.f, u = 0.f;
      for (int q = 0; q < wpr; q++) g += red[warp - ks + q][0], u += red[warp - ks + q][1];
      __syncthreads();  // red is read before the next step rewrites it
    }
    if (live && lane == 0 && ks == 0) {
      if (!gate) g = gate_out[i];
      act[k] = glu1(kind, g, u);
    }
  }
}

template <int T, bool LISTS>
static void glu_launch(int blocks, float* act, const uint8_t* gate, const float* gate_out,
                       const uint8_t* up, const float* x, const int* idx, int cols, int kind,
                       int wpr, const TsLocalSel& ls) {
  const size_t rb = ts_row_bytes(T, cols);
  if (cols % 8 == 0 && ((uintptr_t)x & 15) == 0) {
    ts_launch(glu_sparse_kernel<T, true, LISTS>, blocks, GS_WARPS * 32, act, gate, gate_out, up, x, idx, cols, rb, kind, wpr, ls);
  } else {
    ts_launch(glu_sparse_kernel<T, false, LISTS>, blocks, GS_WARPS * 32, act, gate, gate_out, up, x, idx, cols, rb, kind, wpr, ls);
  }
}

// from_select: idx is the list of the select epilogue just launched with sel_local
// (ts_local_sel); this launch completes it (cudaErrorInvalidValue when that does not match).
template <int T>
static int glu_sparse(float* act, const uint8_t* gate, const float* gate_out, const uint8_t* up,
                      const float* x, int* idx, int capacity, int cols, int kind, int from_select) {
  const int wpr = cols >= 2048 ? 2 : 1, per = GS_WARPS / wpr;
  int blocks = (capacity + per - 1) / per;
  const int cap = 4 * (ts_sm_count() > 0 ? ts_sm_count() : 132);  // about 4 per multiprocessor
  if (blocks > cap) blocks = cap;
  TsLocalSel ls = ts_local_sel();
  ts_local_sel().idx = nullptr;  // one glu takes the lists
  if (from_select && (ls.idx != idx || ls.grid < 1 || ls.grid > GS_MAX_LISTS)) {
    return (int)cudaErrorInvalidValue;  // no fused select of idx was just launched
  }
  if (blocks == 0 && !from_select) return 0;
  if (blocks == 0) blocks = 1;
  if (from_select) glu_launch<T, true>(blocks, act, gate, gate_out, up, x, idx, cols, kind, wpr, ls);
  else glu_launch<T, false>(blocks, act, gate, gate_out, up, x, idx, cols, kind, wpr, ls);
  return ts_launch_status();
}

constexpr int DS_WARPS = 8, DS_COLS = 256, DS_LOADS = 8, DS_MAX_SPLIT = 32;

// part[y, j] = Σ over slice y of the list of act[k] · down_t[idx[k], j], act[k] ≠ 0. A block
// owns 256 columns (a warp reads 512 contiguous bytes of a row); warp w takes rows w, w + 8, …
// of the slice, 8 rows in flight per lane; the warps' sums are added in order in shared memory.
template <int T, bool VEC>
__global__ void __launch_bounds__(DS_WARPS * 32)
down_sparse_kernel(float* part, const uint8_t* down_t, const float* act, const int* idx, int cols,
                   size_t row_bytes) {
  pdl_start();
  __shared__ __align__(16) float acc_s[DS_WARPS][DS_COLS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int c = blockIdx.x * DS_COLS + lane * 8;
  const int count = idx[0], n_split = gridDim.y;
  const int per = (count + n_split - 1) / n_split;
  const int k0 = blockIdx.y * per, k1 = min(count, k0 + per);
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (c < cols && VEC) {
    for (int kb = k0 + warp; kb < k1; kb += DS_WARPS * DS_LOADS) {
      Chunk<T> wv[DS_LOADS];
      float a[DS_LOADS];
#pragma unroll
      for (int q = 0; q < DS_LOADS; q++) {
        const int k = kb + q * DS_WARPS;
        a[q] = k < k1 ? act[k] : 0.f;
        if (a[q] != 0.f) wv[q].load(down_t + (size_t)idx[1 + k] * row_bytes, c);
      }
#pragma unroll
      for (int q = 0; q < DS_LOADS; q++) {
        if (a[q] != 0.f) {
          float f[8];
          wv[q].get(f);
#pragma unroll
          for (int e = 0; e < 8; e++) acc[e] += a[q] * f[e];
        }
      }
    }
  } else if (c < cols) {
    for (int k = k0 + warp; k < k1; k += DS_WARPS) {
      const float a = act[k];
      if (a == 0.f) continue;
      const uint8_t* row = down_t + (size_t)idx[1 + k] * row_bytes;
#pragma unroll
      for (int e = 0; e < 8; e++) {
        if (c + e < cols) acc[e] += a * Elems<T>::one(row, c + e);
      }
    }
  }
  float4* s4 = reinterpret_cast<float4*>(&acc_s[warp][lane * 8]);
  s4[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
  s4[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
  __syncthreads();
  for (int j = threadIdx.x; j < DS_COLS; j += DS_WARPS * 32) {
    float s = 0.f;
    for (int q = 0; q < DS_WARPS; q++) s += acc_s[q][j];
    const int col = blockIdx.x * DS_COLS + j;
    if (col < cols) part[(size_t)blockIdx.y * cols + col] = s;
  }
}

constexpr int SUM_THREADS = 128;

// out = Σ_y part[y] in order; with res_out also res_out = res_a + out (the residual add). Every
// split's value is loaded before the first add (one round trip to L2, not one per few splits).
__global__ void __launch_bounds__(SUM_THREADS)
sum_splits_kernel(float* out, const float* part, int cols, int n_split, float* res_out,
                  const float* res_a) {
  pdl_start();
  const int j = blockIdx.x * SUM_THREADS + threadIdx.x;
  if (j >= cols) return;
  float v[DS_MAX_SPLIT];
#pragma unroll
  for (int y = 0; y < DS_MAX_SPLIT; y++) v[y] = y < n_split ? part[(size_t)y * cols + j] : 0.f;
  const float a = res_out ? res_a[j] : 0.f;
  float s = 0.f;
#pragma unroll
  for (int y = 0; y < DS_MAX_SPLIT; y++) {
    if (y < n_split) s += v[y];
  }
  out[j] = s;
  if (res_out) res_out[j] = a + s;
}

constexpr int DC_WARPS = 16, DC_COLS = 32, DC_SLOTS = DC_WARPS * 8;
// Rows in flight per lane: 8 for F16/BF16 (82 registers: the next layer's Q/K/V blocks fit
// beside a down block and load their first rows during it; with 12, 122 registers filled the
// multiprocessor and Q/K/V added 2.8 µs more per layer, H200, BENCHMARKS.md), else 12.
template <int T>
constexpr int dc_loads() {
  return T == TS_F16 || T == TS_BF16 ? 8 : 12;
}

// One launch, no partial sums: block x owns 32 output columns and every listed row. Four
// lanes read a row's 64 bytes (F16) of those columns, so a warp covers 8 rows and the block
// DC_SLOTS; each lane keeps DC_LOADS (dc_loads) rows in flight. The count, act and ids are
// loaded together (their addresses do not depend on the count). Lanes of one column group add in a
// fixed butterfly, the warps in order in shared memory: the same bits on every run.
template <int T, int DC_LOADS = dc_loads<T>()>
__global__ void __launch_bounds__(DC_WARPS * 32)
down_cols_kernel(float* out, const uint8_t* down_t, const float* act, const int* idx, int cols,
                 size_t row_bytes, int capacity, float* res_out, const float* res_a) {
  pdl_start();
  __shared__ float red[DC_WARPS][DC_COLS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int slot = warp * 8 + (lane >> 2), c = blockIdx.x * DC_COLS + (lane & 3) * 8;
  const bool in = c < cols;
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int kb = 0;; kb += DC_SLOTS * DC_LOADS) {
    float a[DC_LOADS];
    int id[DC_LOADS];
#pragma unroll
    for (int q = 0; q < DC_LOADS; q++) {
      const int k = kb + slot + q * DC_SLOTS;
      a[q] = k < capacity ? act[k] : 0.f;
      id[q] = k < capacity ? idx[1 + k] : 0;
    }
    const int count = idx[0];
    Chunk<T> wv[DC_LOADS];
#pragma unroll
    for (int q = 0; q < DC_LOADS; q++) {
      if (kb + slot + q * DC_SLOTS >= count) a[q] = 0.f;
      if (a[q] != 0.f && in) wv[q].load(down_t + (size_t)id[q] * row_bytes, c);
    }
#pragma unroll
    for (int q = 0; q < DC_LOADS; q++) {
      if (a[q] != 0.f && in) {
        float f[8];
        wv[q].get(f);
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] += a[q] * f[e];
      }
    }
    if (kb + DC_SLOTS * DC_LOADS >= count) break;
  }
#pragma unroll
  for (int o = 4; o < 32; o <<= 1) {
#pragma unroll
    for (int e = 0; e < 8; e++) acc[e] += __shfl_xor_sync(0xffffffffu, acc[e], o);
  }
  if (lane < 4) {
#pragma unroll
    for (int e = 0; e < 8; e++) red[warp][lane * 8 + e] = acc[e];
  }
  __syncthreads();
  if (threadIdx.x < DC_COLS) {
    const int col = blockIdx.x * DC_COLS + threadIdx.x;
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < DC_WARPS; w++) s += red[w][threadIdx.x];
    if (col < cols) {
      out[col] = s;
      if (res_out) res_out[col] = res_a[col] + s;
    }
  }
}

// Bench switch (ts_sparse_config): 1 (default) the one-launch column-block down where it
// applies, 0 the split down and its sum launch.
static int g_down_cols = 1;
TS_EXPORT int ts_sparse_config(int down_cols) {
  g_down_cols = down_cols;
  return 0;
}

template <int T>
static int down_sparse(float* out, const uint8_t* down_t, const float* act, const int* idx, int cols,
                       float* res_out, const float* res_a, int capacity) {
  if constexpr (T != TS_F32) {  // F32: 8 floats per load would spill
    if (g_down_cols && cols % 8 == 0) {
      const size_t rb = ts_row_bytes(T, cols);
      ts_launch(down_cols_kernel<T>, (cols + DC_COLS - 1) / DC_COLS, DC_WARPS * 32, out, down_t, act, idx, cols, rb, capacity, res_out, res_a);
      return ts_launch_status();
    }
  }
  const int gx = (cols + DS_COLS - 1) / DS_COLS;
  int n_split = (4 * ts_sm_count() + gx - 1) / gx;  // about 4 blocks per multiprocessor
  if (n_split > DS_MAX_SPLIT) n_split = DS_MAX_SPLIT;
  if (n_split < 1) n_split = 1;
  float* part = (float*)ts_scratch(4, (size_t)n_split * cols * sizeof(float));
  if (!part) return (int)cudaErrorMemoryAllocation;
  const size_t rb = ts_row_bytes(T, cols);
  dim3 grid(gx, n_split);
  // 8-column groups need aligned rows: any cols % 8 (Q8_0 and Q4_0 in their device groups).
  const bool vec = cols % 8 == 0;
  if (vec) ts_launch(down_sparse_kernel<T, true>, grid, DS_WARPS * 32, part, down_t, act, idx, cols, rb);
  else ts_launch(down_sparse_kernel<T, false>, grid, DS_WARPS * 32, part, down_t, act, idx, cols, rb);
  ts_launch(sum_splits_kernel, (cols + SUM_THREADS - 1) / SUM_THREADS, SUM_THREADS, out, part, cols, n_split, res_out, res_a);
  return ts_launch_status();
}

__global__ void axpy_kernel(float* out, const float* x, size_t n, float alpha) {
  pdl_start();
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = out[i] + alpha * x[i];
}

// out[i] += alpha · x[i] for i < n.
TS_EXPORT int ts_axpy_f32(float* out, const float* x, int n, float alpha) {
  ts_launch(axpy_kernel, grid_of(n, 256), 256, out, x, (size_t)n, alpha);
  return ts_launch_status();
}

// gate null: the gated variant reading gate_out [n_ff] instead. idx capacity sizes the grid.
// Down: res_out, when set, also gets res_a + out (the residual add after the FFN).
#define TS_SPARSE(name, T)                                                                     \
  TS_EXPORT int ts_glu_sparse_##name(float* act, const uint8_t* gate, const float* gate_out,   \
                                     const uint8_t* up, const float* x, int* idx,              \
                                     int capacity, int cols, int kind, int from_select) {     \
    return glu_sparse<T>(act, gate, gate_out, up, x, idx, capacity, cols, kind, from_select);  \
  }                                                                                            \
  TS_EXPORT int ts_down_sparse_##name(float* out, const uint8_t* down_t, const float* act,     \
                                      const int* idx, int capacity, int cols, float* res_out, \
                                      const float* res_a) {                                   \
    return down_sparse<T>(out, down_t, act, idx, cols, res_out, res_a, capacity);              \
  }

TS_SPARSE(f32, TS_F32)
TS_SPARSE(f16, TS_F16)
TS_SPARSE(bf16, TS_BF16)
TS_SPARSE(q8_0, TS_Q8_0)
TS_SPARSE(q4_0, TS_Q4_0)
