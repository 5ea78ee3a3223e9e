// One decode token's whole sparse FFN in one launch (F16/BF16 weights):
//
//   xn = rmsnorm(x) · norm_w          (the FFN's input; the predictor reads x itself)
//   hidden = relu(fc1 · x)            score = fc2 · hidden
//   idx = [count, i with score[i] >= thr, ascending]
//   act[k] = glu(gate[i] · xn, up[i] · xn), i = idx[1 + k]
//   out = Σ_k act[k] · down_t[i]      res_out = res_a + out   (the residual add)
//
// Unfused these are five dependent launches (plugins/cuda/_queue.ts runs them when a shape
// does not fit here), each paying a drain and a ramp that cost more than its short read. Here
// one persistent grid (every block resident: the grid is the occupancy times the
// multiprocessors) runs the phases and meets at a grid barrier between them, four in all.
// No phase waits on a single block: each block compacts its own slice of the scores, and
// after the barrier every block scans the per-block counts itself. Weights do not depend on
// earlier phases, so the fc1 and fc2 rows are requested into L2 before the wait for the
// previous kernel, and the down rows a block will read while the gate/up rows stream.
//
// Deterministic: every sum has a fixed order (warps, then row slices, in index order); no
// float atomics. Values written by other blocks during the launch are read through L2
// (__ldcg), never through the non-coherent path.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts --sparse 0.1 (--no-chain: the five launches).
#include "ts_cuda.h"

constexpr int FF_THREADS = 256, FF_WARPS = FF_THREADS / 32;
constexpr int FF_MAX_GRID = 1024;  // per-block counts scanned in shared memory
constexpr int FF_MAX_EMBD = 8192;  // xn staged in shared memory
constexpr int FF_MAX_CPL = 4;      // fc2 chunks of 8 per lane: rank <= 1024
constexpr int FF_COLS = 256;       // down: columns per unit (a warp reads 512 bytes of a row)
constexpr int FF_LOADS = 8;        // 16-byte loads in flight per lane and matrix
constexpr int FF_MAX_LOCAL = 1024; // rows of fc2 per block at most (a list in shared memory)

struct FfnArgs {
  const float* x;  // [n_embd] the residual: fc1 and the norm read it, res_out may be it
  const float* norm_w;
  float eps;
  float* xn;  // [n_embd]
  const uint8_t* fc1;  // [rank, n_embd]
  float* hidden;       // [rank]
  const uint8_t* fc2;  // [n_ff, rank]
  float* score;        // [n_ff]
  float thr;
  int* idx;  // [1 + n_ff]
  const uint8_t* gate;
  const uint8_t* up;  // [n_ff, n_embd]
  float* act;         // [n_ff]: the first count used
  int kind;
  const uint8_t* down_t;  // [n_ff, n_embd]
  float* out;             // [n_embd]
  float* res_out;         // [n_embd] or null
  const float* res_a;
  int rank, n_ff, n_embd;
  int* sel_ids;   // [n_ff] scratch: block q's survivors from its first row on
  float* loc_act;  // [n_ff] scratch: their activations, in the same places
  int* sel_cnt;   // [grid]
  float* part;   // [n_slice, n_embd] scratch
  int n_tile, n_slice, prefetch;
};

enum { FF_PRE_WEIGHTS = 1, FF_PRE_DOWN = 2 };

__device__ unsigned int g_ff_bar[2];  // arrivals, generation

// Bench clocks (ns, %globaltimer) of the last launch: [0] block 0 enters, [1] block 0 passes
// the wait for the previous kernel, then per barrier k (0..2) [2 + 2k] the last block arrives,
// [3 + 2k] block 0 leaves it; [8] block 0 ends. ts_ffn_times reads them.
__device__ unsigned long long g_ff_t[9];

__device__ __forceinline__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ void stamp(int k) {
  if (blockIdx.x == 0 && threadIdx.x == 0) g_ff_t[k] = now_ns();
}

