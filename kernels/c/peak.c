/*
 * peak.c: the compute roofline the prefill kernels are measured against, beside the memory
 * roofline of bandwidth.c. Every pool thread runs a register-only loop with enough
 * independent chains to fill the pipes; each returns operations per second of all threads
 * together, in GOP/s (a multiply-add counts as 2):
 *   ts_peak_fma_f32(iters): 8-lane f32 FMAs (12 chains), what the F32/F16/BF16 matmuls use.
 *   ts_peak_int8(sum16, iters): 32 u8 x s8 products per vpmaddubsw, as the Q8_0/Q4_0 matmuls
 *     use it: sum16 = 0 widens each product pair to i32 (vpmaddwd + vpaddd, the Q8_0 path);
 *     sum16 = 1 keeps 16-bit sums (vpaddw, the Q4_0 path).
 * Compiled with the library's SIMD flags: AVX2+FMA in libts_x86, NEON (sdot with +dotprod is
 * not assumed) in libts_neon, plain C elsewhere. Bench: bench/peak.ts.
 */
#include "ts.h"

#include <time.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#define NCHAIN 12
/* Run `step` (an expression of `a`) once on each of the 12 named chains a0..a11, each kept in
 * a register by an empty asm so the compiler neither folds nor spills the loop. */
#define CHAIN1(step, v)                                                                          \
  do {                                                                                           \
    __typeof__(v) a = v;                                                                         \
    step;                                                                                        \
    v = a;                                                                                       \
    OPAQUE(v);                                                                                   \
  } while (0)
#define EACH_CHAIN(step)                                                                         \
  CHAIN1(step, a0); CHAIN1(step, a1); CHAIN1(step, a2); CHAIN1(step, a3); CHAIN1(step, a4);      \
  CHAIN1(step, a5); CHAIN1(step, a6); CHAIN1(step, a7); CHAIN1(step, a8); CHAIN1(step, a9);      \
  CHAIN1(step, a10); CHAIN1(step, a11)

/* Declare the 12 chains a0..a11 of `type`, chain i starting at init(i). */
#define DECL_CHAINS(type, init)                                                                  \
  type a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), a4 = init(4), a5 = init(5),      \
       a6 = init(6), a7 = init(7), a8 = init(8), a9 = init(9), a10 = init(10), a11 = init(11)

/* Keep a vector in a register and opaque to the optimiser: no folding, no hoisting. */
#if defined(__aarch64__)
#define OPAQUE(v) __asm__ __volatile__("" : "+w"(v))
#else
#define OPAQUE(v) __asm__ __volatile__("" : "+x"(v))
#endif
/* The same for a general-purpose register (the plain C loops). */
#define OPAQUE_R(v) __asm__ __volatile__("" : "+r"(v))

typedef struct {
  int64_t iters;
  int kind; /* 0 f32 FMA, 1 int8 with i32 sums, 2 int8 with i16 sums */
  double sink[256];
} peak_job;

static double run_f32(int64_t iters) {
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
  __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2),
         a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5),
         a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8),
         a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
  for (int64_t n = 0; n < iters; n++) {
    EACH_CHAIN(a = _mm256_fmadd_ps(a, m, c));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  return _mm256_cvtss_f32(s);
#elif defined(__ARM_NEON)
  const float32x4_t m = vdupq_n_f32(0.999f), c = vdupq_n_f32(1e-3f);
  DECL_CHAINS(float32x4_t, vdupq_n_f32);
  for (int64_t n = 0; n < iters; n++) {
    EACH_CHAIN(a = vfmaq_f32(a, c, m)); /* a += c * m: the accumulator form of fmla */
  }
  EACH_CHAIN(a0 = vaddq_f32(a0, a));
  return vgetq_lane_f32(a0, 0);
#else
  float a[NCHAIN];
  for (int i = 0; i < NCHAIN; i++) a[i] = (float)i;
  for (int64_t n = 0; n < iters; n++)
    for (int i = 0; i < NCHAIN; i++) a[i] = a[i] * 0.999f + 1e-3f;
  float s = 0;
  for (int i = 0; i < NCHAIN; i++) s += a[i];
  return s;
#endif
}

/* Lanes of one f32 FMA step: flops per iteration = NCHAIN * LANES * 2. */
#if defined(__AVX2__) && defined(__FMA__)
#define F32_LANES 8
#define I8_LANES 32
#elif defined(__ARM_NEON)
#define F32_LANES 4
#define I8_LANES 16
#else
#define F32_LANES 1
#define I8_LANES 1
#endif

