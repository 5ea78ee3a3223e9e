// Causal grouped-query attention over an f32 KV cache [n_ctx, n_kv, head_dim].
//
// One block of 4 warps per (head, token, split): the positions 0 .. pos0 + t are cut into
// splits (flash-decoding, so a single decode token still fills the GPU); each warp keeps an
// online softmax (running max, sum, weighted V) over its positions, four positions in flight;
// warps merge in shared memory, splits in a second small kernel. head_dim ≤ 256.
//
// One decode token (attn_decode_kernel): one block per (KV head, split) computes all the query
// heads of its group, so each K/V row is read once, not once per query head (8 warps for groups
// of up to 512 dims in all, else 4: dk_warps); each lane holds head_dim / 32 contiguous dims
// and loads the K and V rows of POS positions before it needs them (2 · POS loads in flight),
// which is what a decode step's latency depends on. In a
// captured step it also applies the rope to q and the step's K row and stores the K and V rows
// into the cache (ts_attention_f32 with k_new), which saves a launch per layer.
//
// When a KV head has at most 8 decode splits (a context of up to 256 positions; splits hold at
// least 32), they are one thread-block cluster: every block merges a share of the outputs over
// all splits through distributed shared memory, so there is no merge launch.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (as part of a decode step).
#include <cooperative_groups.h>
#include <math.h>

#include "ts_cuda.h"

namespace cg = cooperative_groups;

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
      part[(o * n_split) + (size_t)s * head_dim + d] = a;  // [t, h, split, d]
    }
  }
  if (n_split > 1 && threadIdx.x == 0) {
    float* ml = part + (size_t)gridDim.y * n_head * head_dim * n_split;  // [t, h, split, 2]
    const size_t base = (((size_t)t * n_head + h) * n_split + s) * 2;
    ml[base] = mx, ml[base + 1] = L;
  }
}

constexpr int MERGE_THREADS = 128, MERGE_MAX_SPLIT = 1024;

// out[t, h] = Σ_s part[t, h, s] · e^(m_s - M) / Σ_s l_s · e^(m_s - M): one block per (head,
// token); the split weights are computed once into shared memory, then each thread sums its
// dims over the splits (coalesced rows of part, loads independent across splits).
__global__ void __launch_bounds__(MERGE_THREADS)
attn_merge(float* out, const float* part, int n_tok, int n_head, int head_dim, int n_split) {
  pdl_start();
  __shared__ float wt[MERGE_MAX_SPLIT], red[MERGE_THREADS / 32];
  const int h = blockIdx.x, t = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* ml = part + (size_t)n_tok * n_head * head_dim * n_split +
                    ((size_t)t * n_head + h) * n_split * 2;
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < n_split; s += MERGE_THREADS) mx = fmaxf(mx, ml[2 * s]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0) red[warp] = mx;
  __syncthreads();
  mx = red[0];
#pragma unroll
  for (int k = 1; k < MERGE_THREADS / 32; k++) mx = fmaxf(mx, red[k]);
  __syncthreads();  // red is reused below
  float L = 0.f;
  for (int s = threadIdx.x; s < n_split; s += MERGE_THREADS) {
    const float m = ml[2 * s], w = m == -INFINITY ? 0.f : expf(m - mx);
    wt[s] = w;
    L += ml[2 * s + 1] * w;
  }
  L = warp_sum(L);
  if (lane == 0) red[warp] = L;
  __syncthreads();  // wt and red are complete
  L = 0.f;
#pragma unroll
  for (int k = 0; k < MERGE_THREADS / 32; k++) L += red[k];
  const size_t o = ((size_t)t * n_head + h) * head_dim;
  const float* pp = part + o * n_split;  // [split, head_dim]
  for (int d = threadIdx.x; d < head_dim; d += MERGE_THREADS) {
    float a = 0.f;
#pragma unroll 8
    for (int s = 0; s < n_split; s++) a += pp[(size_t)s * head_dim + d] * wt[s];
    out[o + d] = a / L;
  }
}