// All blocks of the grid meet here; writes before it are visible to every block after it.
__device__ __forceinline__ void grid_barrier(int k) {
  __syncthreads();
  if (threadIdx.x == 0) {
    volatile unsigned int* gen = &g_ff_bar[1];
    const unsigned int g = *gen;  // read before arriving: it cannot move until all arrive
    __threadfence();
    if (atomicAdd(&g_ff_bar[0], 1u) == gridDim.x - 1) {
      g_ff_t[2 + 2 * k] = now_ns();
      atomicExch(&g_ff_bar[0], 0u);
      __threadfence();
      atomicAdd(&g_ff_bar[1], 1u);
    } else {
      while (*gen == g) {
      }
    }
    __threadfence();
  }
  __syncthreads();
  stamp(3 + 2 * k);
}

__device__ __forceinline__ float glu_of(int kind, float g, float u) {
  if (kind == 0) return g / (1.0f + expf(-g)) * u;  // swiglu
  if (kind == 1) return fmaxf(g, 0.f) * u;           // reglu
  return fmaxf(g, 0.f) * fmaxf(u, 0.f);              // drelu
}

__device__ __forceinline__ float dot8f(const float* w, float4 a, float4 b) {
  return w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
         w[6] * b.z + w[7] * b.w;
}

// Rows [first row of block q, ...) of the block partition of n rows over the grid.
__device__ __forceinline__ int part_of(int q, int n) {
  return (int)((long long)q * n / gridDim.x);
}

