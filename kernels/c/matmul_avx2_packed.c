/*
 * matmul_avx2_packed.c: AVX2 Q8_0 and Q4_0 matmul over repacked weights (ts_pack_q8_0 /
 * ts_pack_q4_0, called once per weight by the backend on its first matmul).
 *   Layout "x8": rows in groups of 8 (the last group padded with zero rows); per group and
 *   block, the 8 rows' f16 scales (16 bytes), then the quants with 4 bytes of each row side
 *   by side, so one 256-bit register holds 4 bytes of 8 rows and each lane is one row:
 *     Q8_0: 8 vectors, vector v = bytes 4v..4v+3 of the 32 quants of rows 0..7  (272 B/block)
 *     Q4_0: 4 vectors, vector v = bytes 4v..4v+3 of the 16 nibble bytes of rows 0..7 (144 B)
 *   x is quantised to Q8 once per call; 4 bytes of it are broadcast against a vector, so
 *   vpmaddubsw/vpmaddwd leave per-row sums in the lanes: no horizontal sums, one FMA per
 *   block for all 8 rows, and the 8 scales are converted by one vcvtph2ps.
 *   Tiles of 8 rows x up to 4 tokens share each weight load; each (row, token) sum runs over
 *   the blocks in order, so decode and prefill give the same bits.
 * The plain twins are the Q8_0/Q4_0 kernels of matmul_scalar.c (and matmul_avx2.c for the
 * file layout). Build: plugins/_native/build.ts (-mavx2 -mfma -mf16c);
 * bench: bench/matvec.ts --types Q8_0,Q4_0 [--ntok 64], bench/decode.ts.
 */
#include "ts.h"

#include "avx2.h"

#define G 8 /* rows per group */
#define TT 4 /* tokens per tile */
#define Q8_GB (16 + G * 32) /* bytes per group and block */
#define Q4_GB (16 + G * 16)

/* ---- packing (scalar, once per weight) ---- */

static size_t pack(uint8_t *dst, const uint8_t *src, int rows, int cols, int q4) {
  size_t nb = (size_t)(cols / TS_QK), ng = (size_t)(rows + G - 1) / G;
  size_t bb = q4 ? TS_Q4_BYTES : TS_Q8_BYTES, gb = q4 ? Q4_GB : Q8_GB, nq = bb - 2;
  if (!dst) return ng * nb * gb;
  memset(dst, 0, ng * nb * gb);
  for (size_t r = 0; r < (size_t)rows; r++) {
    size_t g = r / G, k = r % G;
    for (size_t b = 0; b < nb; b++) {
      const uint8_t *s = src + (r * nb + b) * bb;
      uint8_t *p = dst + (g * nb + b) * gb;
      memcpy(p + 2 * k, s, 2);
      for (size_t v = 0; v < nq / 4; v++) memcpy(p + 16 + 32 * v + 4 * k, s + 2 + 4 * v, 4);
    }
  }
  return ng * nb * gb;
}

static size_t pack_q8(uint8_t *dst, const uint8_t *src, int rows, int cols) {
  return pack(dst, src, rows, cols, 0);
}
static size_t pack_q4(uint8_t *dst, const uint8_t *src, int rows, int cols) {
  return pack(dst, src, rows, cols, 1);
}

/* ---- x: int8 qs[nb][32] | float d[nb] | int32 s8[nb] (8 * Σ qs of the block, Q4_0 only) ---- */

static size_t xbytes_q8(int cols) { return (size_t)(cols / TS_QK) * (32 + 4); }
static size_t xbytes_q4(int cols) { return (size_t)(cols / TS_QK) * (32 + 4 + 4); }

static void prep_q8(void *xq, const float *x, int cols) {
  int nb = cols / TS_QK;
  quantise(xq, (float *)((uint8_t *)xq + (size_t)nb * 32), x, nb);
}

