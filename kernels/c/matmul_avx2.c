/*
 * matmul_avx2.c: AVX2 + FMA + F16C matmul kernels for libts_x86.
 *   F32, F16 (vcvtph2ps), BF16 (shift into the high half): f32 FMA, 4 x 8-lane sums per row.
 *   Q8_0, Q4_0: x is quantised once per call to Q8 blocks; int8 dot products with
 *   vpmaddubsw/vpmaddwd, one f32 FMA per block. Q4_0 nibbles stay unsigned 0..15 and the
 *   -8 offset is subtracted as a per-block 16-bit correction prepared with x.
 * Every row kernel handles 1 or 2 tokens with the same per-token sum order, so a row gives
 * the same bits in decode and in prefill. Compiled with -mavx2 -mfma -mf16c; called only
 * when ts_cpu_features() reports all three (dispatch_x86.c).
 * Build: plugins/_native/build.ts; bench: bench/matvec.ts.
 */
#include "ts.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

AI float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

AI __m256 load8(const uint8_t *w, int type) {
  switch (type) {
  case TS_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
  case TS_BF16:
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)w)), 16));
  default: return _mm256_loadu_ps((const float *)w);
  }
}

AI float load1(const uint8_t *w, int type) {
  switch (type) {
  case TS_F16: return _cvtsh_ss(ts_load_u16(w));
  case TS_BF16: return ts_bf16_to_f32(ts_load_u16(w));
  default: {
    float f;
    memcpy(&f, w, 4);
    return f;
  }
  }
}

/* One weight row against nt (1 or 2) tokens; 32 columns per step in 4 accumulators. */
AI void row_float(float *out, int ostride, const uint8_t *w, const float *x, size_t xs, int cols,
                  int type, int nt) {
  const int es = type == TS_F32 ? 4 : 2;
  __m256 acc[2][4];
  for (int t = 0; t < nt; t++)
    for (int a = 0; a < 4; a++) acc[t][a] = _mm256_setzero_ps();
  int c = 0;
  for (; c + 32 <= cols; c += 32) {
    for (int a = 0; a < 4; a++) {
      __m256 wv = load8(w + (size_t)(c + 8 * a) * es, type);
      for (int t = 0; t < nt; t++)
        acc[t][a] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * xs + c + 8 * a), acc[t][a]);
    }
  }
  for (int t = 0; t < nt; t++) {
    __m256 s = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3]));
    float r = hsum256(s);
    for (int i = c; i < cols; i++) r += load1(w + (size_t)i * es, type) * x[t * xs + i];
    out[(size_t)t * ostride] = r;
  }
}

AI void rows_float(float *out, int ostride, const uint8_t *w, size_t wrow, const void *xq,
                   size_t xstride, int r0, int r1, int ntok, int cols, int type) {
  const float *x = xq;
  size_t xs = xstride / 4;
  for (int r = r0; r < r1; r++) {
    const uint8_t *wr = w + (size_t)r * wrow;
    int t = 0;
    for (; t + 2 <= ntok; t += 2) row_float(out + (size_t)t * ostride + r, ostride, wr, x + t * xs, xs, cols, type, 2);
    if (t < ntok) row_float(out + (size_t)t * ostride + r, ostride, wr, x + t * xs, xs, cols, type, 1);
  }
}

static void rows_f32(float *o, int os, const uint8_t *w, size_t wr, const void *x, size_t xs,
                     int r0, int r1, int nt, int cols) { rows_float(o, os, w, wr, x, xs, r0, r1, nt, cols, TS_F32); }
static void rows_f16(float *o, int os, const uint8_t *w, size_t wr, const void *x, size_t xs,
                     int r0, int r1, int nt, int cols) { rows_float(o, os, w, wr, x, xs, r0, r1, nt, cols, TS_F16); }
static void rows_bf16(float *o, int os, const uint8_t *w, size_t wr, const void *x, size_t xs,
                      int r0, int r1, int nt, int cols) { rows_float(o, os, w, wr, x, xs, r0, r1, nt, cols, TS_BF16); }

const ts_mm_kernel ts_mm_avx2_f32 = {NULL, NULL, rows_f32};
const ts_mm_kernel ts_mm_avx2_f16 = {NULL, NULL, rows_f16};
const ts_mm_kernel ts_mm_avx2_bf16 = {NULL, NULL, rows_bf16};

/*
 * Prepared x of one token, nb = cols / 32 blocks:
 *   int8 qs[nb][32] | int16 corr[nb][16] (8 * pairwise sums of qs, Q4_0 only) | float d[nb]
 */
static size_t xbytes_q8(int cols) { return (size_t)(cols / TS_QK) * (32 + 4); }
static size_t xbytes_q4(int cols) { return (size_t)(cols / TS_QK) * (32 + 32 + 4); }

AI void quantise(int8_t *qs, float *d, const float *x, int nb) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < nb; b++) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      v[i] = _mm256_loadu_ps(x + b * 32 + 8 * i);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h), db = amax / 127.0f;
    __m256 id = _mm256_set1_ps(db != 0.0f ? 127.0f / amax : 0.0f);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], id));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], id));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], id));
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(qs + b * 32), i0);
    d[b] = db;
  }
}

static void prep_q8(void *xq, const float *x, int cols) {
  int nb = cols / TS_QK;
  quantise(xq, (float *)((uint8_t *)xq + (size_t)nb * 32), x, nb);
}