static double run_int8(int64_t iters, int sum16) {
#if defined(__AVX2__) && defined(__FMA__)
  const __m256i w = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  __m256i x = _mm256_set1_epi8(-5);
  __m256i a0 = _mm256_set1_epi32(0), a1 = _mm256_set1_epi32(1), a2 = _mm256_set1_epi32(2),
          a3 = _mm256_set1_epi32(3), a4 = _mm256_set1_epi32(4), a5 = _mm256_set1_epi32(5),
          a6 = _mm256_set1_epi32(6), a7 = _mm256_set1_epi32(7), a8 = _mm256_set1_epi32(8),
          a9 = _mm256_set1_epi32(9), a10 = _mm256_set1_epi32(10), a11 = _mm256_set1_epi32(11);
  /* x is made opaque before each product, so the products are recomputed every time */
  if (sum16) {
    for (int64_t n = 0; n < iters; n++) {
      EACH_CHAIN(OPAQUE(x); a = _mm256_add_epi16(a, _mm256_maddubs_epi16(w, x)));
    }
  } else {
    for (int64_t n = 0; n < iters; n++) {
      EACH_CHAIN(OPAQUE(x);
                 a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones)));
    }
  }
  __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                               _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
  s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(a8, a9), _mm256_add_epi32(a10, a11)));
  return (double)_mm256_extract_epi32(s, 0);
#elif defined(__ARM_NEON)
  const int8x16_t w = vdupq_n_s8(3);
  int8x16_t x = vdupq_n_s8(-5);
  /* 16 products per step: widening multiplies of both halves, then added into the sums */
#define PRODUCTS vmlal_s8(vmull_s8(vget_low_s8(w), vget_low_s8(x)), vget_high_s8(w), vget_high_s8(x))
  if (sum16) {
    DECL_CHAINS(int16x8_t, vdupq_n_s16);
    for (int64_t n = 0; n < iters; n++) {
      EACH_CHAIN(OPAQUE(x); a = vaddq_s16(a, PRODUCTS));
    }
    EACH_CHAIN(a0 = vaddq_s16(a0, a));
    return (double)vgetq_lane_s16(a0, 0);
  }
  DECL_CHAINS(int32x4_t, vdupq_n_s32);
  for (int64_t n = 0; n < iters; n++) {
    EACH_CHAIN(OPAQUE(x); a = vpadalq_s16(a, PRODUCTS));
  }
  EACH_CHAIN(a0 = vaddq_s32(a0, a));
  return (double)vgetq_lane_s32(a0, 0);
#undef PRODUCTS
#else
  int32_t a[NCHAIN];
  int32_t w = 3, x = -5;
  for (int i = 0; i < NCHAIN; i++) a[i] = i;
  for (int64_t n = 0; n < iters; n++)
    for (int i = 0; i < NCHAIN; i++) {
      a[i] += sum16 ? (int16_t)(w * x) : w * x;
      OPAQUE_R(x);
    }
  int64_t s = 0;
  for (int i = 0; i < NCHAIN; i++) s += a[i];
  return (double)s;
#endif
}

static void peak_task(void *ctx, int ith, int nth) {
  (void)nth;
  peak_job *j = ctx;
  j->sink[ith] = j->kind == 0 ? run_f32(j->iters) : run_int8(j->iters, j->kind == 2);
}

static double peak(int kind, int64_t iters, double ops_per_iter) {
  peak_job j = {iters, kind, {0}};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  ts_parallel(peak_task, &j);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
  double sink = 0;
  for (int i = 0; i < 256; i++) sink += j.sink[i];
  __asm__ __volatile__("" : : "m"(sink)); /* keep the results */
  return (double)ts_threads() * (double)iters * ops_per_iter / s / 1e9;
}

/* f32 FMA peak of all pool threads, GFLOP/s (an FMA is 2 flops); iters loop trips each. */
double ts_peak_fma_f32(int64_t iters) {
  return peak(0, iters, (double)NCHAIN * F32_LANES * 2);
}

/* int8 multiply-add peak of all pool threads, GOP/s (a product and its add are 2 ops);
 * sum16: keep 16-bit sums instead of widening to 32 bits. */
double ts_peak_int8(int sum16, int64_t iters) {
  return peak(sum16 ? 2 : 1, iters, (double)NCHAIN * I8_LANES * 2);
}