static void prep_q4(void *xq, const float *x, int cols) {
  int nb = cols / TS_QK;
  int8_t *qs = xq;
  quantise(qs, (float *)(qs + (size_t)nb * 32), x, nb);
  int32_t *s8 = (int32_t *)(qs + (size_t)nb * 36);
  for (int b = 0; b < nb; b++) {
    int32_t s = 0;
    for (int i = 0; i < 32; i++) s += qs[b * 32 + i];
    s8[b] = 8 * s;
  }
}

/* Keep a running integer sum a plain chain: without it gcc rebalances the adds of a 4-token
 * tile into a tree whose 32 live products spill to the stack (2x slower prefill). */
#define TS_CHAIN(v) __asm__("" : "+x"(v))

/* Software prefetch this far ahead in a group's stream: one sequential stream per thread is
 * not enough for the hardware prefetcher to keep DRAM busy. */
#define PF_DIST 1024
AI void prefetch_block(const uint8_t *p, int bytes) {
  for (int i = 0; i < bytes; i += 64) _mm_prefetch((const char *)p + PF_DIST + i, _MM_HINT_T0);
}

AI __m256i bcast4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

/* Store the first n of 8 row sums. */
AI void store_rows(float *out, __m256 v, int n) {
  if (n == G) {
    _mm256_storeu_ps(out, v);
    return;
  }
  float tmp[G];
  _mm256_storeu_ps(tmp, v);
  for (int k = 0; k < n; k++) out[k] = tmp[k];
}

/*
 * NG (1 or 2) groups of 8 Q8_0 rows, gs bytes apart, against T tokens (x at xq, xs bytes
 * apart), NG * T <= 4; sum i = g * T + t. Decode takes 2 groups: two DRAM streams per thread.
 */
AI void group_q8(float *out, int ostride, const uint8_t *wg, size_t gs, const int8_t *xq,
                 size_t xs, int nb, int nrow, int NG, int T) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[TT];
  for (int i = 0; i < NG * T; i++) acc[i] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    __m256i s32[TT];
    for (int i = 0; i < NG * T; i++) s32[i] = _mm256_setzero_si256();
    for (int g = 0; g < NG; g++) {
      const uint8_t *p = wg + g * gs + (size_t)b * Q8_GB;
      prefetch_block(p, Q8_GB);
      for (int v = 0; v < 8; v++) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * v));
        __m256i aw = _mm256_abs_epi8(w);
        for (int t = 0; t < T; t++) {
          __m256i sx = _mm256_sign_epi8(bcast4(xq + t * xs + b * 32 + 4 * v), w);
          __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
          s32[g * T + t] = _mm256_add_epi32(s32[g * T + t], p32);
          TS_CHAIN(s32[g * T + t]);
        }
      }
    }
    for (int g = 0; g < NG; g++) {
      __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wg + g * gs + (size_t)b * Q8_GB)));
      for (int t = 0; t < T; t++) {
        const float *dx = (const float *)(xq + t * xs + (size_t)nb * 32);
        __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(dx[b]));
        acc[g * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[g * T + t]), d, acc[g * T + t]);
      }
    }
  }
  for (int g = 0; g < NG; g++)
    for (int t = 0; t < T; t++)
      store_rows(out + (size_t)t * ostride + g * G, acc[g * T + t], g == NG - 1 ? nrow : G);
}

/*
 * One group of 8 Q4_0 rows against T tokens: nibbles 0..15 times int8 x summed in 16 bits
 * (8 vpmaddubsw of at most 2·15·127 each: |sum| <= 30480), minus 8·Σx per block.
 */