// VEC contiguous floats at p (p 4·VEC-byte aligned).
template <int VEC>
__device__ __forceinline__ void load_vec(float* r, const float* p) {
  if constexpr (VEC == 1) {
    r[0] = *p;
  } else if constexpr (VEC == 2) {
    const float2 a = *reinterpret_cast<const float2*>(p);
    r[0] = a.x, r[1] = a.y;
  } else {
#pragma unroll
    for (int i = 0; i < VEC; i += 4) {
      const float4 a = *reinterpret_cast<const float4*>(p + i);
      r[i] = a.x, r[i + 1] = a.y, r[i + 2] = a.z, r[i + 3] = a.w;
    }
  }
}

// Warps per decode block: 8 where their partial sums fit 16 KB of shared memory (G · head_dim
// ≤ 512, Mistral's 4 × 128), else 4. A split is at most ~32 positions at short contexts, and a
// warp's scores, softmax and sums are one dependent chain, so more warps with fewer positions
// each shorten the kernel.
template <int G, int VEC>
__host__ __device__ constexpr int dk_warps() {
  return G * 32 * VEC <= 512 ? 8 : 4;
}

// Decode (one token at pos0): block (kv head, 1, split); G query heads per KV head, head_dim
// = 32 · VEC. Splits and the merge as attn_kernel's (same `part` layout).
//
// With `rope` (a captured step, VEC ≥ 2): q and the step's own K row arrive unrotated, as the
// Q/K/V matvec wrote them (rope.k, rope.v: this token's rows). Each lane rotates its pairs of
// dims itself, with the angles of ops.cu's rope (double precision, computed before the PDL
// wait: the position is written before the graph runs, by no kernel), and the block whose
// split holds the step's position writes the rotated K row and the V row into the cache: the
// rope and KV-store launch goes away.
struct RopeIn {
  const float* k;  // [n_kv, head_dim] this token's k, unrotated (null: q and the cache are ready)
  const float* v;  // [n_kv, head_dim] this token's v
  int dim;         // dims rotated (pairs 2i, 2i+1 for 2i < dim)
  double base;
  const double2* table;  // [n_ctx, dim / 2] {sin, cos} of rope_angle (rope_table), or null
};

