/*
 * attention_avx2.c: ts_attention_f32_avx2, the AVX2+FMA causal GQA attention of libts_x86
 * (ops.c calls it when head_dim % 8 == 0; its plain twin is attn_one in ops.c).
 * One task is a tile: the query heads of one KV head times up to TILE_ROWS / group tokens, so
 * each K and V row is loaded once for all rows of the tile. Two passes over materialised
 * scores (exact max, then exp by a polynomial of ~2 ulp), sums in a fixed order: results
 * depend on the sizes only, never on the thread count.
 * Build: plugins/_native/build.ts; bench: bench/attention.ts (before/after against the twin).
 */
#include "ts.h"

#if defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#define TILE_ROWS 32 /* query rows (heads x tokens) a tile aims for */
#define KEY_BLOCK 64 /* keys per pass over a tile's rows, packed (16 KB at head_dim 64) */

typedef struct {
  float *out;
  const float *q, *k, *v;
  int ntok, pos0, nhead, nkv, hd, group, tq, ntiles;
  float scale;
  int64_t next; /* next tile to claim: kv head * ntiles + token tile */
} attn_job;

static inline float hsum8(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* exp(x) for x <= 0 (Cephes expf polynomial); x < -87 (and -inf) gives exactly 0. */
static inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.0f);
  __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
  x = _mm256_max_ps(x, lo);
  __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), keep);
}

/* Lanes i of the result: the sum of the 8 lanes of v[i]. */
static inline __m256 hsum8x8(__m256 v0, __m256 v1, __m256 v2, __m256 v3, __m256 v4, __m256 v5,
                             __m256 v6, __m256 v7) {
  __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
  __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(v4, v5), _mm256_hadd_ps(v6, v7));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* s[r * sstride + p] = scale * q_r . k_p for rows 0 and 1, keys [p0, p1) four at a time. */
static int scores2x4(float *s, size_t sstride, const float *q, const float *k, size_t kstride,
                     int hd, int p0, int p1, float scale) {
  int p = p0;
  for (; p + 4 <= p1; p += 4) {
    const float *kp = k + (size_t)p * kstride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int d = 0; d < hd; d += 8) {
      __m256 q0 = _mm256_loadu_ps(q + d), q1 = _mm256_loadu_ps(q + hd + d);
      __m256 k0 = _mm256_loadu_ps(kp + d), k1 = _mm256_loadu_ps(kp + kstride + d);
      __m256 k2 = _mm256_loadu_ps(kp + 2 * kstride + d), k3 = _mm256_loadu_ps(kp + 3 * kstride + d);
      a0 = _mm256_fmadd_ps(q0, k0, a0);
      a1 = _mm256_fmadd_ps(q0, k1, a1);
      a2 = _mm256_fmadd_ps(q0, k2, a2);
      a3 = _mm256_fmadd_ps(q0, k3, a3);
      b0 = _mm256_fmadd_ps(q1, k0, b0);
      b1 = _mm256_fmadd_ps(q1, k1, b1);
      b2 = _mm256_fmadd_ps(q1, k2, b2);
      b3 = _mm256_fmadd_ps(q1, k3, b3);
    }
    __m256 r = _mm256_mul_ps(hsum8x8(a0, a1, a2, a3, b0, b1, b2, b3), _mm256_set1_ps(scale));
    _mm_storeu_ps(s + p, _mm256_castps256_ps128(r));
    _mm_storeu_ps(s + sstride + p, _mm256_extractf128_ps(r, 1));
  }
  return p; /* first key left for scores1 */
}

static void scores1(float *s, const float *q, const float *k, size_t kstride, int hd, int p0,
                    int p1, float scale) {
  for (int p = p0; p < p1; p++) {
    const float *kp = k + (size_t)p * kstride;
    __m256 a = _mm256_setzero_ps();
    for (int d = 0; d < hd; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kp + d), a);
    s[p] = hsum8(a) * scale;
  }
}