AI void group_q4(float *out, int ostride, const uint8_t *wg, size_t gs, const int8_t *xq,
                 size_t xs, int nb, int nrow, int NG, int T) {
  const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
  __m256 acc[TT];
  for (int i = 0; i < NG * T; i++) acc[i] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    __m256i s16[TT];
    for (int i = 0; i < NG * T; i++) s16[i] = _mm256_setzero_si256();
    for (int g = 0; g < NG; g++) {
      const uint8_t *p = wg + g * gs + (size_t)b * Q4_GB;
      prefetch_block(p, Q4_GB);
      for (int v = 0; v < 4; v++) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * v));
        __m256i lo = _mm256_and_si256(raw, low);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
        for (int t = 0; t < T; t++) {
          const int8_t *xb = xq + t * xs + b * 32;
          __m256i *s = &s16[g * T + t];
          *s = _mm256_add_epi16(*s, _mm256_maddubs_epi16(lo, bcast4(xb + 4 * v)));
          *s = _mm256_add_epi16(*s, _mm256_maddubs_epi16(hi, bcast4(xb + 16 + 4 * v)));
          TS_CHAIN(*s);
        }
      }
    }
    for (int g = 0; g < NG; g++) {
      __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wg + g * gs + (size_t)b * Q4_GB)));
      for (int t = 0; t < T; t++) {
        const float *dx = (const float *)(xq + t * xs + (size_t)nb * 32);
        const int32_t *s8 = (const int32_t *)(xq + t * xs + (size_t)nb * 36);
        __m256i s32 = _mm256_madd_epi16(s16[g * T + t], ones);
        s32 = _mm256_sub_epi32(s32, _mm256_set1_epi32(s8[b]));
        __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(dx[b]));
        acc[g * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), d, acc[g * T + t]);
      }
    }
  }
  for (int g = 0; g < NG; g++)
    for (int t = 0; t < T; t++)
      store_rows(out + (size_t)t * ostride + g * G, acc[g * T + t], g == NG - 1 ? nrow : G);
}

/*
 * Rows [r0, r1) (r0 a multiple of 8) x ntok tokens: decode in pairs of groups, prefill in
 * tiles of 8 rows x up to 4 tokens.
 */
#define TS_ROWS_X8(NAME, GROUP, GB)                                                              \
  static void NAME(float *out, int ostride, const uint8_t *w, size_t wrow, const void *xq,       \
                   size_t xstride, int r0, int r1, int ntok, int cols) {                         \
    (void)wrow;                                                                                  \
    int nb = cols / TS_QK;                                                                       \
    size_t gs = (size_t)nb * GB;                                                                 \
    const int8_t *x0 = xq;                                                                       \
    for (int r = r0; r < r1; r += G) {                                                           \
      int nrow = r1 - r < G ? r1 - r : G;                                                        \
      const uint8_t *wg = w + (size_t)(r / G) * gs;                                              \
      if (ntok == 1 && r1 - r >= 2 * G) {                                                        \
        GROUP(out + r, ostride, wg, gs, x0, xstride, nb, G, 2, 1);                               \
        r += G;                                                                                  \
        continue;                                                                                \
      }                                                                                          \
      for (int t = 0; t < ntok; t += TT) {                                                       \
        float *o = out + (size_t)t * ostride + r;                                                \
        const int8_t *x = x0 + (size_t)t * xstride;                                              \
        switch (ntok - t < TT ? ntok - t : TT) {                                                 \
        case 1: GROUP(o, ostride, wg, gs, x, xstride, nb, nrow, 1, 1); break;                    \
        case 2: GROUP(o, ostride, wg, gs, x, xstride, nb, nrow, 1, 2); break;                    \
        case 3: GROUP(o, ostride, wg, gs, x, xstride, nb, nrow, 1, 3); break;                    \
        default: GROUP(o, ostride, wg, gs, x, xstride, nb, nrow, 1, 4); break;                   \
        }                                                                                        \
      }                                                                                          \
    }                                                                                            \
  }

TS_ROWS_X8(rows_q8_x8, group_q8, Q8_GB)
TS_ROWS_X8(rows_q4_x8, group_q4, Q4_GB)

const ts_mm_kernel ts_mm_avx2_q8_0_x8 = {xbytes_q8, prep_q8, rows_q8_x8, .max_tok = TS_MAX_TOK,
                                         .group = G, .pack = pack_q8};
const ts_mm_kernel ts_mm_avx2_q4_0_x8 = {xbytes_q4, prep_q4, rows_q4_x8, .max_tok = TS_MAX_TOK,
                                         .group = G, .pack = pack_q4};