// CL: the splits of a KV head are one thread-block cluster and merge there; else they go to
// `part` for attn_merge (or to `out` when there is one split).
template <int G, int VEC, bool CL>
__global__ void __launch_bounds__(dk_warps<G, VEC>() * 32)
attn_decode_kernel(float* out, float* part, const float* q, float* k, float* v, int pos0,
                   int n_kv, float scale, int chunk, const int* dpos, RopeIn rope) {
  constexpr int NP = VEC / 2;  // pairs of dims per lane
  double rc[NP > 0 ? NP : 1], rs[NP > 0 ? NP : 1];
  const bool roped = VEC >= 2 && rope.k != nullptr;
  if (roped) {
    const int p = *dpos;
#pragma unroll
    for (int e = 0; e < NP; e++) {
      const int i = ((threadIdx.x & 31) * VEC) / 2 + e;
      rc[e] = 1.0, rs[e] = 0.0;
      if (2 * i >= rope.dim) continue;
      if (rope.table) {  // the same values, looked up (the math costs ~2 µs per launch)
        const double2 a = rope.table[(size_t)p * (rope.dim / 2) + i];
        rs[e] = a.x, rc[e] = a.y;
      } else {
        rope_angle(p, i, rope.dim, rope.base, rs[e], rc[e]);
      }
    }
  }
  // Rotate this lane's pairs of dims (those below rope.dim), as ops.cu's rope does.
  auto rotate = [&](float* x) {
#pragma unroll
    for (int e = 0; e < NP; e++) {
      if ((((threadIdx.x & 31) * VEC) / 2 + e) * 2 >= rope.dim) continue;
      rope_rotate(x[2 * e], x[2 * e + 1], rs[e], rc[e]);
    }
  };
  // When the next launch is the O matvec (clustered or unsplit), whose blocks load their first
  // rows early, it is let in only after this block's K/V loads, which would otherwise queue
  // behind those rows in DRAM (H200: +2–3% sparse decode, BENCHMARKS.md).
  const bool late = CL || gridDim.z == 1;
  pdl_start(!late);
  // POS positions per warp step: 2 · POS · VEC loads in flight, POS · G scores in registers;
  // a block step covers 4 · P4 positions with either warp count
  constexpr int DK_WARPS = dk_warps<G, VEC>();
  constexpr int P4 = 32 / VEC < 64 / G ? 32 / VEC : (64 / G > 4 ? 64 / G : 4);
  constexpr int HD = 32 * VEC, POS = P4 * 4 / DK_WARPS;
  __shared__ float sm_m[DK_WARPS][G], sm_l[DK_WARPS][G], sm_acc[DK_WARPS][G][HD];
  const int kvh = blockIdx.x, s = blockIdx.z, n_split = gridDim.z, n_head = n_kv * G;
  if (dpos) {  // a captured step: the split length follows the position read on the device
    pos0 = *dpos;
    chunk = (pos0 + n_split) / n_split;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int p0 = s * chunk, p1 = min(pos0 + 1, p0 + chunk);
  const size_t row = (size_t)n_kv * HD;
  const float* kb = k + (size_t)kvh * HD + lane * VEC;
  const float* vb = v + (size_t)kvh * HD + lane * VEC;
  float qv[G][VEC], acc[G][VEC], m[G], l[G];
#pragma unroll
  for (int g = 0; g < G; g++) {
    load_vec<VEC>(qv[g], q + (size_t)(kvh * G + g) * HD + lane * VEC);
    if (roped) rotate(qv[g]);
#pragma unroll
    for (int i = 0; i < VEC; i++) qv[g][i] *= scale, acc[g][i] = 0.f;
    m[g] = -INFINITY, l[g] = 0.f;
  }
  for (int pb = p0 + warp * POS; pb < p1; pb += DK_WARPS * POS) {
    float kr[POS][VEC], vr[POS][VEC];
#pragma unroll
    for (int u = 0; u < POS; u++) {
      if (roped && pb + u == pos0) {  // this step's row: rotate it, and store both rows
        const size_t o = (size_t)kvh * HD + lane * VEC;
        load_vec<VEC>(kr[u], rope.k + o);
        load_vec<VEC>(vr[u], rope.v + o);
        rotate(kr[u]);
#pragma unroll
        for (int i = 0; i < VEC; i++) {
          k[(size_t)pos0 * row + o + i] = kr[u][i], v[(size_t)pos0 * row + o + i] = vr[u][i];
        }
      } else if (pb + u < p1) {
        load_vec<VEC>(kr[u], kb + (size_t)(pb + u) * row);
        load_vec<VEC>(vr[u], vb + (size_t)(pb + u) * row);
      } else {
#pragma unroll
        for (int i = 0; i < VEC; i++) kr[u][i] = 0.f, vr[u][i] = 0.f;
      }
    }
    // every position's G scores at once: POS · G independent butterflies, one softmax
    // rescale per step (not per position)
    float dot[POS][G];
#pragma unroll
    for (int u = 0; u < POS; u++) {
#pragma unroll
      for (int g = 0; g < G; g++) {
        dot[u][g] = 0.f;
#pragma unroll
        for (int i = 0; i < VEC; i++) dot[u][g] += qv[g][i] * kr[u][i];
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
      for (int u = 0; u < POS; u++) {
#pragma unroll
        for (int g = 0; g < G; g++) dot[u][g] += __shfl_xor_sync(0xffffffffu, dot[u][g], o);
      }
    }
#pragma unroll
    for (int g = 0; g < G; g++) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < POS; u++) {
        if (pb + u < p1) mx = fmaxf(mx, dot[u][g]);
      }
      const float corr = expf(m[g] - mx);  // 0 on the first step (m = -inf)
      l[g] *= corr;
#pragma unroll
      for (int i = 0; i < VEC; i++) acc[g][i] *= corr;
#pragma unroll
      for (int u = 0; u < POS; u++) {
        if (pb + u >= p1) continue;
        const float e = expf(dot[u][g] - mx);
        l[g] += e;
#pragma unroll
        for (int i = 0; i < VEC; i++) acc[g][i] += e * vr[u][i];
      }
      m[g] = mx;
    }
  }
  if (late) pdl_trigger();  // K/V rows are in (see pdl_start above)
#pragma unroll
  for (int g = 0; g < G; g++) {
    if (lane == 0) sm_m[warp][g] = m[g], sm_l[warp][g] = l[g];
#pragma unroll
    for (int i = 0; i < VEC; i++) sm_acc[warp][g][lane * VEC + i] = acc[g][i];
  }
  __syncthreads();
  __shared__ float cl_m[CL ? G : 1], cl_l[CL ? G : 1], cl_acc[CL ? G : 1][CL ? HD : 1];
  for (int j = threadIdx.x; j < G * HD; j += blockDim.x) {
    const int g = j / HD, d = j % HD, h = kvh * G + g;
    float mx = -INFINITY;
    for (int w = 0; w < DK_WARPS; w++) mx = fmaxf(mx, sm_m[w][g]);
    float L = 0.f, a = 0.f;
    for (int w = 0; w < DK_WARPS; w++) {
      if (sm_m[w][g] == -INFINITY) continue;
      const float c = expf(sm_m[w][g] - mx);
      L += sm_l[w][g] * c, a += sm_acc[w][g][d] * c;
    }
    const size_t o = (size_t)h * HD;
    if constexpr (CL) {
      cl_acc[g][d] = a;
      if (d == 0) cl_m[g] = mx, cl_l[g] = L;
    } else if (n_split == 1) {
      out[o + d] = a / L;
    } else {
      part[o * n_split + (size_t)s * HD + d] = a;  // [t = 0, h, split, d]
      if (d == 0) {
        float* ml = part + (size_t)n_head * HD * n_split;  // [t = 0, h, split, 2]
        ml[((size_t)h * n_split + s) * 2] = mx, ml[((size_t)h * n_split + s) * 2 + 1] = L;
      }
    }
  }
  if constexpr (CL) {
    // The splits of a KV head are one cluster: each block merges a share of the G · HD
    // outputs over every split, reading the others' shared memory, as attn_merge does.
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();
    const int n = (int)cluster.num_blocks(), rank = (int)cluster.block_rank();
    for (int j = rank * blockDim.x + threadIdx.x; j < G * HD; j += n * blockDim.x) {
      const int g = j / HD, d = j % HD;
      float mx = -INFINITY;
      for (int r = 0; r < n; r++) mx = fmaxf(mx, *cluster.map_shared_rank(&cl_m[g], r));
      float L = 0.f, a = 0.f;
      for (int r = 0; r < n; r++) {
        const float m_r = *cluster.map_shared_rank(&cl_m[g], r);
        if (m_r == -INFINITY) continue;
        const float c = expf(m_r - mx);
        L += *cluster.map_shared_rank(&cl_l[g], r) * c;
        a += *cluster.map_shared_rank(&cl_acc[g][d], r) * c;
      }
      out[(size_t)(kvh * G + g) * HD + d] = a / L;
    }
    cluster.sync();  // the others' shared memory is read before any block exits
  }
}