// The block q whose list holds output k: pre[q] <= k < pre[q + 1] (pre ascending, n_blk + 1).
__device__ __forceinline__ int owner_of(const int* pre, int n_blk, int k) {
  int lo = 0, hi = n_blk - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (pre[mid] <= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <int T, int CPL>
__global__ void __launch_bounds__(FF_THREADS, 2) ffn_sparse_kernel(FfnArgs a) {
  __shared__ __align__(16) float s_x[FF_MAX_EMBD];  // xn; later the down's warp sums
  __shared__ int pre[FF_MAX_GRID + 1];
  __shared__ int s_id[FF_MAX_LOCAL];  // this block's survivors, later a down slice's rows
  __shared__ float s_a[FF_MAX_LOCAL];  // their activations
  __shared__ int wn[FF_WARPS];
  __shared__ float red[FF_WARPS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gw = blockIdx.x * FF_WARPS + warp, n_warp = gridDim.x * FF_WARPS;
  const int n_blk = gridDim.x, n_embd = a.n_embd, n_ff = a.n_ff, rank = a.rank;
  const size_t rb1 = (size_t)n_embd * 2, rb2 = (size_t)rank * 2;  // bytes per row
  const int g0 = part_of(blockIdx.x, n_ff), g1 = part_of(blockIdx.x + 1, n_ff);
  const int n_chunk1 = n_embd >> 3;

  stamp(0);
  if (a.prefetch & FF_PRE_WEIGHTS) {  // weights: nothing writes them, so before the wait
    for (int r = gw; r < rank; r += n_warp) {
      for (size_t o = (size_t)lane * 128; o < rb1; o += 32 * 128) prefetch_l2(a.fc1 + r * rb1 + o);
    }
    const size_t lines = ((size_t)(g1 - g0) * rb2 + 127) / 128;
    for (size_t l = threadIdx.x; l < lines; l += FF_THREADS) prefetch_l2(a.fc2 + g0 * rb2 + l * 128);
  }
  pdl_start();
  stamp(1);

  // Phase 1: hidden = relu(fc1 · x). Rows of 8 KB need several round trips for one warp, so
  // when the grid has the warps, two warps of a block share a row (one trip of 8 loads each).
  {
    const int wpr = n_warp >= 2 * rank ? 2 : 1, rpb = FF_WARPS / wpr, sub = warp % wpr;
    for (int base = blockIdx.x * rpb; base < rank; base += n_blk * rpb) {
      const int r = base + warp / wpr;
      float acc = 0.f;
      if (r < rank) {
        const uint8_t* row = a.fc1 + r * rb1;
        for (int c0 = sub * 32 + lane; c0 < n_chunk1; c0 += 32 * wpr * FF_LOADS) {
          Chunk<T> w[FF_LOADS];
#pragma unroll
          for (int q = 0; q < FF_LOADS; q++) {
            if (c0 + 32 * wpr * q < n_chunk1) w[q].load(row, (c0 + 32 * wpr * q) * 8);
          }
#pragma unroll
          for (int q = 0; q < FF_LOADS; q++) {
            const int c = c0 + 32 * wpr * q;
            if (c >= n_chunk1) break;
            float f[8];
            w[q].get(f);
            const float4* xp = reinterpret_cast<const float4*>(a.x) + 2 * c;
            acc += dot8f(f, xp[0], xp[1]);
          }
        }
      }
      acc = warp_sum(acc);
      if (wpr == 1) {
        if (lane == 0 && r < rank) a.hidden[r] = fmaxf(acc, 0.f);
      } else {
        if (lane == 0) red[warp] = acc;
        __syncthreads();
        if (lane == 0 && sub == 0 && r < rank) a.hidden[r] = fmaxf(red[warp] + red[warp + 1], 0.f);
        __syncthreads();  // red is read before the next rows rewrite it
      }
    }
  }
  if (blockIdx.x == 0) {
    float ss = 0.f;
    for (int i = threadIdx.x; i < n_embd; i += FF_THREADS) ss += a.x[i] * a.x[i];
    ss = warp_sum(ss);
    if (lane == 0) red[warp] = ss;
    __syncthreads();
    float tot = 0.f;
#pragma unroll
    for (int k = 0; k < FF_WARPS; k++) tot += red[k];
    const float inv = 1.0f / sqrtf(tot / n_embd + a.eps);
    for (int i = threadIdx.x; i < n_embd; i += FF_THREADS) a.xn[i] = a.x[i] * inv * a.norm_w[i];
  }
  grid_barrier(0);

  // Phase 2: score = fc2 · hidden over this block's rows [g0, g1) (RW rows per warp step,
  // hidden in registers); the block lists its survivors in shared memory, asks L2 for their
  // down rows, and computes their activations itself: no barrier between select and glu.
  int n_loc = 0;
  {
    const int n_chunk2 = rank >> 3;
    float xr[CPL][8];
#pragma unroll
    for (int u = 0; u < CPL; u++) {
      const int c = lane + 32 * u;
      if (c < n_chunk2) {
        const float4* hp = reinterpret_cast<const float4*>(a.hidden) + 2 * c;
        const float4 p = __ldcg(hp), q = __ldcg(hp + 1);
        xr[u][0] = p.x, xr[u][1] = p.y, xr[u][2] = p.z, xr[u][3] = p.w;
        xr[u][4] = q.x, xr[u][5] = q.y, xr[u][6] = q.z, xr[u][7] = q.w;
      } else {
#pragma unroll
        for (int e = 0; e < 8; e++) xr[u][e] = 0.f;
      }
    }
    constexpr int RW = 16 / CPL > 8 ? 8 : 16 / CPL;  // rows per warp step: 16 loads in flight
    for (int r0 = g0 + RW * warp; r0 < g1; r0 += RW * FF_WARPS) {
      Chunk<T> w[RW][CPL];
#pragma unroll
      for (int h = 0; h < RW; h++) {
        if (r0 + h >= g1) continue;
#pragma unroll
        for (int u = 0; u < CPL; u++) {
          if (lane + 32 * u < n_chunk2) w[h][u].load(a.fc2 + (r0 + h) * rb2, (lane + 32 * u) * 8);
        }
      }
#pragma unroll
      for (int h = 0; h < RW; h++) {
        float acc = 0.f;
        if (r0 + h < g1) {
#pragma unroll
          for (int u = 0; u < CPL; u++) {
            if (lane + 32 * u < n_chunk2) {
              float f[8];
              w[h][u].get(f);
#pragma unroll
              for (int e = 0; e < 8; e++) acc += f[e] * xr[u][e];
            }
          }
        }
        acc = warp_sum(acc);
        if (lane == 0 && r0 + h < g1) a.score[r0 + h] = acc;
      }
    }
    const float4* xn4 = reinterpret_cast<const float4*>(a.xn);
    for (int i = threadIdx.x; i < (n_embd >> 2); i += FF_THREADS) {
      reinterpret_cast<float4*>(s_x)[i] = __ldcg(xn4 + i);
    }
    __syncthreads();  // this block's scores are stored, xn staged
    for (int r1 = g0; r1 < g1; r1 += FF_THREADS) {
      const int r = r1 + threadIdx.x;
      const bool keep = r < g1 && __ldcg(a.score + r) >= a.thr;  // NaN compares false
      const unsigned m = __ballot_sync(0xffffffffu, keep);
      if (lane == 0) wn[warp] = __popc(m);
      __syncthreads();
      int before = n_loc, all = n_loc;
#pragma unroll
      for (int k = 0; k < FF_WARPS; k++) before += k < warp ? wn[k] : 0, all += wn[k];
      if (keep) s_id[before + __popc(m & ((1u << lane) - 1u))] = r;
      n_loc = all;
      __syncthreads();  // wn is read before the next pass rewrites it; s_id is complete
    }
    if (a.prefetch & FF_PRE_DOWN) {
      const int lines = (int)((rb1 + 127) / 128);
      for (int p = threadIdx.x; p < n_loc * lines; p += FF_THREADS) {
        prefetch_l2(a.down_t + (size_t)s_id[p / lines] * rb1 + (size_t)(p % lines) * 128);
      }
    }
    for (int j = warp; j < n_loc; j += FF_WARPS) {
      const int i = s_id[j];
      const uint8_t* gr = a.gate + (size_t)i * rb1;
      const uint8_t* ur = a.up + (size_t)i * rb1;
      float g = 0.f, u = 0.f;
      for (int c0 = lane; c0 < n_chunk1; c0 += 32 * FF_LOADS) {
        Chunk<T> gv[FF_LOADS], uv[FF_LOADS];
#pragma unroll
        for (int q2 = 0; q2 < FF_LOADS; q2++) {
          if (c0 + 32 * q2 < n_chunk1) {
            gv[q2].load(gr, (c0 + 32 * q2) * 8);
            uv[q2].load(ur, (c0 + 32 * q2) * 8);
          }
        }
#pragma unroll
        for (int q2 = 0; q2 < FF_LOADS; q2++) {
          const int cc = c0 + 32 * q2;
          if (cc >= n_chunk1) break;
          const float4* xp = reinterpret_cast<const float4*>(s_x) + 2 * cc;
          const float4 x0 = xp[0], x1 = xp[1];
          float f[8];
          gv[q2].get(f);
          g += dot8f(f, x0, x1);
          uv[q2].get(f);
          u += dot8f(f, x0, x1);
        }
      }
      g = warp_sum(g), u = warp_sum(u);
      if (lane == 0) s_a[j] = glu_of(a.kind, g, u);
    }
    __syncthreads();
    for (int j = threadIdx.x; j < n_loc; j += FF_THREADS) {
      a.sel_ids[g0 + j] = s_id[j];
      a.loc_act[g0 + j] = s_a[j];
    }
    if (threadIdx.x == 0) a.sel_cnt[blockIdx.x] = n_loc;
  }
  grid_barrier(1);

  // Phase 3: every block scans the counts (pre[q]: the first output of block q) and writes
  // its own list and activations at their place in idx and act; then the down projection:
  // block (tile, slice) sums act[k] · down_t[idx[1 + k]] over its slice of the list for 256
  // columns, warp w taking rows w, w + 8, ... of the slice.
  {
    constexpr int PER_MAX = FF_MAX_GRID / FF_THREADS;
    const int per = (n_blk + FF_THREADS - 1) / FF_THREADS;
    int c[PER_MAX];
    int mine = 0;
#pragma unroll
    for (int e = 0; e < PER_MAX; e++) {
      const int q = threadIdx.x * per + e;
      c[e] = e < per && q < n_blk ? __ldcg(a.sel_cnt + q) : 0;
      mine += c[e];
    }
    int incl = mine;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    if (lane == 31) wn[warp] = incl;
    __syncthreads();
    int at = incl - mine, count = 0;
#pragma unroll
    for (int k = 0; k < FF_WARPS; k++) at += k < warp ? wn[k] : 0, count += wn[k];
#pragma unroll
    for (int e = 0; e < PER_MAX; e++) {
      const int q = threadIdx.x * per + e;
      if (e < per && q < n_blk) pre[q] = at;
      at += c[e];
    }
    if (threadIdx.x == 0) pre[n_blk] = count;
    __syncthreads();
    const int p0 = pre[blockIdx.x];
    for (int j = threadIdx.x; j < n_loc; j += FF_THREADS) {
      a.idx[1 + p0 + j] = s_id[j];
      a.act[p0 + j] = s_a[j];
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) a.idx[0] = count;
    __syncthreads();  // s_id and s_a are free again

    if (blockIdx.x < a.n_tile * a.n_slice) {
      const int tile = blockIdx.x % a.n_tile, slice = blockIdx.x / a.n_tile;
      const int sp = (count + a.n_slice - 1) / a.n_slice;
      const int k0 = slice * sp, k1 = min(count, k0 + sp);
      const int col = tile * FF_COLS + lane * 8;
      float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      for (int kc = k0; kc < k1; kc += FF_MAX_LOCAL) {
        // this chunk of the slice: rows and activations into shared memory, all at once
        const int n = min(FF_MAX_LOCAL, k1 - kc);
        for (int t = threadIdx.x; t < n; t += FF_THREADS) {
          const int k = kc + t, q = owner_of(pre, n_blk, k);
          const int at2 = part_of(q, n_ff) + k - pre[q];
          s_id[t] = __ldcg(a.sel_ids + at2);
          s_a[t] = __ldcg(a.loc_act + at2);
        }
        __syncthreads();
        if (col < n_embd) {
          for (int tb = warp; tb < n; tb += FF_WARPS * FF_LOADS) {
            Chunk<T> wv[FF_LOADS];
            float av[FF_LOADS];
#pragma unroll
            for (int q = 0; q < FF_LOADS; q++) {
              const int t = tb + q * FF_WARPS;
              av[q] = t < n ? s_a[t] : 0.f;
              if (av[q] != 0.f) wv[q].load(a.down_t + (size_t)s_id[t] * rb1, col);
            }
#pragma unroll
            for (int q = 0; q < FF_LOADS; q++) {
              if (av[q] != 0.f) {
                float f[8];
                wv[q].get(f);
#pragma unroll
                for (int e = 0; e < 8; e++) acc[e] += av[q] * f[e];
              }
            }
          }
        }
        __syncthreads();  // s_id and s_a are read before the next chunk rewrites them
      }
      float4* s4 = reinterpret_cast<float4*>(s_x + warp * FF_COLS + lane * 8);
      s4[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
      s4[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
      __syncthreads();
      for (int j = threadIdx.x; j < FF_COLS; j += FF_THREADS) {
        float s = 0.f;
#pragma unroll
        for (int q = 0; q < FF_WARPS; q++) s += s_x[q * FF_COLS + j];
        const int cj = tile * FF_COLS + j;
        if (cj < n_embd) a.part[(size_t)slice * n_embd + cj] = s;
      }
    }
  }
  grid_barrier(2);

  // Phase 4: out = Σ slices in order, and the residual add.
  for (int j = blockIdx.x * FF_THREADS + threadIdx.x; j < n_embd; j += n_blk * FF_THREADS) {
    float s = 0.f;
    for (int y = 0; y < a.n_slice; y++) s += __ldcg(a.part + (size_t)y * n_embd + j);
    a.out[j] = s;
    if (a.res_out) a.res_out[j] = a.res_a[j] + s;
  }
  stamp(8);
}

// Bench: the clocks of the last launch (g_ff_t, 9 values in ns).
TS_EXPORT int ts_ffn_times(unsigned long long* out) {
  cudaStreamSynchronize(ts_stream());
  return (int)cudaMemcpyFromSymbol(out, g_ff_t, sizeof(unsigned long long) * 9);
}

static int g_ff_per_sm = 2;      // blocks per multiprocessor at most (ts_ffn_config)
static int g_ff_prefetch = FF_PRE_WEIGHTS | FF_PRE_DOWN;

// Bench: blocks per multiprocessor (0: default 2) and the prefetch bits (-1: default both).
TS_EXPORT void ts_ffn_config(int per_sm, int prefetch) {
  g_ff_per_sm = per_sm > 0 ? per_sm : 2;
  g_ff_prefetch = prefetch >= 0 ? prefetch : (FF_PRE_WEIGHTS | FF_PRE_DOWN);
}

template <int T, int CPL>
static int ffn_launch(FfnArgs a) {
  static int per_sm = -1;
  if (per_sm < 0) {
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, ffn_sparse_kernel<T, CPL>,
                                                      FF_THREADS, 0) != cudaSuccess) {
      per_sm = 0;
    }
  }
  const int sms = ts_sm_count();
  int grid = (per_sm < g_ff_per_sm ? per_sm : g_ff_per_sm) * sms;
  if (grid > FF_MAX_GRID) grid = (FF_MAX_GRID / sms) * sms;
  if (grid < 1) return -1;  // cannot keep a grid resident: the plain ops run instead
  a.n_tile = (a.n_embd + FF_COLS - 1) / FF_COLS;
  a.n_slice = grid / a.n_tile > 0 ? grid / a.n_tile : 1;
  if (a.n_tile > grid) return -1;
  a.prefetch = g_ff_prefetch;
  if ((a.n_ff + grid - 1) / grid > FF_MAX_LOCAL) return -1;
  a.sel_ids = (int*)ts_scratch(6, (size_t)(2 * a.n_ff + FF_MAX_GRID) * sizeof(int));
  a.part = (float*)ts_scratch(7, (size_t)a.n_slice * a.n_embd * sizeof(float));
  if (!a.sel_ids || !a.part) return (int)cudaErrorMemoryAllocation;
  a.loc_act = reinterpret_cast<float*>(a.sel_ids + a.n_ff);
  a.sel_cnt = a.sel_ids + 2 * a.n_ff;
  ts_launch(ffn_sparse_kernel<T, CPL>, grid, FF_THREADS, a);
  return ts_launch_status();
}

template <int T>
static int ffn_sparse(FfnArgs a) {
  const bool aligned = (((uintptr_t)a.x | (uintptr_t)a.xn | (uintptr_t)a.norm_w |
                         (uintptr_t)a.hidden | (uintptr_t)a.fc1 | (uintptr_t)a.fc2 |
                         (uintptr_t)a.gate | (uintptr_t)a.up | (uintptr_t)a.down_t) & 15) == 0;
  if (!aligned || a.n_embd % 8 != 0 || a.n_embd <= 0 || a.n_embd > FF_MAX_EMBD ||
      a.rank % 8 != 0 || a.rank <= 0 || a.n_ff <= 0 || ts_sm_count() <= 0) {
    return -1;
  }
  const int cpl = (a.rank / 8 + 31) / 32;
  if (cpl > FF_MAX_CPL) return -1;
  switch (cpl) {
    case 1: return ffn_launch<T, 1>(a);
    case 2: return ffn_launch<T, 2>(a);
    case 3: return ffn_launch<T, 3>(a);
    case 4: return ffn_launch<T, 4>(a);
  }
  return -1;
}

// The whole sparse FFN of one token (see the header). 0 when queued, -1 when these shapes,
// types or alignments have no fused kernel (nothing was launched: run the plain ops).
#define TS_FFN(name, T)                                                                        \
  TS_EXPORT int ts_ffn_sparse_##name(                                                          \
      const float* x, const float* norm_w, float eps, float* xn, const uint8_t* fc1, int rank,  \
      float* hidden, const uint8_t* fc2, int n_ff, float* score, float thr, int* idx,          \
      const uint8_t* gate, const uint8_t* up, float* act, int kind, const uint8_t* down_t,      \
      int n_embd, float* out, float* res_out, const float* res_a) {                            \
    FfnArgs a = {};                                                                            \
    a.x = x, a.norm_w = norm_w, a.eps = eps, a.xn = xn, a.fc1 = fc1, a.hidden = hidden;        \
    a.fc2 = fc2, a.score = score, a.thr = thr, a.idx = idx, a.gate = gate, a.up = up;          \
    a.act = act, a.kind = kind, a.down_t = down_t, a.out = out, a.res_out = res_out;           \
    a.res_a = res_a, a.rank = rank, a.n_ff = n_ff, a.n_embd = n_embd;                          \
    return ffn_sparse<T>(a);                                                                   \
  }

TS_FFN(f16, TS_F16)
TS_FFN(bf16, TS_BF16)
