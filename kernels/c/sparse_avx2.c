/*
 * sparse_avx2.c: AVX2 + FMA + F16C sparse down-projection kernels (ts_down_fn of ts.h) for
 * libts_x86: out[c0..c1) = sum over active neurons, ascending, of a_k * down_t row.
 *   F32, F16 (vcvtph2ps), BF16 (shift): 8 columns per FMA.
 *   Q8_0, Q4_0: per 32-column block s = a_k * d once, int8 (Q4_0: nibble - 8) widened to f32,
 *   one FMA per 8 columns.
 * Rows go four at a time: the output slice is loaded once per four rows and the four FMAs
 * chain in ascending k, so each column sees exactly the sum order of the one-row loop (and of
 * any column split: results do not depend on the thread count). Compiled with -mavx2 -mfma
 * -mf16c, called only when dispatch_x86.c finds them. Plain twin: sparse_scalar.c.
 * The rows of the next TS_DOWN_AHEAD neurons are prefetched (their slice [c0, c1) only).
 * Also ts_glu_rows2_q4_0_avx2 / ts_glu_rows4_q4_0_avx2: the gate and up rows of one / two
 * neurons in one pass for the Q4_0 gather of sparse.c (chosen by dispatch_x86.c),
 * bit-identical to the matmul kernel's rows_tok on each row; their twin is rows_tok itself.
 * Build: plugins/_native/build.ts; bench: bench/sparse_decode.ts.
 */
#include "ts.h"

#include "avx2.h"

#include <immintrin.h>
#include <math.h>

#define ROWS 4 /* neurons per pass over the output slice */

AI __m256 load8(const uint8_t *r, int c, int type) {
  switch (type) {
  case TS_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + (size_t)c * 2)));
  case TS_BF16:
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(r + (size_t)c * 2))), 16));
  default: return _mm256_loadu_ps((const float *)(r + (size_t)c * 4));
  }
}

AI float load1(const uint8_t *r, int c, int type) {
  switch (type) {
  case TS_F16: return _cvtsh_ss(ts_load_u16(r + (size_t)c * 2));
  case TS_BF16: return ts_bf16_to_f32(ts_load_u16(r + (size_t)c * 2));
  default: {
    float f;
    memcpy(&f, r + (size_t)c * 4, 4);
    return f;
  }
  }
}

/* nr (1..ROWS) float rows into out[c0..c1). */
AI void rows_float(float *out, const uint8_t **r, const float *a, int nr, int c0, int c1, int type) {
  __m256 av[ROWS];
  for (int i = 0; i < nr; i++) av[i] = _mm256_set1_ps(a[i]);
  int c = c0;
  for (; c + 8 <= c1; c += 8) {
    __m256 acc = _mm256_loadu_ps(out + c);
    for (int i = 0; i < nr; i++) acc = _mm256_fmadd_ps(load8(r[i], c, type), av[i], acc);
    _mm256_storeu_ps(out + c, acc);
  }
  for (; c < c1; c++) {
    float s = out[c];
    for (int i = 0; i < nr; i++) s = fmaf(load1(r[i], c, type), a[i], s);
    out[c] = s;
  }
}

/* The 32 weights of a Q8_0 or Q4_0 block as four vectors of 8 f32. */
AI void block8(__m256 *v, const uint8_t *p, int q4) {
  __m128i lo, hi;
  if (q4) {
    const __m128i m = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    __m128i raw = _mm_loadu_si128((const __m128i *)(p + 2));
    lo = _mm_sub_epi8(_mm_and_si128(raw, m), eight);
    hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m), eight);
  } else {
    lo = _mm_loadu_si128((const __m128i *)(p + 2));
    hi = _mm_loadu_si128((const __m128i *)(p + 18));
  }
  v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
  v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
  v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
  v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

/* nr (1..ROWS) quantised rows into out[c0..c1), whole blocks. */
AI void rows_q(float *out, const uint8_t **r, const float *a, int nr, int c0, int c1, int q4) {
  const size_t bb = q4 ? TS_Q4_BYTES : TS_Q8_BYTES;
  for (int b = c0 / TS_QK; b < c1 / TS_QK; b++) {
    float *o = out + b * TS_QK;
    __m256 acc[4];
    for (int v = 0; v < 4; v++) acc[v] = _mm256_loadu_ps(o + 8 * v);
    for (int i = 0; i < nr; i++) {
      const uint8_t *p = r[i] + (size_t)b * bb;
      __m256 s = _mm256_set1_ps(a[i] * _cvtsh_ss(ts_load_u16(p))), w[4];
      block8(w, p, q4);
      for (int v = 0; v < 4; v++) acc[v] = _mm256_fmadd_ps(w[v], s, acc[v]);
    }
    for (int v = 0; v < 4; v++) _mm256_storeu_ps(o + 8 * v, acc[v]);
  }
}

