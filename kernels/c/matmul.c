/*
 * matmul.c: the matmul driver shared by every library.
 *   ts_matmul_{f32,f16,bf16,q8_0,q4_0}(out [ntok, rows], w [rows, cols], x [ntok, cols], ...)
 *   ts_matmul_{q8_0,q4_0}_packed(...): the same over weights repacked by ts_pack_{q8_0,q4_0}
 * nTok = 1 is a matrix-vector product; larger batches go in super-tiles of tokens whose
 * prepared x stays in cache (TS_X_BUDGET) while each weight row is read from memory once per
 * super-tile; kernels with max_tok take the whole super-tile in one call and tile it in
 * registers, older ones get TS_TILE tokens per row. Rows are claimed in chunks (whole packed
 * groups) by the pool threads; each row is computed by one thread with the same code
 * whatever the thread count, so results are identical for any thread count and schedule.
 * Kernels come from ts_mm_select() (dispatch_*.c). Build: plugins/_native/build.ts;
 * bench: bench/matvec.ts, bench/decode.ts.
 */
#include "ts.h"

#include <stdlib.h>

#define TS_SUPER 16 /* tokens whose prepared x is kept hot while the weights stream by */
#define TS_X_BUDGET (1024 << 10) /* bytes of prepared x per max_tok super-tile (1 MiB beat 256 KiB) */

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
    if (j->tn <= (j->k->max_tok ? j->k->max_tok : TS_TILE)) {
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
  if (k->group > 0) chunk = (chunk + k->group - 1) / k->group * k->group;
  size_t xb = k->xbytes ? (k->xbytes(cols) + 63) & ~(size_t)63 : 0;
  int super = TS_SUPER;
  if (k->max_tok) {
    size_t fit = TS_X_BUDGET / (xb ? xb : (size_t)cols * 4);
    super = fit < TS_TILE ? TS_TILE : fit > (size_t)k->max_tok ? k->max_tok : (int)fit;
  }
  uint8_t *xq = xb ? scratch_get(xb * super) : NULL;
  if (xb && !xq) return;
  for (int t0 = 0; t0 < ntok; t0 += super) {
    int tn = ntok - t0 < super ? ntok - t0 : super;
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

/* Packed weights: the x86 library repacks Q8_0 and Q4_0 (matmul_avx2_packed.c), others not. */
static const ts_mm_kernel *packed_kernel(int type) {
  const ts_mm_kernel *k = ts_mm_select(type)->packed;
  return k && k->pack ? k : NULL;
}

typedef struct {
  const ts_mm_kernel *k;
  uint8_t *dst;
  const uint8_t *src;
  size_t wrow;
  int rows, cols;
} pack_job;

/* Thread ith packs its share of whole groups; a group's offset is the size of those before. */
static void pack_task(void *ctx, int ith, int nth) {
  pack_job *j = ctx;
  int ng = (j->rows + j->k->group - 1) / j->k->group;
  int r0 = (int)((int64_t)ng * ith / nth) * j->k->group;
  int r1 = (int)((int64_t)ng * (ith + 1) / nth) * j->k->group;
  if (r1 > j->rows) r1 = j->rows;
  if (r0 >= r1) return;
  size_t off = r0 ? j->k->pack(NULL, j->src, r0, j->cols) : 0;
  j->k->pack(j->dst + off, j->src + (size_t)r0 * j->wrow, r1 - r0, j->cols);
}

/* Bytes of the packed copy of a [rows, cols] weight (dst NULL), or pack it into dst; 0 when
 * this library multiplies the file layout directly. */
static int64_t pack(int type, uint8_t *dst, const uint8_t *src, int rows, int cols) {
  const ts_mm_kernel *k = packed_kernel(type);
  if (!k || rows <= 0 || cols % TS_QK != 0) return 0;
  size_t bytes = k->pack(NULL, src, rows, cols);
  if (!dst) return (int64_t)bytes;
  size_t wrow = (size_t)(cols / TS_QK) * (type == TS_Q8_0 ? TS_Q8_BYTES : TS_Q4_BYTES);
  pack_job j = {k, dst, src, wrow, rows, cols};
  ts_parallel(pack_task, &j);
  return (int64_t)bytes;
}

int64_t ts_pack_q8_0(uint8_t *dst, const uint8_t *src, int rows, int cols) {
  return pack(TS_Q8_0, dst, src, rows, cols);
}
int64_t ts_pack_q4_0(uint8_t *dst, const uint8_t *src, int rows, int cols) {
  return pack(TS_Q4_0, dst, src, rows, cols);
}

static void matmul_packed(int type, float *out, const uint8_t *w, const float *x, int rows,
                          int cols, int ntok) {
  const ts_mm_kernel *k = packed_kernel(type);
  if (rows <= 0 || ntok <= 0 || !k) return;
  ts_matmul_run(k, out, w, 0, x, rows, cols, ntok);
}

void ts_matmul_q8_0_packed(float *out, const uint8_t *w, const float *x, int rows, int cols,
                           int ntok) {
  matmul_packed(TS_Q8_0, out, w, x, rows, cols, ntok);
}
void ts_matmul_q4_0_packed(float *out, const uint8_t *w, const float *x, int rows, int cols,
                           int ntok) {
  matmul_packed(TS_Q4_0, out, w, x, rows, cols, ntok);
}

const char *ts_matmul_variant(void) { return ts_mm_variant(); }