// The decode kernel for G heads per KV head and head_dim; with `cluster` the splits of a KV
// head are one thread-block cluster that merges them itself (no attn_merge launch).
template <int G, int VEC>
static void launch_decode_vec(dim3 grid, bool cluster, float* out, float* part, const float* q,
                              float* k, float* v, int pos0, int n_kv, float scale, int chunk,
                              const int* dpos, RopeIn r) {
  if (cluster) {
    static bool wide = false;  // clusters of more than 8 blocks (the portable size) allowed
    if (!wide) {
      cudaFuncSetAttribute(attn_decode_kernel<G, VEC, true>,
                           cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
      wide = true;
    }
    ts_launch_cluster(attn_decode_kernel<G, VEC, true>, grid, dk_warps<G, VEC>() * 32, grid.z, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, r);
  } else {
    ts_launch(attn_decode_kernel<G, VEC, false>, grid, dk_warps<G, VEC>() * 32, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, r);
  }
}
template <int G>
static void launch_decode(dim3 grid, bool cluster, int head_dim, float* out, float* part,
                          const float* q, float* k, float* v, int pos0, int n_kv, float scale,
                          int chunk, const int* dpos, RopeIn r) {
  if (head_dim == 32) launch_decode_vec<G, 1>(grid, cluster, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, r);
  else if (head_dim == 64) launch_decode_vec<G, 2>(grid, cluster, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, r);
  else if (head_dim == 128) launch_decode_vec<G, 4>(grid, cluster, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, r);
  else launch_decode_vec<G, 8>(grid, cluster, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, r);
}

// Rope angles of positions 0 .. n-1 for (dim, base), as rope_angle computes them: [n][dim / 2]
// of {sin, cos}. The decode attention looks its position's row up instead of computing it.
__global__ void rope_table_kernel(double2* t, int n, int dim, double base) {
  pdl_start();
  const int half = dim / 2;
  for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < (size_t)n * half;
       j += (size_t)gridDim.x * blockDim.x) {
    double s, c;
    rope_angle((int)(j / half), (int)(j % half), dim, base, s, c);
    t[j] = make_double2(s, c);
  }
}

