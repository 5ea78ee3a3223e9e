/*
 * matmul_neon_dot.c: Q8_0 and Q4_0 kernels with the Armv8.2 dot-product extension
 * (vdotq_s32: 16 int8 products into 4 i32 lanes per instruction). Compiled with
 * -march=armv8.2-a+dotprod and used only when HWCAP reports asimddp (dispatch_neon.c).
 * Build: plugins/_native/build.ts; cross-test: tools/ci_neon.sh.
 */
#include "ts.h"
#include "neon.h"

static inline __attribute__((always_inline)) int32x4_t dot32(int8x16_t w0, int8x16_t w1,
                                                              int8x16_t x0, int8x16_t x1) {
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
}

TS_NEON_Q_ROWS(neon_dot, dot32)