/* acc rows (nr of 1 or 2) += sum over keys [p0, p1) of w_r[p] * v_p, columns [c, c + 8 * nv). */
static inline __attribute__((always_inline)) void pv(float *acc, int hd, const float *w,
                                                     size_t wstride, int nr, const float *v,
                                                     size_t vstride, int c, int nv, int p0, int p1) {
  __m256 a0[4], a1[4];
  for (int i = 0; i < nv; i++) {
    a0[i] = _mm256_loadu_ps(acc + c + 8 * i);
    a1[i] = nr > 1 ? _mm256_loadu_ps(acc + hd + c + 8 * i) : a0[i];
  }
  for (int p = p0; p < p1; p++) {
    const float *vp = v + (size_t)p * vstride + c;
    __m256 w0 = _mm256_broadcast_ss(w + p);
    __m256 w1 = nr > 1 ? _mm256_broadcast_ss(w + wstride + p) : w0;
    for (int i = 0; i < nv; i++) {
      __m256 x = _mm256_loadu_ps(vp + 8 * i);
      a0[i] = _mm256_fmadd_ps(w0, x, a0[i]);
      if (nr > 1) a1[i] = _mm256_fmadd_ps(w1, x, a1[i]);
    }
  }
  for (int i = 0; i < nv; i++) {
    _mm256_storeu_ps(acc + c + 8 * i, a0[i]);
    if (nr > 1) _mm256_storeu_ps(acc + hd + c + 8 * i, a1[i]);
  }
}

static void pv_rows(float *acc, int hd, const float *w, size_t wstride, int nr, const float *v,
                    size_t vstride, int p0, int p1) {
  int c = 0;
  for (; c + 32 <= hd; c += 32) {
    if (nr > 1) pv(acc, hd, w, wstride, 2, v, vstride, c, 4, p0, p1);
    else pv(acc, hd, w, wstride, 1, v, vstride, c, 4, p0, p1);
  }
  for (; c < hd; c += 8) {
    if (nr > 1) pv(acc, hd, w, wstride, 2, v, vstride, c, 1, p0, p1);
    else pv(acc, hd, w, wstride, 1, v, vstride, c, 1, p0, p1);
  }
}

/* n rows of one KV head made contiguous: in the cache they sit nkv * hd apart, which maps
 * them onto a quarter of the L1 sets (TinyLlama: 1 KB apart); packed, the loops ran 1.6x faster. */
static void pack_rows(float *dst, const float *src, size_t stride, int hd, int n) {
  for (int p = 0; p < n; p++) memcpy(dst + (size_t)p * hd, src + (size_t)p * stride, (size_t)hd * 4);
}

