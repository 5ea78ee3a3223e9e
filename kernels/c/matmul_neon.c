/*
 * matmul_neon.c: aarch64 Advanced SIMD matmul kernels for libts_neon.
 *   F32, F16 (fcvtl), BF16 (shift into the high half): f32 FMA, 4 x 4-lane sums per row.
 *   Q8_0, Q4_0: x quantised once per call to Q8 blocks (ts_neon_prep_q8), int8 products
 *   widened with smull/smlal and pairwise-added into i32, one FMA per block. The dot-product
 *   (vdotq_s32) versions live in matmul_neon_dot.c.
 * Every row kernel handles 1 or 2 tokens with the same per-token sum order (decode and
 * prefill give the same bits). Build: plugins/_native/build.ts (NEON is baseline on
 * aarch64); bench: bench/matvec.ts --lib neon; cross-test: tools/ci_neon.sh.
 */
#include "ts.h"
#include "neon.h"

#define AI static inline __attribute__((always_inline))

AI float32x4_t load4(const uint8_t *w, int type) {
  switch (type) {
  case TS_F16: return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w)));
  case TS_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w), 16));
  default: return vld1q_f32((const float *)w);
  }
}

AI float load1(const uint8_t *w, int type) {
  switch (type) {
  case TS_F16: return ts_neon_f16(w);
  case TS_BF16: return ts_bf16_to_f32(ts_load_u16(w));
  default: {
    float f;
    memcpy(&f, w, 4);
    return f;
  }
  }
}

/* One weight row against nt (1 or 2) tokens; 16 columns per step in 4 accumulators. */
AI void row_float(float *out, int ostride, const uint8_t *w, const float *x, size_t xs, int cols,
                  int type, int nt) {
  const int es = type == TS_F32 ? 4 : 2;
  float32x4_t acc[2][4];
  for (int t = 0; t < nt; t++)
    for (int a = 0; a < 4; a++) acc[t][a] = vdupq_n_f32(0);
  int c = 0;
  for (; c + 16 <= cols; c += 16) {
    for (int a = 0; a < 4; a++) {
      float32x4_t wv = load4(w + (size_t)(c + 4 * a) * es, type);
      for (int t = 0; t < nt; t++) acc[t][a] = vfmaq_f32(acc[t][a], wv, vld1q_f32(x + t * xs + c + 4 * a));
    }
  }
  for (int t = 0; t < nt; t++) {
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(acc[t][0], acc[t][1]), vaddq_f32(acc[t][2], acc[t][3])));
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

const ts_mm_kernel ts_mm_neon_f32 = {NULL, NULL, rows_f32};
const ts_mm_kernel ts_mm_neon_f16 = {NULL, NULL, rows_f16};
const ts_mm_kernel ts_mm_neon_bf16 = {NULL, NULL, rows_bf16};

size_t ts_neon_xbytes_q8(int cols) { return (size_t)(cols / TS_QK) * (32 + 4); }

/* x of one token as Q8 blocks: int8 qs[nb][32] | float d[nb] (round to nearest even). */
void ts_neon_prep_q8(void *xq, const float *x, int cols) {
  int nb = cols / TS_QK;
  int8_t *qs = xq;
  float *d = (float *)(qs + (size_t)nb * 32);
  for (int b = 0; b < nb; b++) {
    const float *xb = x + b * 32;
    float32x4_t m = vdupq_n_f32(0);
    for (int i = 0; i < 8; i++) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(xb + 4 * i)));
    float amax = vmaxvq_f32(m), db = amax / 127.0f, id = db != 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < 8; i++) {
      int32x4_t q = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(xb + 4 * i), id));
      int16x4_t h = vmovn_s32(q);
      int8x8_t b8 = vmovn_s16(vcombine_s16(h, h));
      vst1_lane_s32((int32_t *)(qs + b * 32 + 4 * i), vreinterpret_s32_s8(b8), 0);
    }
    d[b] = db;
  }
}

/* Σ w·x of one block in 4 i32 lanes, without the dot-product extension. */
AI int32x4_t dot32(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
  int16x8_t a = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), w0, x0);
  int16x8_t b = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), w1, x1);
  return vpadalq_s16(vpaddlq_s16(a), b);
}

TS_NEON_Q_ROWS(neon, dot32)
