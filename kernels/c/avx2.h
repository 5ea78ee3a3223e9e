/*
 * avx2.h: pieces shared by the AVX2 kernel files (matmul_avx2.c, matmul_avx2_packed.c):
 * the horizontal sum and the Q8 quantisation of x (32 values per block, d = amax / 127).
 * Include only from files compiled with -mavx2 -mfma -mf16c.
 */
#ifndef TS_AVX2_H
#define TS_AVX2_H

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

AI float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* nb blocks of x to int8 qs[nb][32] and scales d[nb]; round to nearest, |q| <= 127. */
AI void quantise(int8_t *qs, float *d, const float *x, int nb) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < nb; b++) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      v[i] = _mm256_loadu_ps(x + b * 32 + 8 * i);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h), db = amax / 127.0f;
    __m256 id = _mm256_set1_ps(db != 0.0f ? 127.0f / amax : 0.0f);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], id));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], id));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], id));
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(qs + b * 32), i0);
    d[b] = db;
  }
}

#endif
