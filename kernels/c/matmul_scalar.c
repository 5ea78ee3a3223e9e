/*
 * matmul_scalar.c: portable matmul kernels for F32, F16, BF16, Q8_0 and Q4_0 weights, and
 * the dispatch of libts_scalar. The plain twins of the SIMD kernels: x stays f32, each
 * weight element is decoded and multiplied in f32 with 8 fixed partial sums per row.
 * Build: plugins/_native/build.ts; bench: bench/matvec.ts --backend cpu_scalar.
 */
#include "ts.h"

typedef float (*dot_fn)(const uint8_t *w, const float *x, int cols);

static float hsum8(const float s[8]) {
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float dot_f32(const uint8_t *w, const float *x, int cols) {
  float s[8] = {0};
  int i = 0;
  for (; i + 8 <= cols; i += 8)
    for (int j = 0; j < 8; j++) {
      float wv;
      memcpy(&wv, w + 4 * (size_t)(i + j), 4);
      s[j] += wv * x[i + j];
    }
  for (; i < cols; i++) {
    float wv;
    memcpy(&wv, w + 4 * (size_t)i, 4);
    s[0] += wv * x[i];
  }
  return hsum8(s);
}

static float dot_f16(const uint8_t *w, const float *x, int cols) {
  float s[8] = {0};
  int i = 0;
  for (; i + 8 <= cols; i += 8)
    for (int j = 0; j < 8; j++) s[j] += ts_f16_to_f32(ts_load_u16(w + 2 * (size_t)(i + j))) * x[i + j];
  for (; i < cols; i++) s[0] += ts_f16_to_f32(ts_load_u16(w + 2 * (size_t)i)) * x[i];
  return hsum8(s);
}

static float dot_bf16(const uint8_t *w, const float *x, int cols) {
  float s[8] = {0};
  int i = 0;
  for (; i + 8 <= cols; i += 8)
    for (int j = 0; j < 8; j++) s[j] += ts_bf16_to_f32(ts_load_u16(w + 2 * (size_t)(i + j))) * x[i + j];
  for (; i < cols; i++) s[0] += ts_bf16_to_f32(ts_load_u16(w + 2 * (size_t)i)) * x[i];
  return hsum8(s);
}

/* Per block: d · Σ q·x with the inner sum in 8 lanes, then added into 8 running sums. */
static float dot_q8_0(const uint8_t *w, const float *x, int cols) {
  float s[8] = {0};
  for (int b = 0; b < cols / TS_QK; b++) {
    const uint8_t *p = w + (size_t)b * TS_Q8_BYTES;
    const float *xb = x + b * TS_QK;
    float d = ts_f16_to_f32(ts_load_u16(p)), bs[8] = {0};
    for (int i = 0; i < TS_QK; i += 8)
      for (int j = 0; j < 8; j++) bs[j] += (float)(int8_t)p[2 + i + j] * xb[i + j];
    for (int j = 0; j < 8; j++) s[j] += d * bs[j];
  }
  return hsum8(s);
}

static float dot_q4_0(const uint8_t *w, const float *x, int cols) {
  float s[8] = {0};
  for (int b = 0; b < cols / TS_QK; b++) {
    const uint8_t *p = w + (size_t)b * TS_Q4_BYTES;
    const float *xb = x + b * TS_QK;
    float d = ts_f16_to_f32(ts_load_u16(p)), bs[8] = {0};
    for (int i = 0; i < TS_QK / 2; i += 8)
      for (int j = 0; j < 8; j++) {
        bs[j] += (float)((p[2 + i + j] & 0x0f) - 8) * xb[i + j];
        bs[j] += (float)((p[2 + i + j] >> 4) - 8) * xb[i + j + TS_QK / 2];
      }
    for (int j = 0; j < 8; j++) s[j] += d * bs[j];
  }
  return hsum8(s);
}

static void rows_tok(dot_fn dot, float *out, int ostride, const uint8_t *w, size_t wrow,
                     const void *xq, size_t xstride, int r0, int r1, int ntok, int cols) {
  for (int r = r0; r < r1; r++)
    for (int t = 0; t < ntok; t++)
      out[(size_t)t * ostride + r] =
          dot(w + (size_t)r * wrow, (const float *)((const uint8_t *)xq + t * xstride), cols);
}

#define TS_SCALAR_KERNEL(T)                                                                      \
  static void rows_##T(float *out, int ostride, const uint8_t *w, size_t wrow, const void *xq,   \
                       size_t xstride, int r0, int r1, int ntok, int cols) {                     \
    rows_tok(dot_##T, out, ostride, w, wrow, xq, xstride, r0, r1, ntok, cols);                  \
  }                                                                                              \
  const ts_mm_kernel ts_mm_scalar_##T = {NULL, NULL, rows_##T};

TS_SCALAR_KERNEL(f32)
TS_SCALAR_KERNEL(f16)
TS_SCALAR_KERNEL(bf16)
TS_SCALAR_KERNEL(q8_0)
TS_SCALAR_KERNEL(q4_0)

#ifdef TS_DISPATCH_SCALAR
const ts_mm_kernel *ts_mm_select(int type) {
  switch (type) {
  case TS_F32: return &ts_mm_scalar_f32;
  case TS_F16: return &ts_mm_scalar_f16;
  case TS_BF16: return &ts_mm_scalar_bf16;
  case TS_Q8_0: return &ts_mm_scalar_q8_0;
  default: return &ts_mm_scalar_q4_0;
  }
}

const char *ts_mm_variant(void) { return "scalar"; }
#endif