/* Byte range [*at, *at + return) of columns [c0, c1) within a row. */
AI size_t slice(int c0, int c1, int type, size_t *at) {
  switch (type) {
  case TS_Q8_0: *at = (size_t)(c0 / TS_QK) * TS_Q8_BYTES; return (size_t)((c1 - c0) / TS_QK) * TS_Q8_BYTES;
  case TS_Q4_0: *at = (size_t)(c0 / TS_QK) * TS_Q4_BYTES; return (size_t)((c1 - c0) / TS_QK) * TS_Q4_BYTES;
  case TS_F32: *at = (size_t)c0 * 4; return (size_t)(c1 - c0) * 4;
  default: *at = (size_t)c0 * 2; return (size_t)(c1 - c0) * 2;
  }
}

/* Rows whose column slice is requested ahead in the down projection: rows at random addresses
 * defeat the hardware prefetcher (a 1024-column Q4_0 slice is 9 lines). 8 vs none: -12% down
 * time; 16 and 32 no better (BENCHMARKS.md). */
#define TS_DOWN_AHEAD 8

/* Row k's slice requested ahead of use: random rows defeat the hardware prefetcher. */
AI void prefetch_slice(const uint8_t *w, size_t stride, const int32_t *ids, int k, size_t at,
                       size_t bytes) {
  const uint8_t *p = w + (size_t)ids[k] * stride + at;
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
  _mm_prefetch((const char *)p + bytes - 1, _MM_HINT_T0);
}

AI void down(float *out, const uint8_t *w, size_t stride, const int32_t *ids, const float *a,
             int n, int c0, int c1, int type) {
  memset(out + c0, 0, (size_t)(c1 - c0) * 4);
  size_t at, bytes = slice(c0, c1, type, &at);
  for (int k = 0; k < n && k < TS_DOWN_AHEAD; k++) prefetch_slice(w, stride, ids, k, at, bytes);
  for (int k = 0; k < n; k += ROWS) {
    int nr = n - k < ROWS ? n - k : ROWS;
    for (int i = k + TS_DOWN_AHEAD; i < k + TS_DOWN_AHEAD + ROWS && i < n; i++)
      prefetch_slice(w, stride, ids, i, at, bytes);
    const uint8_t *r[ROWS];
    for (int i = 0; i < nr; i++) r[i] = w + (size_t)ids[k + i] * stride;
    if (type == TS_Q8_0 || type == TS_Q4_0) {
      if (nr == ROWS) rows_q(out, r, a + k, ROWS, c0, c1, type == TS_Q4_0);
      else rows_q(out, r, a + k, nr, c0, c1, type == TS_Q4_0);
    } else {
      if (nr == ROWS) rows_float(out, r, a + k, ROWS, c0, c1, type);
      else rows_float(out, r, a + k, nr, c0, c1, type);
    }
  }
}

#define TS_DOWN_AVX2(T, TYPE)                                                                    \
  void ts_down_sparse_##T##_avx2(float *out, const uint8_t *w, size_t stride, const int32_t *ids, \
                                 const float *a, int n, int c0, int c1) {                       \
    down(out, w, stride, ids, a, n, c0, c1, TYPE);                                              \
  }

TS_DOWN_AVX2(f32, TS_F32)
TS_DOWN_AVX2(f16, TS_F16)
TS_DOWN_AVX2(bf16, TS_BF16)
TS_DOWN_AVX2(q8_0, TS_Q8_0)
TS_DOWN_AVX2(q4_0, TS_Q4_0)

/* ---- the gathered Q4_0 gate and up rows of one neuron ---- */

/*
 * gu[0] = row at w · x, gu[1] = row at w + apart · x, x prepared by matmul_avx2.c's prep_q4
 * (qs[nb][32] | int16 corr[nb][16] = 8·pairwise sums | float d[nb]). The two rows share each
 * block's x loads and run four independent FMA chains (kept in registers: an index b & 1 put
 * them on the stack, a store-forwarding chain, 7-10% slower); per row the arithmetic is row_q's in
 * matmul_avx2.c (nibbles times int8 x minus corr, even and odd blocks in separate sums, one
 * FMA per block, hsum of their sum), so each result equals rows_tok's bit for bit.
 */
/* One block of row p times x block b (qx, cr, dx), added into acc: row_q's arithmetic. */
AI __m256 q4_block(__m256 acc, const uint8_t *p, __m256i qx, __m256i cr, float dx) {
  const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
  __m128i raw = _mm_loadu_si128((const __m128i *)(p + 2));
  __m256i qw = _mm256_and_si256(
      _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1), low);
  __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(qw, qx), cr);
  __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
  return _mm256_fmadd_ps(f, _mm256_set1_ps(_cvtsh_ss(ts_load_u16(p)) * dx), acc);
}

