/*
 * sparse_neon.c: aarch64 Advanced SIMD sparse down-projection kernels (ts_down_fn of ts.h) for
 * libts_neon: out[c0..c1) = sum over active neurons, ascending, of a_k * down_t row.
 *   F32, F16 (fcvtl), BF16 (shift): 4 columns per FMA.
 *   Q8_0, Q4_0: per 32-column block s = a_k * d once, int8 (Q4_0: nibble - 8) widened to f32.
 * Rows go four at a time with the FMAs chained in ascending k, so each column's sum order is
 * the one-row loop's whatever the column split (thread count). Plain twin: sparse_scalar.c.
 * Build: plugins/_native/build.ts (NEON is baseline on aarch64); cross-test: tools/ci_neon.sh.
 */
#include "ts.h"

#include <arm_neon.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))
#define ROWS 4 /* neurons per pass over the output slice */

AI float32x4_t load4(const uint8_t *r, int c, int type) {
  switch (type) {
  case TS_F16:
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(r + (size_t)c * 2))));
  case TS_BF16:
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(r + (size_t)c * 2)), 16));
  default: return vld1q_f32((const float *)(r + (size_t)c * 4));
  }
}

AI float load1(const uint8_t *r, int c, int type) {
  switch (type) {
  case TS_F16: return ts_f16_to_f32(ts_load_u16(r + (size_t)c * 2));
  case TS_BF16: return ts_bf16_to_f32(ts_load_u16(r + (size_t)c * 2));
  default: {
    float f;
    memcpy(&f, r + (size_t)c * 4, 4);
    return f;
  }
  }
}

AI void rows_float(float *out, const uint8_t **r, const float *a, int nr, int c0, int c1, int type) {
  int c = c0;
  for (; c + 4 <= c1; c += 4) {
    float32x4_t acc = vld1q_f32(out + c);
    for (int i = 0; i < nr; i++) acc = vfmaq_n_f32(acc, load4(r[i], c, type), a[i]);
    vst1q_f32(out + c, acc);
  }
  for (; c < c1; c++) {
    float s = out[c];
    for (int i = 0; i < nr; i++) s = fmaf(load1(r[i], c, type), a[i], s);
    out[c] = s;
  }
}

AI float32x4_t widen(int16x4_t v) { return vcvtq_f32_s32(vmovl_s16(v)); }

AI void rows_q(float *out, const uint8_t **r, const float *a, int nr, int c0, int c1, int q4) {
  const size_t bb = q4 ? TS_Q4_BYTES : TS_Q8_BYTES;
  for (int b = c0 / TS_QK; b < c1 / TS_QK; b++) {
    float *o = out + b * TS_QK;
    float32x4_t acc[8];
    for (int v = 0; v < 8; v++) acc[v] = vld1q_f32(o + 4 * v);
    for (int i = 0; i < nr; i++) {
      const uint8_t *p = r[i] + (size_t)b * bb;
      float s = a[i] * ts_f16_to_f32(ts_load_u16(p));
      int8x16_t lo, hi;
      if (q4) {
        uint8x16_t raw = vld1q_u8(p + 2);
        lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
        hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
      } else {
        lo = vld1q_s8((const int8_t *)(p + 2));
        hi = vld1q_s8((const int8_t *)(p + 18));
      }
      int16x8_t w16[4] = {vmovl_s8(vget_low_s8(lo)), vmovl_s8(vget_high_s8(lo)),
                          vmovl_s8(vget_low_s8(hi)), vmovl_s8(vget_high_s8(hi))};
      for (int h = 0; h < 4; h++) {
        acc[2 * h] = vfmaq_n_f32(acc[2 * h], widen(vget_low_s16(w16[h])), s);
        acc[2 * h + 1] = vfmaq_n_f32(acc[2 * h + 1], widen(vget_high_s16(w16[h])), s);
      }
    }
    for (int v = 0; v < 8; v++) vst1q_f32(o + 4 * v, acc[v]);
  }
}

AI void down(float *out, const uint8_t *w, size_t stride, const int32_t *ids, const float *a,
             int n, int c0, int c1, int type) {
  memset(out + c0, 0, (size_t)(c1 - c0) * 4);
  for (int k = 0; k < n; k += ROWS) {
    int nr = n - k < ROWS ? n - k : ROWS;
    const uint8_t *r[ROWS];
    for (int i = 0; i < nr; i++) r[i] = w + (size_t)ids[k + i] * stride;
    if (type == TS_Q8_0 || type == TS_Q4_0) rows_q(out, r, a + k, nr, c0, c1, type == TS_Q4_0);
    else rows_float(out, r, a + k, nr, c0, c1, type);
  }
}

#define TS_DOWN_NEON(T, TYPE)                                                                    \
  void ts_down_sparse_##T##_neon(float *out, const uint8_t *w, size_t stride, const int32_t *ids, \
                                 const float *a, int n, int c0, int c1) {                       \
    down(out, w, stride, ids, a, n, c0, c1, TYPE);                                              \
  }

TS_DOWN_NEON(f32, TS_F32)
TS_DOWN_NEON(f16, TS_F16)
TS_DOWN_NEON(bf16, TS_BF16)
TS_DOWN_NEON(q8_0, TS_Q8_0)
TS_DOWN_NEON(q4_0, TS_Q4_0)
