/*
 * dispatch_x86.c: picks libts_x86's matmul kernels once, from ts_cpu_features(). AVX2+FMA+F16C
 * is the floor (the cpu_x86 probe refuses CPUs without it); TS_MM env var "scalar" or "avx2"
 * forces a variant for benchmarks. Compiled without SIMD flags.
 */
#include "ts.h"

#include <stdlib.h>

uint32_t ts_cpu_features(void);
extern const ts_mm_kernel ts_mm_avx2_f32, ts_mm_avx2_f16, ts_mm_avx2_bf16, ts_mm_avx2_q8_0,
    ts_mm_avx2_q4_0;

static const char *variant;

static const char *pick(void) {
  if (variant) return variant;
  const char *env = getenv("TS_MM");
  uint32_t need = TS_CPU_AVX2 | TS_CPU_FMA | TS_CPU_F16C;
  int avx2 = (ts_cpu_features() & need) == need;
  if (env && strcmp(env, "scalar") == 0) avx2 = 0;
  variant = avx2 ? "avx2" : "scalar";
  return variant;
}

const ts_mm_kernel *ts_mm_select(int type) {
  int avx2 = pick()[0] == 'a';
  switch (type) {
  case TS_F32: return avx2 ? &ts_mm_avx2_f32 : &ts_mm_scalar_f32;
  case TS_F16: return avx2 ? &ts_mm_avx2_f16 : &ts_mm_scalar_f16;
  case TS_BF16: return avx2 ? &ts_mm_avx2_bf16 : &ts_mm_scalar_bf16;
  case TS_Q8_0: return avx2 ? &ts_mm_avx2_q8_0 : &ts_mm_scalar_q8_0;
  default: return avx2 ? &ts_mm_avx2_q4_0 : &ts_mm_scalar_q4_0;
  }
}

const char *ts_mm_variant(void) { return pick(); }

/* Sparse down-projection kernels (sparse_avx2.c, sparse_scalar.c), same choice as matmul. */
void ts_down_sparse_f32_avx2(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_f16_avx2(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_bf16_avx2(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_q8_0_avx2(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_q4_0_avx2(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);

ts_down_fn ts_down_select(int type) {
  int avx2 = pick()[0] == 'a';
  switch (type) {
  case TS_F32: return avx2 ? ts_down_sparse_f32_avx2 : ts_down_sparse_f32_scalar;
  case TS_F16: return avx2 ? ts_down_sparse_f16_avx2 : ts_down_sparse_f16_scalar;
  case TS_BF16: return avx2 ? ts_down_sparse_bf16_avx2 : ts_down_sparse_bf16_scalar;
  case TS_Q8_0: return avx2 ? ts_down_sparse_q8_0_avx2 : ts_down_sparse_q8_0_scalar;
  default: return avx2 ? ts_down_sparse_q4_0_avx2 : ts_down_sparse_q4_0_scalar;
  }
}

/* Two-row Q4_0 gather (sparse_avx2.c) for the AVX2 Q4_0 matmul kernel's prepared x. */
void ts_glu_rows2_q4_0_avx2(float *, const uint8_t *, size_t, const uint8_t *, int);

ts_rows2_fn ts_rows2_select(const ts_mm_kernel *k) {
  return k == &ts_mm_avx2_q4_0 ? ts_glu_rows2_q4_0_avx2 : NULL;
}

/* Four-row (two-neuron) Q4_0 gather (sparse_avx2.c), the same sums as the two-row one. */
void ts_glu_rows4_q4_0_avx2(float *, const uint8_t *, const uint8_t *, size_t, const uint8_t *, int);

ts_rows4_fn ts_rows4_select(const ts_mm_kernel *k) {
  return k == &ts_mm_avx2_q4_0 ? ts_glu_rows4_q4_0_avx2 : NULL;
}
