/*
 * sparse_scalar.c: portable sparse down-projection kernels (ts_down_fn of ts.h) for F32, F16,
 * BF16, Q8_0 and Q4_0 rows, and the down dispatch of libts_scalar. The plain twins of
 * sparse_avx2.c and sparse_neon.c: each weight element is decoded to f32 and added into the
 * output one neuron after the other (quantised blocks: s = a * d once per block, then s * q).
 * Build: plugins/_native/build.ts; bench: bench/sparse_decode.ts --backend cpu_scalar.
 */
#include "ts.h"

static inline float get_f32(const uint8_t *r, int c) {
  float v;
  memcpy(&v, r + (size_t)c * 4, 4);
  return v;
}
static inline float get_f16(const uint8_t *r, int c) { return ts_f16_to_f32(ts_load_u16(r + (size_t)c * 2)); }
static inline float get_bf16(const uint8_t *r, int c) { return ts_bf16_to_f32(ts_load_u16(r + (size_t)c * 2)); }

#define TS_DOWN_FLOAT(T)                                                                         \
  void ts_down_sparse_##T##_scalar(float *out, const uint8_t *w, size_t stride,                  \
                                   const int32_t *ids, const float *a, int n, int c0, int c1) {  \
    for (int c = c0; c < c1; c++) out[c] = 0.0f;                                                 \
    for (int k = 0; k < n; k++) {                                                                \
      const uint8_t *r = w + (size_t)ids[k] * stride;                                            \
      float ak = a[k];                                                                           \
      for (int c = c0; c < c1; c++) out[c] += ak * get_##T(r, c);                                \
    }                                                                                            \
  }

TS_DOWN_FLOAT(f32)
TS_DOWN_FLOAT(f16)
TS_DOWN_FLOAT(bf16)

void ts_down_sparse_q8_0_scalar(float *out, const uint8_t *w, size_t stride, const int32_t *ids,
                                const float *a, int n, int c0, int c1) {
  for (int c = c0; c < c1; c++) out[c] = 0.0f;
  for (int k = 0; k < n; k++) {
    const uint8_t *r = w + (size_t)ids[k] * stride;
    for (int b = c0 / TS_QK; b < c1 / TS_QK; b++) {
      const uint8_t *p = r + (size_t)b * TS_Q8_BYTES;
      float s = a[k] * ts_f16_to_f32(ts_load_u16(p));
      float *o = out + b * TS_QK;
      for (int j = 0; j < TS_QK; j++) o[j] += s * (float)(int8_t)p[2 + j];
    }
  }
}

void ts_down_sparse_q4_0_scalar(float *out, const uint8_t *w, size_t stride, const int32_t *ids,
                                const float *a, int n, int c0, int c1) {
  for (int c = c0; c < c1; c++) out[c] = 0.0f;
  for (int k = 0; k < n; k++) {
    const uint8_t *r = w + (size_t)ids[k] * stride;
    for (int b = c0 / TS_QK; b < c1 / TS_QK; b++) {
      const uint8_t *p = r + (size_t)b * TS_Q4_BYTES;
      float s = a[k] * ts_f16_to_f32(ts_load_u16(p));
      float *o = out + b * TS_QK;
      for (int j = 0; j < TS_QK / 2; j++) { /* low nibbles: values 0..15, high: 16..31 */
        o[j] += s * (float)((p[2 + j] & 0x0f) - 8);
        o[j + TS_QK / 2] += s * (float)((p[2 + j] >> 4) - 8);
      }
    }
  }
}

#ifdef TS_DISPATCH_SCALAR
ts_down_fn ts_down_select(int type) {
  switch (type) {
  case TS_F32: return ts_down_sparse_f32_scalar;
  case TS_F16: return ts_down_sparse_f16_scalar;
  case TS_BF16: return ts_down_sparse_bf16_scalar;
  case TS_Q8_0: return ts_down_sparse_q8_0_scalar;
  default: return ts_down_sparse_q4_0_scalar;
  }
}

/* No two- or four-row gather kernels here (sparse.c uses rows_tok). */
ts_rows2_fn ts_rows2_select(const ts_mm_kernel *k) {
  (void)k;
  return NULL;
}

ts_rows4_fn ts_rows4_select(const ts_mm_kernel *k) {
  (void)k;
  return NULL;
}
#endif
