/*
 * matmul.c: the matmul driver shared by every library.
 *   ts_matmul_{f32,f16,bf16,q8_0,q4_0}(out [ntok, rows], w [rows, cols], x [ntok, cols], ...)
 * nTok = 1 is a matrix-vector product; larger batches go in super-tiles of TS_SUPER tokens
 * whose prepared x stays in cache while each weight row is read from memory once per
 * super-tile and applied to TS_TILE tokens at a time from L1. Rows are claimed in chunks by
 * the pool threads; each row is computed by one thread with the same code whatever the
 * thread count, so results are identical for any thread count and any schedule.
 * Kernels come from ts_mm_select() (dispatch_*.c). Build: plugins/_native/build.ts;
 * bench: bench/matvec.ts, bench/decode.ts.
 */
#include "ts.h"

#include <stdlib.h>

#define TS_SUPER 16 /* tokens whose prepared x is kept hot while the weights stream by */

typedef struct {
  const ts_mm_kernel *k;
  float *out;
  const uint8_t *w;
  size_t wrow;
  const float *x;
  const uint8_t *xq;
  size_t xstride;
  uint8_t *xq_dst;
  int rows, cols, t0, tn;
  int64_t next, chunk;
} mm_job;

static void prep_task(void *ctx, int ith, int nth) {
  mm_job *j = ctx;
  for (int t = ith; t < j->tn; t += nth)
    j->k->prep(j->xq_dst + (size_t)t * j->xstride, j->x + (size_t)(j->t0 + t) * j->cols, j->cols);
}

static void mm_task(void *ctx, int ith, int nth) {
  (void)ith;
  (void)nth;
  mm_job *j = ctx;
  float *o = j->out + (size_t)j->t0 * j->rows;
  for (;;) {
    int64_t r0 = ts_claim(&j->next, j->chunk);
    if (r0 >= j->rows) break;
    int r1 = (int)(r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows);
    if (j->tn <= TS_TILE) {
      j->k->rows_tok(o, j->rows, j->w, j->wrow, j->xq, j->xstride, (int)r0, r1, j->tn, j->cols);
      continue;
    }
    for (int r = (int)r0; r < r1; r++) {
      for (int s = 0; s < j->tn; s += TS_TILE) {
        int n = j->tn - s < TS_TILE ? j->tn - s : TS_TILE;
        j->k->rows_tok(o + (size_t)s * j->rows, j->rows, j->w, j->wrow,
                       j->xq + (size_t)s * j->xstride, j->xstride, r, r + 1, n, j->cols);
      }
    }
  }
}

/* Scratch for prepared x, grown on demand; only the calling thread touches it. */
static uint8_t *scratch;
static size_t scratch_size;

static uint8_t *scratch_get(size_t n) {
  if (n <= scratch_size) return scratch;
  free(scratch);
  scratch_size = (n + 4095) & ~(size_t)4095;
  scratch = aligned_alloc(64, scratch_size);
  if (!scratch) scratch_size = 0;
  return scratch;
}

void ts_matmul_run(const ts_mm_kernel *k, float *out, const uint8_t *w, size_t wrow,
                   const float *x, int rows, int cols, int ntok) {
  int nth = ts_threads();
  int64_t chunk = rows / ((int64_t)nth * 8);
  if (chunk < 1) chunk = 1;
  size_t xb = k->xbytes ? (k->xbytes(cols) + 63) & ~(size_t)63 : 0;
  uint8_t *xq = xb ? scratch_get(xb * TS_SUPER) : NULL;
  if (xb && !xq) return;
  for (int t0 = 0; t0 < ntok; t0 += TS_SUPER) {
    int tn = ntok - t0 < TS_SUPER ? ntok - t0 : TS_SUPER;
    mm_job j = {k, out, w, wrow, x, NULL, 0, xq, rows, cols, t0, tn, 0, chunk};
    if (xb) {
      j.xq = xq;
      j.xstride = xb;
      if (tn == 1) prep_task(&j, 0, 1);
      else ts_parallel(prep_task, &j);
    } else {
      j.xq = (const uint8_t *)(x + (size_t)t0 * cols);
      j.xstride = (size_t)cols * 4;
    }
    ts_parallel(mm_task, &j);
  }
}

static void matmul(int type, size_t wrow, float *out, const uint8_t *w, const float *x, int rows,
                   int cols, int ntok) {
  if (rows <= 0 || ntok <= 0) return;
  ts_matmul_run(ts_mm_select(type), out, w, wrow, x, rows, cols, ntok);
}

void ts_matmul_f32(float *out, const uint8_t *w, const float *x, int rows, int cols, int ntok) {
  matmul(TS_F32, (size_t)cols * 4, out, w, x, rows, cols, ntok);
}
void ts_matmul_f16(float *out, const uint8_t *w, const float *x, int rows, int cols, int ntok) {
  matmul(TS_F16, (size_t)cols * 2, out, w, x, rows, cols, ntok);
}
void ts_matmul_bf16(float *out, const uint8_t *w, const float *x, int rows, int cols, int ntok) {
  matmul(TS_BF16, (size_t)cols * 2, out, w, x, rows, cols, ntok);
}
void ts_matmul_q8_0(float *out, const uint8_t *w, const float *x, int rows, int cols, int ntok) {
  matmul(TS_Q8_0, (size_t)(cols / TS_QK) * TS_Q8_BYTES, out, w, x, rows, cols, ntok);
}
void ts_matmul_q4_0(float *out, const uint8_t *w, const float *x, int rows, int cols, int ntok) {
  matmul(TS_Q4_0, (size_t)(cols / TS_QK) * TS_Q4_BYTES, out, w, x, rows, cols, ntok);
}

const char *ts_matmul_variant(void) { return ts_mm_variant(); }
