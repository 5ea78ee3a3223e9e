/*
 * sparse.c: the sparse FFN driver shared by every library (SPARSE_OPS of core/backend.ts).
 *   ts_select_f32                          threshold -> index list (idx[0] = count, ascending ids)
 *   ts_unary_f32_{relu,abs_silu,nonzero}   the predictors' elementwise ops
 *   ts_axpy_f32                            out += alpha * x (mixing MoE experts)
 *   ts_glu_sparse_<dtype>[_gated]          gathered gate/up rows of the active neurons, then the
 *                                          activation: one pass over the list, a neuron's gate
 *                                          and up rows in one rows_tok call (x quantised once),
 *                                          the rows of the neurons ahead prefetched whole; each
 *                                          dot product is the unpacked matmul kernel's
 *                                          (ts_mm_select), so sparse == dense per row;
 *                                          Q4_0 on x86 runs two neurons (four rows) in
 *                                          one pass (ts_rows4_select; a leftover neuron
 *                                          through ts_rows2_select; the same sums)
 *   ts_down_sparse_<dtype>                 out = sum over k with a_k != 0 of a_k * down_t[idx[k], :]
 *   ts_down_sparse_batch_<dtype>           the same for a batch of tokens from dense activations
 *                                          and scores (prefill): 64-column blocks, each read
 *                                          once for all the batch's tokens
 * Weight rows of neuron i start at w + i * stride: stride is the row size, or 3 rows when the
 * plugin bundled gate, up and down_t of each neuron (prepareSparseFFN).
 * Determinism: each act[k] and each output column is computed by one thread, with the same code
 * and the same ascending-k sum order whatever the thread count or schedule, so results are
 * identical for any thread count. The down projection is split by output columns (whole
 * 32-column blocks), never by neurons, so no two threads add into one element.
 * Variants: the down kernels live in sparse_scalar.c (plain twin), sparse_avx2.c, sparse_neon.c.
 * Build: plugins/_native/build.ts; bench: bench/sparse_decode.ts.
 */
#include "ts.h"

#include <math.h>
#include <stdlib.h>

/* Column chunks per thread in the down projection (claimed dynamically; whole 32-blocks). */
#define TS_DOWN_SPLIT 2
/* Active neurons claimed at a time by a gluSparse thread. */
#define TS_GLU_CHUNK 32
/* gluSparse prefetch: rows at random addresses defeat the hardware prefetcher, so the whole
 * gate and up rows of the neuron TS_GLU_AHEAD ahead (within the thread's chunk) are requested
 * into L2 while the current neuron's rows are read: about 2 * TS_GLU_AHEAD rows in flight. */
#define TS_GLU_AHEAD 3
#define TS_PF_LOCALITY 2

enum { GLU_SWIGLU = 0, GLU_REGLU = 1, GLU_DRELU = 2 };

/* Scratch grown on demand; only the calling thread touches it. */
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

static size_t row_bytes(int type, int cols) {
  switch (type) {
  case TS_F32: return (size_t)cols * 4;
  case TS_F16:
  case TS_BF16: return (size_t)cols * 2;
  case TS_Q8_0: return (size_t)(cols / TS_QK) * TS_Q8_BYTES;
  default: return (size_t)(cols / TS_QK) * TS_Q4_BYTES;
  }
}

/* ---- index lists and elementwise ops ---- */

void ts_select_f32(int32_t *idx, const float *score, int n, float threshold) {
  int32_t *ids = idx + 1;
  int k = 0;
  for (int i = 0; i < n; i++) { /* branchless: the capacity is at least n */
    ids[k] = i;
    k += score[i] >= threshold; /* NaN compares false */
  }
  idx[0] = k;
}

