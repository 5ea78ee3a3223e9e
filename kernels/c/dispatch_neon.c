/*
 * dispatch_neon.c: picks libts_neon's matmul kernels once. Advanced SIMD is baseline on
 * aarch64; the vdotq_s32 kernels run only when ts_cpu_features() reports dotprod. TS_MM
 * env var "neon" or "scalar" forces a variant for benchmarks and tests.
 */
#include "ts.h"

#include <stdlib.h>

uint32_t ts_cpu_features(void);
extern const ts_mm_kernel ts_mm_neon_f32, ts_mm_neon_f16, ts_mm_neon_bf16, ts_mm_neon_q8_0,
    ts_mm_neon_q4_0, ts_mm_neon_dot_q8_0, ts_mm_neon_dot_q4_0;

static const char *variant;

static const char *pick(void) {
  if (variant) return variant;
  const char *env = getenv("TS_MM");
  if (env && (strcmp(env, "neon") == 0 || strcmp(env, "scalar") == 0)) variant = env;
  else variant = (ts_cpu_features() & TS_CPU_DOTPROD) ? "neon_dot" : "neon";
  return variant;
}

const ts_mm_kernel *ts_mm_select(int type) {
  const char *v = pick();
  if (strcmp(v, "scalar") == 0) {
    switch (type) {
    case TS_F32: return &ts_mm_scalar_f32;
    case TS_F16: return &ts_mm_scalar_f16;
    case TS_BF16: return &ts_mm_scalar_bf16;
    case TS_Q8_0: return &ts_mm_scalar_q8_0;
    default: return &ts_mm_scalar_q4_0;
    }
  }
  int dot = strcmp(v, "neon_dot") == 0;
  switch (type) {
  case TS_F32: return &ts_mm_neon_f32;
  case TS_F16: return &ts_mm_neon_f16;
  case TS_BF16: return &ts_mm_neon_bf16;
  case TS_Q8_0: return dot ? &ts_mm_neon_dot_q8_0 : &ts_mm_neon_q8_0;
  default: return dot ? &ts_mm_neon_dot_q4_0 : &ts_mm_neon_q4_0;
  }
}

const char *ts_mm_variant(void) { return pick(); }

/* Sparse down-projection kernels (sparse_neon.c, sparse_scalar.c), same choice as matmul. */
void ts_down_sparse_f32_neon(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_f16_neon(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_bf16_neon(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_q8_0_neon(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_q4_0_neon(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);

ts_down_fn ts_down_select(int type) {
  int neon = strcmp(pick(), "scalar") != 0;
  switch (type) {
  case TS_F32: return neon ? ts_down_sparse_f32_neon : ts_down_sparse_f32_scalar;
  case TS_F16: return neon ? ts_down_sparse_f16_neon : ts_down_sparse_f16_scalar;
  case TS_BF16: return neon ? ts_down_sparse_bf16_neon : ts_down_sparse_bf16_scalar;
  case TS_Q8_0: return neon ? ts_down_sparse_q8_0_neon : ts_down_sparse_q8_0_scalar;
  default: return neon ? ts_down_sparse_q4_0_neon : ts_down_sparse_q4_0_scalar;
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
