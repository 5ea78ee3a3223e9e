/*
 * ts.h: shared declarations of the turbosparse native CPU libraries.
 *
 * Three libraries are built from kernels/c (see plugins/_native/build.ts):
 *   libts_scalar: pool.c cpu.c ops.c matmul.c matmul_scalar.c   (portable C11)
 *   libts_x86:    the same plus matmul_avx2.c matmul_avx2_packed.c (runtime dispatch)
 *   libts_neon:   the same plus matmul_neon.c                     (aarch64)
 * Every library exports the same ts_* symbols (plugins/_native/symbols.ts).
 * Build: `deno task build`; bench: `deno task bench:bandwidth`, bench/decode.ts.
 */
#ifndef TS_H
#define TS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bump whenever an exported signature or a struct the plugins read changes. */
#define TS_ABI_VERSION 3

#define TS_QK 32 /* values per Q8_0 / Q4_0 block */
#define TS_Q8_BYTES 34 /* f16 d + 32 int8 */
#define TS_Q4_BYTES 18 /* f16 d + 16 bytes of nibbles */

/* Type ids, as GGUF numbers them (core/dtype.ts). */
enum { TS_F32 = 0, TS_F16 = 1, TS_Q4_0 = 2, TS_Q8_0 = 8, TS_BF16 = 30 };

/* Feature bits reported by ts_cpu_features(). */
enum {
  TS_CPU_SSE2 = 1 << 0,
  TS_CPU_AVX2 = 1 << 1,
  TS_CPU_FMA = 1 << 2,
  TS_CPU_F16C = 1 << 3,
  TS_CPU_AVX512F = 1 << 4,
  TS_CPU_AVX512BW = 1 << 5,
  TS_CPU_AVX512VL = 1 << 6,
  TS_CPU_AVX512VNNI = 1 << 7,
  TS_CPU_AVXVNNI = 1 << 8,
  TS_CPU_AVX512BF16 = 1 << 9,
  TS_CPU_ASIMD = 1 << 16,
  TS_CPU_DOTPROD = 1 << 17,
  TS_CPU_FP16 = 1 << 18,
};

/* ---- thread pool (pool.c) ---- */

/* One parallel job: called once per thread with ith in [0, nth). */
typedef void (*ts_task)(void *ctx, int ith, int nth);
/* Run task on every pool thread (the caller is thread 0) and wait for all of them. */
void ts_parallel(ts_task task, void *ctx);
/* Threads of the pool (at least 1). */
int ts_threads(void);
/* Claim the next chunk of a shared counter: returns its first index, or >= n when done. */
int64_t ts_claim(int64_t *counter, int64_t chunk);

/* ---- matmul kernels (matmul.c drives them) ---- */

/*
 * One family of matmul kernels for a weight type. x rows are first converted by `prep`
 * (identity copy for float weights, Q8 quantisation for integer dot products) into
 * `xbytes(cols)` bytes per token; then `rows_tok` computes out[t*ostride + r] for a run
 * of weight rows and up to TS_TILE tokens, reading each weight row once for all of them.
 */
#define TS_TILE 4
#define TS_MAX_TOK 64 /* most tokens a max_tok kernel is given per rows_tok call */
typedef struct ts_mm_kernel {
  size_t (*xbytes)(int cols);
  void (*prep)(void *xq, const float *x, int cols);
  void (*rows_tok)(float *out, int ostride, const uint8_t *w, size_t wrow, const void *xq,
                   size_t xstride, int r0, int r1, int ntok, int cols);
  /* Optional members, zero when absent. */
  int max_tok; /* rows_tok takes up to this many tokens (else TS_TILE; more go row by row) */
  int group;   /* > 0: rows_tok reads the layout written by `pack`, groups of `group` rows */
  /* Repack [rows, cols] file-layout weights for this kernel; dst NULL: just the size. */
  size_t (*pack)(uint8_t *dst, const uint8_t *src, int rows, int cols);
  const struct ts_mm_kernel *packed; /* this type's kernel over packed weights, if any */
} ts_mm_kernel;

/* Drive a kernel over the pool: tiles of tokens, rows split in chunks across threads. */
void ts_matmul_run(const ts_mm_kernel *k, float *out, const uint8_t *w, size_t wrow,
                   const float *x, int rows, int cols, int ntok);

/* Portable kernels (matmul_scalar.c); also the fallback of the SIMD libraries. */
extern const ts_mm_kernel ts_mm_scalar_f32, ts_mm_scalar_f16, ts_mm_scalar_bf16,
    ts_mm_scalar_q8_0, ts_mm_scalar_q4_0;
/* The kernel a library uses for a type (chosen at load time by its dispatch code). */
const ts_mm_kernel *ts_mm_select(int type);
/* Name of the kernel variant in use ("scalar", "avx2", "avx512", "neon", "neon_dot"). */
const char *ts_mm_variant(void);

/* ---- sparse FFN kernels (sparse.c drives them) ---- */

/*
 * Down projection of the active neurons over output columns [c0, c1) (c0 a multiple of 32):
 * out[c] = sum over k < n, ascending, of a[k] * row(ids[k])[c], rows at w + ids[k] * stride.
 * Written, not accumulated; the same per-column sum order for any c0, c1.
 */
typedef void (*ts_down_fn)(float *out, const uint8_t *w, size_t stride, const int32_t *ids,
                           const float *a, int n, int c0, int c1);
void ts_down_sparse_f32_scalar(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_f16_scalar(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_bf16_scalar(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_q8_0_scalar(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
void ts_down_sparse_q4_0_scalar(float *, const uint8_t *, size_t, const int32_t *, const float *, int, int, int);
/* The down kernel a library uses for a type (dispatch_*.c; sparse_scalar.c in libts_scalar). */
ts_down_fn ts_down_select(int type);
/*
 * A neuron's gate and up rows (`apart` bytes apart) times the x the matmul kernel `k` prepared,
 * in one pass: gu[0] = lower row · x, gu[1] = upper row · x, the same sums as k's rows_tok.
 */
typedef void (*ts_rows2_fn)(float *gu, const uint8_t *w, size_t apart, const uint8_t *xq,
                            int cols);
/* The library's two-row gather kernel for matmul kernel `k`, or NULL (dispatch_*.c). */
ts_rows2_fn ts_rows2_select(const struct ts_mm_kernel *k);
/* Two neurons' gate and up rows in one pass: gu[0..1] for the rows at w0 and w0 + apart,
 * gu[2..3] for w1; the same sums as ts_rows2_fn. */
typedef void (*ts_rows4_fn)(float *gu, const uint8_t *w0, const uint8_t *w1, size_t apart,
                            const uint8_t *xq, int cols);
/* The library's four-row gather kernel for matmul kernel `k`, or NULL (dispatch_*.c). */
ts_rows4_fn ts_rows4_select(const struct ts_mm_kernel *k);

/* ---- element conversions ---- */

static inline float ts_f32_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* IEEE half to float, bit exact, without hardware support. */
static inline float ts_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) {
    float v = (float)man * (1.0f / 16777216.0f); /* subnormal: man * 2^-24 */
    return sign ? -v : v;
  }
  if (exp == 31) return ts_f32_bits(sign | 0x7f800000u | (man << 13));
  return ts_f32_bits(sign | ((exp + 112) << 23) | (man << 13));
}

static inline float ts_bf16_to_f32(uint16_t h) { return ts_f32_bits((uint32_t)h << 16); }

static inline uint16_t ts_load_u16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

#endif