void ts_unary_f32_relu(float *out, const float *x, int n) {
  for (int i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0.0f;
}

void ts_unary_f32_abs_silu(float *out, const float *x, int n) {
  for (int i = 0; i < n; i++) out[i] = fabsf(x[i] / (1.0f + expf(-x[i])));
}

void ts_unary_f32_nonzero(float *out, const float *x, int n) {
  for (int i = 0; i < n; i++) out[i] = x[i] != 0.0f ? 1.0f : 0.0f;
}

/* In double, rounded once, as the reference does. */
void ts_axpy_f32(float *out, const float *x, int n, float alpha) {
  for (int i = 0; i < n; i++) out[i] = (float)((double)out[i] + (double)alpha * (double)x[i]);
}

/* ---- gathered gate and up rows ---- */

typedef struct {
  const ts_mm_kernel *k;
  float *act;
  const float *gate_out; /* [n_ff] precomputed gate, or NULL */
  const uint8_t *gate, *up;
  size_t stride, pfbytes; /* pfbytes: how much of each row to prefetch */
  ts_rows2_fn rows2;      /* gate and up in one pass (same sums as rows_tok), or NULL */
  ts_rows4_fn rows4;      /* two neurons' gate and up in one pass (the same sums), or NULL */
  const uint8_t *xq;
  size_t xstride;
  const int32_t *ids;
  int n, cols, kind;
  int64_t next;
} glu_job;

static inline float act1(float g, float u, int kind) {
  switch (kind) {
  case GLU_SWIGLU: return g / (1.0f + expf(-g)) * u;
  case GLU_REGLU: return (g > 0 ? g : 0.0f) * u;
  default: return (g > 0 ? g : 0.0f) * (u > 0 ? u : 0.0f);
  }
}

/* Ask for the first `bytes` of a row, one cache line at a time, into L2. */
static inline void prefetch_row(const uint8_t *p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, TS_PF_LOCALITY);
}

/* The rows neuron k reads: gate (unless precomputed) and up. */
static inline void prefetch_neuron(const glu_job *j, int k) {
  size_t at = (size_t)j->ids[k] * j->stride;
  prefetch_row(j->up + at, j->pfbytes);
  if (!j->gate_out) prefetch_row(j->gate + at, j->pfbytes);
}

/* act[k] for neurons [k0, k1): two neurons per rows4 call where the library has one, else a
 * neuron's gate and up rows in one rows2 or rows_tok call (two rows `up - gate` bytes apart,
 * so their loads interleave); the next neurons' rows prefetched. */
static void glu_range(const glu_job *j, int k0, int k1) {
  const uint8_t *lo = j->gate, *hi = j->up; /* rows_tok walks rows upwards from lo */
  int swap = lo > hi;
  if (swap) lo = j->up, hi = j->gate;
  size_t apart = (size_t)(hi - lo);
  for (int k = k0; k < k0 + TS_GLU_AHEAD && k < k1; k++) prefetch_neuron(j, k);
  int k = k0;
  if (j->rows4 && !j->gate_out) {
    for (; k + 2 <= k1; k += 2) {
      for (int p = k + TS_GLU_AHEAD; p < k + TS_GLU_AHEAD + 2 && p < k1; p++)
        prefetch_neuron(j, p);
      float gu[4];
      j->rows4(gu, lo + (size_t)j->ids[k] * j->stride, lo + (size_t)j->ids[k + 1] * j->stride,
               apart, j->xq, j->cols);
      j->act[k] = act1(gu[swap], gu[!swap], j->kind);
      j->act[k + 1] = act1(gu[2 + swap], gu[2 + !swap], j->kind);
    }
  }
  for (; k < k1; k++) {
    if (k + TS_GLU_AHEAD < k1) prefetch_neuron(j, k + TS_GLU_AHEAD);
    size_t at = (size_t)j->ids[k] * j->stride;
    float gu[2], g, u;
    if (j->gate_out) {
      g = j->gate_out[j->ids[k]];
      j->k->rows_tok(&u, 1, j->up + at, 0, j->xq, j->xstride, 0, 1, 1, j->cols);
    } else if (j->rows2) {
      j->rows2(gu, lo + at, apart, j->xq, j->cols);
      g = gu[swap], u = gu[!swap];
    } else {
      j->k->rows_tok(gu, 1, lo + at, apart, j->xq, j->xstride, 0, 2, 1, j->cols);
      g = gu[swap], u = gu[!swap];
    }
    j->act[k] = act1(g, u, j->kind);
  }
}