void ts_glu_rows2_q4_0_avx2(float *gu, const uint8_t *w, size_t apart, const uint8_t *xq,
                            int cols) {
  const int nb = cols / TS_QK;
  const int8_t *qs = (const int8_t *)xq;
  const uint8_t *corr = xq + (size_t)nb * 32;
  const float *dx = (const float *)(xq + (size_t)nb * 64);
  const uint8_t *g = w, *u = w + apart;
  /* as row_q: even blocks in sum 0, odd blocks in sum 1; two blocks per iteration keep the
   * four sums in registers (an index b & 1 would put them on the stack) */
  __m256 g0 = _mm256_setzero_ps(), g1 = g0, u0 = g0, u1 = g0;
  int b = 0;
  for (; b + 2 <= nb; b += 2) {
    __m256i qx = _mm256_loadu_si256((const __m256i *)(qs + (size_t)b * 32));
    __m256i cr = _mm256_loadu_si256((const __m256i *)(corr + (size_t)b * 32));
    g0 = q4_block(g0, g + (size_t)b * TS_Q4_BYTES, qx, cr, dx[b]);
    u0 = q4_block(u0, u + (size_t)b * TS_Q4_BYTES, qx, cr, dx[b]);
    qx = _mm256_loadu_si256((const __m256i *)(qs + (size_t)(b + 1) * 32));
    cr = _mm256_loadu_si256((const __m256i *)(corr + (size_t)(b + 1) * 32));
    g1 = q4_block(g1, g + (size_t)(b + 1) * TS_Q4_BYTES, qx, cr, dx[b + 1]);
    u1 = q4_block(u1, u + (size_t)(b + 1) * TS_Q4_BYTES, qx, cr, dx[b + 1]);
  }
  if (b < nb) {
    __m256i qx = _mm256_loadu_si256((const __m256i *)(qs + (size_t)b * 32));
    __m256i cr = _mm256_loadu_si256((const __m256i *)(corr + (size_t)b * 32));
    g0 = q4_block(g0, g + (size_t)b * TS_Q4_BYTES, qx, cr, dx[b]);
    u0 = q4_block(u0, u + (size_t)b * TS_Q4_BYTES, qx, cr, dx[b]);
  }
  gu[0] = hsum256(_mm256_add_ps(g0, g1));
  gu[1] = hsum256(_mm256_add_ps(u0, u1));
}

/* Two neurons' gate and up rows in one pass (gu[0..1] neuron at w0, gu[2..3] at w1): four
 * independent row streams in flight, each block's x loaded once; per row the sums of rows2. */
void ts_glu_rows4_q4_0_avx2(float *gu, const uint8_t *w0, const uint8_t *w1, size_t apart,
                            const uint8_t *xq, int cols) {
  const int nb = cols / TS_QK;
  const int8_t *qs = (const int8_t *)xq;
  const uint8_t *corr = xq + (size_t)nb * 32;
  const float *dx = (const float *)(xq + (size_t)nb * 64);
  const uint8_t *r[4] = {w0, w0 + apart, w1, w1 + apart};
  __m256 a0[4], a1[4];
  for (int i = 0; i < 4; i++) a0[i] = a1[i] = _mm256_setzero_ps();
  int b = 0;
  for (; b + 2 <= nb; b += 2) {
    __m256i qx = _mm256_loadu_si256((const __m256i *)(qs + (size_t)b * 32));
    __m256i cr = _mm256_loadu_si256((const __m256i *)(corr + (size_t)b * 32));
    for (int i = 0; i < 4; i++) a0[i] = q4_block(a0[i], r[i] + (size_t)b * TS_Q4_BYTES, qx, cr, dx[b]);
    qx = _mm256_loadu_si256((const __m256i *)(qs + (size_t)(b + 1) * 32));
    cr = _mm256_loadu_si256((const __m256i *)(corr + (size_t)(b + 1) * 32));
    for (int i = 0; i < 4; i++)
      a1[i] = q4_block(a1[i], r[i] + (size_t)(b + 1) * TS_Q4_BYTES, qx, cr, dx[b + 1]);
  }
  if (b < nb) {
    __m256i qx = _mm256_loadu_si256((const __m256i *)(qs + (size_t)b * 32));
    __m256i cr = _mm256_loadu_si256((const __m256i *)(corr + (size_t)b * 32));
    for (int i = 0; i < 4; i++) a0[i] = q4_block(a0[i], r[i] + (size_t)b * TS_Q4_BYTES, qx, cr, dx[b]);
  }
  for (int i = 0; i < 4; i++) gu[i] = hsum256(_mm256_add_ps(a0[i], a1[i]));
}
