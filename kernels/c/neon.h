/*
 * neon.h: pieces shared by the NEON kernel files (matmul_neon.c, matmul_neon_dot.c): the
 * Q8_0 and Q4_0 row kernels, written once over a block dot-product function DOT, so the
 * plain and the vdotq_s32 variants differ only in how one block's int8 products are summed.
 */
#ifndef TS_NEON_H
#define TS_NEON_H

#include <arm_neon.h>

size_t ts_neon_xbytes_q8(int cols);
void ts_neon_prep_q8(void *xq, const float *x, int cols);

static inline float ts_neon_f16(const uint8_t *p) {
  __fp16 h;
  memcpy(&h, p, 2);
  return (float)h;
}

/* Q4_0 nibbles as signed int8 (q - 8): values 0..15 from the low, 16..31 from the high. */
static inline void ts_neon_q4(const uint8_t *p, int8x16_t *w0, int8x16_t *w1) {
  uint8x16_t raw = vld1q_u8(p);
  *w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
  *w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
}

/*
 * Row kernels rows_q8_0_SUFFIX / rows_q4_0_SUFFIX and the kernels ts_mm_SUFFIX_q8_0/q4_0:
 * per block DOT(w0, w1, x0, x1) gives 4 i32 lanes, converted and added with one FMA;
 * even and odd blocks go to separate sums.
 */
#define TS_NEON_Q_ROWS(SUFFIX, DOT)                                                                 \
  static inline __attribute__((always_inline)) void row_q_##SUFFIX(                               \
      float *out, int ostride, const uint8_t *w, const uint8_t *xq, size_t xs, int nb, int nt,      \
      int q4) {                                                                                     \
    float32x4_t acc[2][2] = {{vdupq_n_f32(0), vdupq_n_f32(0)}, {vdupq_n_f32(0), vdupq_n_f32(0)}};   \
    const size_t bb = q4 ? TS_Q4_BYTES : TS_Q8_BYTES;                                               \
    for (int b = 0; b < nb; b++) {                                                                  \
      const uint8_t *p = w + (size_t)b * bb;                                                        \
      int8x16_t w0, w1;                                                                             \
      if (q4) ts_neon_q4(p + 2, &w0, &w1);                                                          \
      else {                                                                                        \
        w0 = vld1q_s8((const int8_t *)p + 2);                                                       \
        w1 = vld1q_s8((const int8_t *)p + 18);                                                      \
      }                                                                                             \
      float dw = ts_neon_f16(p);                                                                    \
      for (int t = 0; t < nt; t++) {                                                                \
        const int8_t *xt = (const int8_t *)(xq + t * xs);                                           \
        int32x4_t s = DOT(w0, w1, vld1q_s8(xt + b * 32), vld1q_s8(xt + b * 32 + 16));               \
        float dx = ((const float *)(xt + (size_t)nb * 32))[b];                                      \
        if (b & 1) acc[t][1] = vfmaq_n_f32(acc[t][1], vcvtq_f32_s32(s), dw * dx);                   \
        else acc[t][0] = vfmaq_n_f32(acc[t][0], vcvtq_f32_s32(s), dw * dx);                         \
      }                                                                                             \
    }                                                                                               \
    for (int t = 0; t < nt; t++) out[(size_t)t * ostride] = vaddvq_f32(vaddq_f32(acc[t][0], acc[t][1])); \
  }                                                                                                 \
  static inline __attribute__((always_inline)) void rows_q_##SUFFIX(                              \
      float *out, int ostride, const uint8_t *w, size_t wrow, const void *xq, size_t xstride,       \
      int r0, int r1, int ntok, int cols, int q4) {                                                 \
    const uint8_t *x = xq;                                                                          \
    for (int r = r0; r < r1; r++) {                                                                 \
      const uint8_t *wr = w + (size_t)r * wrow;                                                     \
      int t = 0;                                                                                    \
      for (; t + 2 <= ntok; t += 2)                                                                 \
        row_q_##SUFFIX(out + (size_t)t * ostride + r, ostride, wr, x + t * xstride, xstride,        \
                       cols / TS_QK, 2, q4);                                                        \
      if (t < ntok)                                                                                 \
        row_q_##SUFFIX(out + (size_t)t * ostride + r, ostride, wr, x + t * xstride, xstride,        \
                       cols / TS_QK, 1, q4);                                                        \
    }                                                                                               \
  }                                                                                                 \
  static void rows_q8_0_##SUFFIX(float *o, int os, const uint8_t *w, size_t wr, const void *x,    \
                                 size_t xs, int r0, int r1, int nt, int cols) {                     \
    rows_q_##SUFFIX(o, os, w, wr, x, xs, r0, r1, nt, cols, 0);                                     \
  }                                                                                                 \
  static void rows_q4_0_##SUFFIX(float *o, int os, const uint8_t *w, size_t wr, const void *x,    \
                                 size_t xs, int r0, int r1, int nt, int cols) {                     \
    rows_q_##SUFFIX(o, os, w, wr, x, xs, r0, r1, nt, cols, 1);                                     \
  }                                                                                                 \
  const ts_mm_kernel ts_mm_##SUFFIX##_q8_0 = {ts_neon_xbytes_q8, ts_neon_prep_q8, rows_q8_0_##SUFFIX}; \
  const ts_mm_kernel ts_mm_##SUFFIX##_q4_0 = {ts_neon_xbytes_q8, ts_neon_prep_q8, rows_q4_0_##SUFFIX};

#endif