static void prep_q4(void *xq, const float *x, int cols) {
  int nb = cols / TS_QK;
  int8_t *qs = xq;
  int16_t *corr = (int16_t *)(qs + (size_t)nb * 32);
  quantise(qs, (float *)(corr + (size_t)nb * 16), x, nb);
  const __m256i eight = _mm256_set1_epi8(8);
  for (int b = 0; b < nb; b++) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + b * 32));
    _mm256_storeu_si256((__m256i *)(corr + b * 16), _mm256_maddubs_epi16(eight, q));
  }
}

/* Q8_0 block b against nt tokens: the int8 dot in 8 i32 lanes, then one FMA per token. */
AI void block_q8(__m256 *acc, const uint8_t *w, const uint8_t *xq, size_t xs, int nb, int b, int nt) {
  const __m256i ones = _mm256_set1_epi16(1);
  const uint8_t *p = w + (size_t)b * TS_Q8_BYTES;
  __m256i qw = _mm256_loadu_si256((const __m256i *)(p + 2));
  __m256i aw = _mm256_sign_epi8(qw, qw);
  float dw = _cvtsh_ss(ts_load_u16(p));
  for (int t = 0; t < nt; t++) {
    const uint8_t *xt = xq + t * xs;
    __m256i qx = _mm256_loadu_si256((const __m256i *)(xt + (size_t)b * 32));
    __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(qx, qw));
    __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
    float dx = ((const float *)(xt + (size_t)nb * 32))[b];
    acc[t] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw * dx), acc[t]);
  }
}

/* Q4_0 block b: nibbles 0..15 times int8 x, minus the prepared 8·Σx correction. */
AI void block_q4(__m256 *acc, const uint8_t *w, const uint8_t *xq, size_t xs, int nb, int b, int nt) {
  const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
  const uint8_t *p = w + (size_t)b * TS_Q4_BYTES;
  __m128i raw = _mm_loadu_si128((const __m128i *)(p + 2));
  __m256i qw = _mm256_and_si256(
      _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1), low);
  float dw = _cvtsh_ss(ts_load_u16(p));
  for (int t = 0; t < nt; t++) {
    const uint8_t *xt = xq + t * xs;
    __m256i qx = _mm256_loadu_si256((const __m256i *)(xt + (size_t)b * 32));
    __m256i corr = _mm256_loadu_si256((const __m256i *)(xt + (size_t)nb * 32 + (size_t)b * 32));
    __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(qw, qx), corr);
    __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
    float dx = ((const float *)(xt + (size_t)nb * 64))[b];
    acc[t] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw * dx), acc[t]);
  }
}

/* One quantised row against nt (1 or 2) tokens; even and odd blocks in separate sums. */
AI void row_q(float *out, int ostride, const uint8_t *w, const uint8_t *xq, size_t xs, int nb,
              int nt, int q4) {
  __m256 a0[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 a1[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  int b = 0;
  for (; b + 2 <= nb; b += 2) {
    if (q4) {
      block_q4(a0, w, xq, xs, nb, b, nt);
      block_q4(a1, w, xq, xs, nb, b + 1, nt);
    } else {
      block_q8(a0, w, xq, xs, nb, b, nt);
      block_q8(a1, w, xq, xs, nb, b + 1, nt);
    }
  }
  if (b < nb) {
    if (q4) block_q4(a0, w, xq, xs, nb, b, nt);
    else block_q8(a0, w, xq, xs, nb, b, nt);
  }
  for (int t = 0; t < nt; t++) out[(size_t)t * ostride] = hsum256(_mm256_add_ps(a0[t], a1[t]));
}

AI void row_q8(float *out, int os, const uint8_t *w, const uint8_t *xq, size_t xs, int nb, int nt) {
  row_q(out, os, w, xq, xs, nb, nt, 0);
}
AI void row_q4(float *out, int os, const uint8_t *w, const uint8_t *xq, size_t xs, int nb, int nt) {
  row_q(out, os, w, xq, xs, nb, nt, 1);
}

#define TS_ROWS_Q(NAME, ROW)                                                                      \
  static void NAME(float *out, int ostride, const uint8_t *w, size_t wrow, const void *xq,        \
                   size_t xstride, int r0, int r1, int ntok, int cols) {                          \
    const uint8_t *x = xq;                                                                        \
    for (int r = r0; r < r1; r++) {                                                               \
      const uint8_t *wr = w + (size_t)r * wrow;                                                   \
      int t = 0;                                                                                  \
      for (; t + 2 <= ntok; t += 2)                                                               \
        ROW(out + (size_t)t * ostride + r, ostride, wr, x + t * xstride, xstride, cols / TS_QK, 2); \
      if (t < ntok) ROW(out + (size_t)t * ostride + r, ostride, wr, x + t * xstride, xstride, cols / TS_QK, 1); \
    }                                                                                             \
  }

TS_ROWS_Q(rows_q8_0, row_q8)
TS_ROWS_Q(rows_q4_0, row_q4)

const ts_mm_kernel ts_mm_avx2_q8_0 = {xbytes_q8, prep_q8, rows_q8_0};
const ts_mm_kernel ts_mm_avx2_q4_0 = {xbytes_q4, prep_q4, rows_q4_0};
