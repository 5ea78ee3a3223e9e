/*
 * matmul_avx2.c: AVX2 + FMA + F16C matmul kernels for libts_x86.
 *   F32, F16 (vcvtph2ps), BF16 (shift into the high half): register tiles of up to 4 weight
 *   rows x 3 tokens, one 8-lane f32 sum per (row, token) in column order, so each output has
 *   the same bits in decode (4 x 1 tiles) and prefill (4 x 3 tiles, each weight load used
 *   by 3 tokens, each x load by 4 rows).
 *   Q8_0, Q4_0 in the file layout: x is quantised once per call to Q8 blocks; int8 dot
 *   products with vpmaddubsw/vpmaddwd, one f32 FMA per block. Q4_0 nibbles stay unsigned
 *   0..15 and the -8 offset is subtracted as a per-block 16-bit correction prepared with x.
 *   Weights packed at load time go to matmul_avx2_packed.c instead (ts_mm_avx2_q*_0.packed).
 * Compiled with -mavx2 -mfma -mf16c; called only when ts_cpu_features() reports all three
 * (dispatch_x86.c). Build: plugins/_native/build.ts; bench: bench/matvec.ts [--ntok 64].
 */
#include "ts.h"

#include "avx2.h"

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

/* R (1..4) weight rows against T (1..3) tokens: acc[r][t] += w[r][c..c+8] * x[t][c..c+8]. */
AI void tile_float(float *out, int ostride, const uint8_t *w, size_t wrow, const float *x,
                   size_t xs, int cols, int type, int R, int T) {
  const int es = type == TS_F32 ? 4 : 2;
  __m256 acc[4][3];
  for (int r = 0; r < R; r++)
    for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
  int c = 0;
  for (; c + 8 <= cols; c += 8) {
    __m256 xv[3];
    for (int t = 0; t < T; t++) xv[t] = _mm256_loadu_ps(x + t * xs + c);
    for (int r = 0; r < R; r++) {
      __m256 wv = load8(w + r * wrow + (size_t)c * es, type);
      for (int t = 0; t < T; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int t = 0; t < T; t++) {
      float s = hsum256(acc[r][t]);
      for (int i = c; i < cols; i++) s += load1(w + r * wrow + (size_t)i * es, type) * x[t * xs + i];
      out[(size_t)t * ostride + r] = s;
    }
}

/* Tiles of 4 rows x 3 tokens over rows [r0, r1) and ntok tokens; smaller tiles at the edges. */
AI void rows_float(float *out, int ostride, const uint8_t *w, size_t wrow, const void *xq,
                   size_t xstride, int r0, int r1, int ntok, int cols, int type) {
  const float *x = xq;
  size_t xs = xstride / 4;
  for (int r = r0; r < r1; r += 4) {
    int R = r1 - r < 4 ? r1 - r : 4;
    const uint8_t *wr = w + (size_t)r * wrow;
    for (int t = 0; t < ntok; t += 3) {
      int T = ntok - t < 3 ? ntok - t : 3;
      float *o = out + (size_t)t * ostride + r;
      const float *xt = x + (size_t)t * xs;
#define TS_TILE_CASE(RR, TT)                                                                    \
  case RR * 4 + TT: tile_float(o, ostride, wr, wrow, xt, xs, cols, type, RR, TT); break;
      switch (R * 4 + T) {
        TS_TILE_CASE(4, 1) TS_TILE_CASE(4, 2) TS_TILE_CASE(4, 3)
        TS_TILE_CASE(3, 1) TS_TILE_CASE(3, 2) TS_TILE_CASE(3, 3)
        TS_TILE_CASE(2, 1) TS_TILE_CASE(2, 2) TS_TILE_CASE(2, 3)
        TS_TILE_CASE(1, 1) TS_TILE_CASE(1, 2) TS_TILE_CASE(1, 3)
      }
#undef TS_TILE_CASE
    }
  }
}

static void rows_f32(float *o, int os, const uint8_t *w, size_t wr, const void *x, size_t xs,
                     int r0, int r1, int nt, int cols) { rows_float(o, os, w, wr, x, xs, r0, r1, nt, cols, TS_F32); }
static void rows_f16(float *o, int os, const uint8_t *w, size_t wr, const void *x, size_t xs,
                     int r0, int r1, int nt, int cols) { rows_float(o, os, w, wr, x, xs, r0, r1, nt, cols, TS_F16); }
static void rows_bf16(float *o, int os, const uint8_t *w, size_t wr, const void *x, size_t xs,
                      int r0, int r1, int nt, int cols) { rows_float(o, os, w, wr, x, xs, r0, r1, nt, cols, TS_BF16); }

/* rows_float takes any token count; the driver sizes the batch to keep x in L2. */
const ts_mm_kernel ts_mm_avx2_f32 = {NULL, NULL, rows_f32, .max_tok = TS_MAX_TOK};
const ts_mm_kernel ts_mm_avx2_f16 = {NULL, NULL, rows_f16, .max_tok = TS_MAX_TOK};
const ts_mm_kernel ts_mm_avx2_bf16 = {NULL, NULL, rows_bf16, .max_tok = TS_MAX_TOK};

/*
 * Prepared x of one token, nb = cols / 32 blocks:
 *   int8 qs[nb][32] | int16 corr[nb][16] (8 * pairwise sums of qs, Q4_0 only) | float d[nb]
 */
static size_t xbytes_q8(int cols) { return (size_t)(cols / TS_QK) * (32 + 4); }
static size_t xbytes_q4(int cols) { return (size_t)(cols / TS_QK) * (32 + 32 + 4); }

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

extern const ts_mm_kernel ts_mm_avx2_q8_0_x8, ts_mm_avx2_q4_0_x8;
const ts_mm_kernel ts_mm_avx2_q8_0 = {xbytes_q8, prep_q8, rows_q8_0, .packed = &ts_mm_avx2_q8_0_x8};
const ts_mm_kernel ts_mm_avx2_q4_0 = {xbytes_q4, prep_q4, rows_q4_0, .packed = &ts_mm_avx2_q4_0_x8};