/* One tile: kv head g, tokens [t0, t1). Rows r = (t - t0) * group + head within the group. */
static void attn_tile(const attn_job *j, int g, int t0, int t1, float *qloc, float *s,
                      float *acc, float *blk) {
  int hd = j->hd, G = j->group, nr = (t1 - t0) * G;
  int np = j->pos0 + t1; /* keys 0 .. np - 1 */
  size_t ss = ((size_t)np + 7) & ~(size_t)7, kvs = (size_t)j->nkv * hd;
  const float *k = j->k + (size_t)g * hd, *v = j->v + (size_t)g * hd;
  for (int t = t0; t < t1; t++) /* copied: out may alias q */
    memcpy(qloc + (size_t)(t - t0) * G * hd, j->q + ((size_t)t * j->nhead + (size_t)g * G) * hd,
           (size_t)G * hd * 4);
  for (int p0 = 0; p0 < np; p0 += KEY_BLOCK) {
    int p1 = p0 + KEY_BLOCK < np ? p0 + KEY_BLOCK : np;
    int n = p1 - p0;
    pack_rows(blk, k + (size_t)p0 * kvs, kvs, hd, n);
    int r = 0;
    for (; r + 2 <= nr; r += 2) {
      const float *qr = qloc + (size_t)r * hd;
      float *sr = s + r * ss + p0;
      int p = scores2x4(sr, ss, qr, blk, hd, hd, 0, n, j->scale);
      scores1(sr, qr, blk, hd, hd, p, n, j->scale);
      scores1(sr + ss, qr + hd, blk, hd, hd, p, n, j->scale);
    }
    for (; r < nr; r++) scores1(s + r * ss + p0, qloc + (size_t)r * hd, blk, hd, hd, 0, n, j->scale);
  }
  for (int r = 0; r < nr; r++) {
    float *sr = s + r * ss;
    int n = j->pos0 + t0 + r / G + 1; /* causal: keys 0 .. pos0 + t */
    for (size_t p = n; p < ss; p++) sr[p] = -INFINITY;
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (size_t p = 0; p < ss; p += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(sr + p));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    __m256 mx = _mm256_broadcastss_ps(m4);
    __m256d sum = _mm256_setzero_pd();
    for (size_t p = 0; p < ss; p += 8) {
      __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sr + p), mx));
      _mm256_storeu_ps(sr + p, e);
      sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
      sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(sum), _mm256_extractf128_pd(sum, 1));
    double tot = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
    float inv = (float)(1.0 / tot);
    for (size_t p = 0; p < (size_t)n; p++) sr[p] *= inv;
  }
  memset(acc, 0, (size_t)nr * hd * 4);
  for (int p0 = 0; p0 < np; p0 += KEY_BLOCK) {
    int pe = p0 + KEY_BLOCK < np ? p0 + KEY_BLOCK : np;
    pack_rows(blk, v + (size_t)p0 * kvs, kvs, hd, pe - p0);
    for (int r = 0; r < nr; r += 2) {
      int rows = r + 1 < nr ? 2 : 1;
      int last = j->pos0 + t0 + (r + rows - 1) / G + 1; /* keys the later row sees */
      int p1 = p0 + KEY_BLOCK < last ? p0 + KEY_BLOCK : last;
      if (p1 > p0) pv_rows(acc + (size_t)r * hd, hd, s + r * ss + p0, ss, rows, blk, hd, 0, p1 - p0);
    }
  }
  for (int t = t0; t < t1; t++)
    memcpy(j->out + ((size_t)t * j->nhead + (size_t)g * G) * hd, acc + (size_t)(t - t0) * G * hd,
           (size_t)G * hd * 4);
}

static void attn_task(void *ctx, int ith, int nth) {
  (void)ith;
  (void)nth;
  attn_job *j = ctx;
  size_t rows = (size_t)j->tq * j->group, ss = ((size_t)j->pos0 + j->ntok + 7) & ~(size_t)7;
  float *scratch = malloc((rows * (2 * (size_t)j->hd + ss) + KEY_BLOCK * (size_t)j->hd) * sizeof(float));
  if (!scratch) return; /* out keeps its old values; as in ops.c */
  int64_t total = (int64_t)j->nkv * j->ntiles;
  for (;;) {
    int64_t i = ts_claim(&j->next, 1);
    if (i >= total) break;
    int g = (int)(i / j->ntiles), t0 = (int)(i % j->ntiles) * j->tq;
    int t1 = t0 + j->tq < j->ntok ? t0 + j->tq : j->ntok;
    float *s = scratch + rows * j->hd, *acc = s + rows * ss;
    attn_tile(j, g, t0, t1, scratch, s, acc, acc + rows * j->hd);
  }
  free(scratch);
}

/* Same contract as ts_attention_f32 (ntok, nhead, hd > 0; hd % 8 == 0; nhead % nkv == 0). */
void ts_attention_f32_avx2(float *out, const float *q, const float *k, const float *v, int ntok,
                           int pos0, int nhead, int nkv, int hd, float scale) {
  int group = nhead / nkv;
  int tq = TILE_ROWS / group > 1 ? TILE_ROWS / group : 1;
  if (tq > ntok) tq = ntok;
  attn_job j = {out, q, k, v, ntok, pos0, nhead, nkv, hd, group, tq, (ntok + tq - 1) / tq, scale, 0};
  ts_parallel(attn_task, &j);
}

#endif