// The table of (dim, base) with at least n rows (scratch slot 7), filled on the stream when
// first needed or when the rope or the context changes; null while a graph is being captured
// and it is not there yet (the first, uncaptured run of a step makes it), or when memory runs
// out: the kernel then computes the angles. A refill bumps the scratch epoch (ts_scratch does
// when the area moves), so graphs captured before are captured again.
static const double2* rope_table(int dim, double base, int n) {
  static double2* t = nullptr;
  static int t_dim = 0, t_rows = 0;
  static double t_base = 0;
  if (t && t_dim == dim && t_base == base && t_rows >= n) return t;
  cudaStreamCaptureStatus cs;
  if (cudaStreamIsCapturing(ts_stream(), &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) {
    return nullptr;
  }
  const int rows = n < 1024 ? 1024 : n;
  t = (double2*)ts_scratch(7, (size_t)rows * (dim / 2) * sizeof(double2));
  if (!t) return nullptr;
  t_dim = dim, t_base = base, t_rows = rows;
  ts_scratch_moved();
  ts_launch(rope_table_kernel, 264, 256, t, rows, dim, base);
  return t;
}

// Decode splits of a KV head merged inside a thread-block cluster when there are at most this
// many (2–16; default 8); 0: always the attn_merge launch (ts_attention_config, bench, tests).
static int g_attn_cluster = 8;
TS_EXPORT int ts_attention_config(int cluster) {
  if (cluster < 0 || cluster == 1 || cluster > 16) return (int)cudaErrorInvalidValue;
  g_attn_cluster = cluster;
  return 0;
}

// out, q: [n_tok, n_head, head_dim]; k, v: [n_ctx, n_kv, head_dim] holding pos0 + n_tok rows.
// dpos, when set, holds pos0 on the device (a captured step) and n_ctx bounds it; the split
// count then depends on n_ctx alone.
//
// k_new set (one token of a captured step, head_dim 64, 128 or 256; else -1 and nothing is
// launched): q and k_new are not rotated yet and the cache rows at the position are not stored
// yet; the launch rotates q and k_new (dims below rope_dim, as ops.cu's rope) and stores k_new
// and v_new at the position before it attends.
TS_EXPORT int ts_attention_f32(float* out, const float* q, float* k, float* v, int n_tok, int pos0,
                               int n_head, int n_kv, int head_dim, float scale, const int* dpos,
                               int n_ctx, const float* k_new, const float* v_new, int rope_dim,
                               double rope_base) {
  if (head_dim > 32 * MAX_DPL || (k_new && !v_new)) return (int)cudaErrorInvalidValue;
  RopeIn rope{k_new, v_new, rope_dim, rope_base, nullptr};
  const int group = n_head / n_kv;
  const bool decode = n_tok == 1 && n_head % n_kv == 0 &&
                      (group == 1 || group == 2 || group == 4 || group == 8) &&
                      (head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256);
  if (rope.k && !(decode && dpos && head_dim >= 64)) return -1;  // nothing launched
  if (rope.k && rope_dim >= 2 && rope_dim % 2 == 0) rope.table = rope_table(rope_dim, rope_base, n_ctx);
  // Splits: about two blocks per multiprocessor; decode blocks are (KV head, split), at least
  // 32 positions each; others (head, token, split), at least 64 positions each.
  const int n_pos = dpos ? n_ctx : pos0 + n_tok, blocks = decode ? n_kv : n_head * n_tok;
  const int target = 2 * (ts_sm_count() > 0 ? ts_sm_count() : 132), min_pos = decode ? 32 : 64;
  int n_split = (target + blocks - 1) / blocks;
  if (n_split > (n_pos + min_pos - 1) / min_pos) n_split = (n_pos + min_pos - 1) / min_pos;
  if (n_split > MERGE_MAX_SPLIT) n_split = MERGE_MAX_SPLIT;
  if (n_split < 1) n_split = 1;
  // The same splits as one cluster, when there are at most g_attn_cluster of them.
  const bool cluster = decode && g_attn_cluster > 1 && n_split > 1 && n_split <= g_attn_cluster;
  const int chunk = (n_pos + n_split - 1) / n_split;
  float* part = nullptr;
  if (n_split > 1 && !cluster) {
    part = (float*)ts_scratch(1, (size_t)n_head * n_tok * n_split * (head_dim + 2) * sizeof(float));
    if (!part) return (int)cudaErrorMemoryAllocation;
  }
  if (decode) {
    const dim3 grid(n_kv, 1, n_split);
    if (group == 1) launch_decode<1>(grid, cluster, head_dim, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, rope);
    else if (group == 2) launch_decode<2>(grid, cluster, head_dim, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, rope);
    else if (group == 4) launch_decode<4>(grid, cluster, head_dim, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, rope);
    else launch_decode<8>(grid, cluster, head_dim, out, part, q, k, v, pos0, n_kv, scale, chunk, dpos, rope);
  } else {
    const dim3 grid(n_head, n_tok, n_split);
    const int dpl = (head_dim + 31) / 32;
    if (dpl <= 2) ts_launch(attn_kernel<2>, grid, AT_WARPS * 32, out, part, q, k, v, pos0, n_head, n_kv, head_dim, scale, chunk, dpos);
    else if (dpl <= 4) ts_launch(attn_kernel<4>, grid, AT_WARPS * 32, out, part, q, k, v, pos0, n_head, n_kv, head_dim, scale, chunk, dpos);
    else ts_launch(attn_kernel<8>, grid, AT_WARPS * 32, out, part, q, k, v, pos0, n_head, n_kv, head_dim, scale, chunk, dpos);
  }
  if (n_split > 1 && !cluster) ts_launch(attn_merge, dim3(n_head, n_tok), MERGE_THREADS, out, part, n_tok, n_head, head_dim, n_split);
  return ts_launch_status();
}