static void glu_task(void *ctx, int ith, int nth) {
  (void)ith;
  (void)nth;
  glu_job *j = ctx;
  for (;;) {
    int64_t k0 = ts_claim(&j->next, TS_GLU_CHUNK);
    if (k0 >= j->n) break;
    glu_range(j, (int)k0, (int)(k0 + TS_GLU_CHUNK < j->n ? k0 + TS_GLU_CHUNK : j->n));
  }
}

static void glu_sparse(int type, float *act, const float *gate_out, const uint8_t *gate,
                       const uint8_t *up, const float *x, const int32_t *idx, int stride, int cols,
                       int kind) {
  size_t rb = row_bytes(type, cols);
  glu_job j = {ts_mm_select(type), act, gate_out, gate, up, (size_t)stride, rb, NULL, NULL, NULL, 0,
               idx + 1, idx[0], cols, kind, 0};
  j.rows2 = ts_rows2_select(j.k);
  j.rows4 = ts_rows4_select(j.k);
  if (j.n <= 0) return;
  if (j.k->xbytes) { /* quantise x once for every row */
    j.xstride = (j.k->xbytes(cols) + 63) & ~(size_t)63;
    uint8_t *xq = scratch_get(j.xstride);
    if (!xq) return;
    j.k->prep(xq, x, cols);
    j.xq = xq;
  } else {
    j.xq = (const uint8_t *)x;
    j.xstride = (size_t)cols * 4;
  }
  if (j.n < 2 * TS_GLU_CHUNK) glu_task(&j, 0, 1);
  else ts_parallel(glu_task, &j);
}

/* ---- sparse down projection ---- */

typedef struct {
  ts_down_fn fn;
  float *out;
  const uint8_t *w;
  size_t stride;
  const int32_t *ids;
  const float *a;
  int n, cols;
  int64_t next, chunk;
} down_job;

static void down_task(void *ctx, int ith, int nth) {
  (void)ith;
  (void)nth;
  down_job *j = ctx;
  for (;;) {
    int64_t c0 = ts_claim(&j->next, j->chunk);
    if (c0 >= j->cols) break;
    int c1 = (int)(c0 + j->chunk < j->cols ? c0 + j->chunk : j->cols);
    j->fn(j->out, j->w, j->stride, j->ids, j->a, j->n, (int)c0, c1);
  }
}

static void down_sparse(int type, float *out, const uint8_t *w, const float *act,
                        const int32_t *idx, int stride, int cols) {
  int count = idx[0];
  /* The neurons with a_k != 0, in ascending k: the only rows read. */
  uint8_t *s = scratch_get((size_t)(count > 0 ? count : 1) * 8);
  if (!s) return;
  int32_t *ids = (int32_t *)s;
  float *a = (float *)(s + (size_t)(count > 0 ? count : 1) * 4);
  int n = 0;
  for (int k = 0; k < count; k++) {
    if (act[k] == 0.0f) continue;
    ids[n] = idx[1 + k];
    a[n++] = act[k];
  }
  int nth = ts_threads();
  int64_t chunk = ((int64_t)cols + nth * TS_DOWN_SPLIT - 1) / (nth * TS_DOWN_SPLIT);
  chunk = (chunk + TS_QK - 1) / TS_QK * TS_QK;
  down_job j = {ts_down_select(type), out, w, (size_t)stride, ids, a, n, cols, 0, chunk};
  if (chunk >= cols || (int64_t)n * cols < 65536) {
    j.chunk = cols;
    down_task(&j, 0, 1);
  } else {
    ts_parallel(down_task, &j);
  }
}

/* ---- the down projection of a batch of tokens ---- */

/* Columns per claimed block: one block's slice of every down_t row (F16: 14336 x 128 B) stays
 * in L2/L3 while each token of the batch adds its rows into it. */
#define TS_BATCH_COLS 64

typedef struct {
  ts_down_fn fn;
  float *out;
  const uint8_t *w;
  size_t stride;
  const int32_t *ids; /* [ntok][rows]: token t's selected neurons with a != 0 */
  const float *a;     /* [ntok][rows]: their activations */
  const int *n;       /* [ntok]: how many */
  int ntok, rows, cols;
  int64_t next;
} batch_job;

static void batch_task(void *ctx, int ith, int nth) {
  (void)ith;
  (void)nth;
  batch_job *j = ctx;
  for (;;) {
    int64_t c0 = ts_claim(&j->next, TS_BATCH_COLS);
    if (c0 >= j->cols) break;
    int c1 = (int)(c0 + TS_BATCH_COLS < j->cols ? c0 + TS_BATCH_COLS : j->cols);
    for (int t = 0; t < j->ntok; t++) {
      size_t at = (size_t)t * j->rows;
      j->fn(j->out + (size_t)t * j->cols, j->w, j->stride, j->ids + at, j->a + at, j->n[t],
            (int)c0, c1);
    }
  }
}

/* Per token: the list select would make (score >= threshold; every neuron without score),
 * less the neurons with a == 0, then the down kernel: the sums of downSparse, bit for bit. */
static void down_batch(int type, float *out, const uint8_t *w, const float *act,
                       const float *score, float threshold, int ntok, int rows, int stride,
                       int cols) {
  if (ntok <= 0) return;
  size_t cells = (size_t)ntok * rows;
  uint8_t *s = scratch_get(cells * 8 + (size_t)ntok * sizeof(int));
  if (!s) return;
  batch_job j = {ts_down_select(type), out, w, (size_t)stride, (int32_t *)s,
                 (float *)(s + cells * 4), (int *)(s + cells * 8), ntok, rows, cols, 0};
  int32_t *ids = (int32_t *)j.ids;
  float *a = (float *)j.a;
  int *n = (int *)j.n;
  for (int t = 0; t < ntok; t++) {
    const float *at = act + (size_t)t * rows, *st = score ? score + (size_t)t * rows : NULL;
    size_t o = (size_t)t * rows;
    int k = 0;
    for (int i = 0; i < rows; i++) {
      if (at[i] == 0.0f || (st && !(st[i] >= threshold))) continue;
      ids[o + k] = i;
      a[o + k++] = at[i];
    }
    n[t] = k;
  }
  ts_parallel(batch_task, &j);
}

/* ---- exported entry points, one per weight type ---- */

#define TS_SPARSE_ENTRIES(T, TYPE)                                                                \
  void ts_glu_sparse_##T(float *act, const uint8_t *gate, const uint8_t *up, const float *x,     \
                         const int32_t *idx, int stride, int cols, int kind) {                    \
    glu_sparse(TYPE, act, NULL, gate, up, x, idx, stride, cols, kind);                            \
  }                                                                                               \
  void ts_glu_sparse_gated_##T(float *act, const float *gate_out, const uint8_t *up,             \
                               const float *x, const int32_t *idx, int stride, int cols,          \
                               int kind) {                                                        \
    glu_sparse(TYPE, act, gate_out, NULL, up, x, idx, stride, cols, kind);                        \
  }                                                                                               \
  void ts_down_sparse_##T(float *out, const uint8_t *down_t, const float *act,                   \
                          const int32_t *idx, int stride, int cols) {                             \
    down_sparse(TYPE, out, down_t, act, idx, stride, cols);                                       \
  }                                                                                               \
  void ts_down_sparse_batch_##T(float *out, const uint8_t *down_t, const float *act,             \
                                const float *score, float threshold, int ntok, int rows,          \
                                int stride, int cols) {                                           \
    down_batch(TYPE, out, down_t, act, score, threshold, ntok, rows, stride, cols);              \
  }

TS_SPARSE_ENTRIES(f32, TS_F32)
TS_SPARSE_ENTRIES(f16, TS_F16)
TS_SPARSE_ENTRIES(bf16, TS_BF16)
TS_SPARSE_ENTRIES(q8_0, TS_Q8_0)
TS_SPARSE_ENTRIES(q4_0, TS_Q4_0)
