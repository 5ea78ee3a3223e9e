/*
 * ops.c: every Backend op except matmul, in portable C11 (core/backend.ts defines them).
 *   ts_embed_{f32,f16,bf16,q8_0,q4_0}  rows of an embedding table to f32
 *   ts_rmsnorm_f32, ts_rope_f32, ts_attention_f32 (causal GQA, two-pass softmax; libts_x86
 *   runs the tiled attention_avx2.c when head_dim % 8 == 0)
 *   ts_add_f32, ts_glu_f32_{swiglu,reglu,drelu}, ts_copy_f32
 * Compiled into every library with that library's flags, so gcc vectorises the plain loops.
 * Sums use fixed 8-lane partial sums: the order depends on nothing but the sizes.
 * Build: plugins/_native/build.ts; bench: bench/decode.ts.
 */
#include "ts.h"

#include <math.h>
#include <stdlib.h>

/* ---- embed ---- */

static void dequant_row(float *out, const uint8_t *row, int type, int cols) {
  switch (type) {
  case TS_F32:
    memcpy(out, row, (size_t)cols * 4);
    return;
  case TS_F16:
    for (int i = 0; i < cols; i++) out[i] = ts_f16_to_f32(ts_load_u16(row + 2 * i));
    return;
  case TS_BF16:
    for (int i = 0; i < cols; i++) out[i] = ts_bf16_to_f32(ts_load_u16(row + 2 * i));
    return;
  case TS_Q8_0:
    for (int b = 0; b < cols / TS_QK; b++) {
      const uint8_t *p = row + (size_t)b * TS_Q8_BYTES;
      float d = ts_f16_to_f32(ts_load_u16(p));
      for (int j = 0; j < TS_QK; j++) out[b * TS_QK + j] = d * (float)(int8_t)p[2 + j];
    }
    return;
  case TS_Q4_0:
    for (int b = 0; b < cols / TS_QK; b++) {
      const uint8_t *p = row + (size_t)b * TS_Q4_BYTES;
      float d = ts_f16_to_f32(ts_load_u16(p));
      for (int j = 0; j < TS_QK / 2; j++) {
        out[b * TS_QK + j] = d * (float)((p[2 + j] & 0x0f) - 8);
        out[b * TS_QK + j + TS_QK / 2] = d * (float)((p[2 + j] >> 4) - 8);
      }
    }
    return;
  }
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

static void embed(float *out, const uint8_t *table, const int32_t *tokens, int ntok, int cols,
                  int type) {
  size_t rb = row_bytes(type, cols);
  for (int t = 0; t < ntok; t++) dequant_row(out + (size_t)t * cols, table + rb * (size_t)tokens[t], type, cols);
}

void ts_embed_f32(float *o, const uint8_t *w, const int32_t *tok, int n, int c) { embed(o, w, tok, n, c, TS_F32); }
void ts_embed_f16(float *o, const uint8_t *w, const int32_t *tok, int n, int c) { embed(o, w, tok, n, c, TS_F16); }
void ts_embed_bf16(float *o, const uint8_t *w, const int32_t *tok, int n, int c) { embed(o, w, tok, n, c, TS_BF16); }
void ts_embed_q8_0(float *o, const uint8_t *w, const int32_t *tok, int n, int c) { embed(o, w, tok, n, c, TS_Q8_0); }
void ts_embed_q4_0(float *o, const uint8_t *w, const int32_t *tok, int n, int c) { embed(o, w, tok, n, c, TS_Q4_0); }

/* ---- elementwise ---- */

/* Split [0, n) into per-thread slices; small ranges stay on the calling thread. */
typedef struct {
  float *out;
  const float *a, *b;
  int64_t n;
  int kind;
} ew_job;

enum { EW_ADD, EW_SWIGLU, EW_REGLU, EW_DRELU };

static void ew_range(const ew_job *j, int64_t i0, int64_t i1) {
  float *o = j->out;
  const float *a = j->a, *b = j->b;
  switch (j->kind) {
  case EW_ADD:
    for (int64_t i = i0; i < i1; i++) o[i] = a[i] + b[i];
    return;
  case EW_SWIGLU:
    for (int64_t i = i0; i < i1; i++) o[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
    return;
  case EW_REGLU:
    for (int64_t i = i0; i < i1; i++) o[i] = (a[i] > 0 ? a[i] : 0.0f) * b[i];
    return;
  case EW_DRELU:
    for (int64_t i = i0; i < i1; i++) o[i] = (a[i] > 0 ? a[i] : 0.0f) * (b[i] > 0 ? b[i] : 0.0f);
    return;
  }
}

static void ew_task(void *ctx, int ith, int nth) {
  const ew_job *j = ctx;
  ew_range(j, j->n * ith / nth, j->n * (ith + 1) / nth);
}

static void ew(float *out, const float *a, const float *b, int n, int kind) {
  ew_job j = {out, a, b, n, kind};
  if (n < 65536 || ts_threads() == 1) ew_range(&j, 0, n);
  else ts_parallel(ew_task, &j);
}

void ts_add_f32(float *out, const float *a, const float *b, int n) { ew(out, a, b, n, EW_ADD); }
void ts_glu_f32_swiglu(float *out, const float *g, const float *u, int n) { ew(out, g, u, n, EW_SWIGLU); }
void ts_glu_f32_reglu(float *out, const float *g, const float *u, int n) { ew(out, g, u, n, EW_REGLU); }
void ts_glu_f32_drelu(float *out, const float *g, const float *u, int n) { ew(out, g, u, n, EW_DRELU); }

void ts_copy_f32(float *dst, const float *src, int n) { memmove(dst, src, (size_t)n * 4); }

/* ---- rmsnorm ---- */

void ts_rmsnorm_f32(float *out, const float *x, const float *w, int ntok, int n, float eps) {
  for (int t = 0; t < ntok; t++) {
    const float *xt = x + (size_t)t * n;
    float *ot = out + (size_t)t * n;
    double s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; j++) s[j] += (double)xt[i + j] * xt[i + j];
    for (; i < n; i++) s[0] += (double)xt[i] * xt[i];
    double ss = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    for (i = 0; i < n; i++) ot[i] = xt[i] * inv * w[i];
  }
}

/* ---- rope ---- */

void ts_rope_f32(float *x, int ntok, int nhead, int hd, int pos0, int dim, double base) {
  for (int t = 0; t < ntok; t++) {
    for (int i = 0; 2 * i < dim; i++) {
      double theta = (double)(pos0 + t) * pow(base, (-2.0 * i) / dim);
      float c = (float)cos(theta), s = (float)sin(theta);
      for (int h = 0; h < nhead; h++) {
        float *p = x + ((size_t)t * nhead + h) * hd + 2 * i;
        float x0 = p[0], x1 = p[1];
        p[0] = x0 * c - x1 * s;
        p[1] = x0 * s + x1 * c;
      }
    }
  }
}

/* ---- attention ---- */

typedef struct {
  float *out;
  const float *q, *k, *v;
  int ntok, pos0, nhead, nkv, hd;
  float scale;
  int64_t next; /* next (token, head) pair to claim */
} attn_job;

static float dot8(const float *a, const float *b, int n) {
  float s[8] = {0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
  for (; i < n; i++) s[0] += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* One (token, head): scores for positions 0..last, softmax, weighted sum of v rows. */
static void attn_one(const attn_job *j, int t, int h, float *scores, float *qloc, float *acc) {
  int hd = j->hd, last = j->pos0 + t, g = h / (j->nhead / j->nkv);
  size_t qo = ((size_t)t * j->nhead + h) * hd;
  memcpy(qloc, j->q + qo, (size_t)hd * 4); /* out may alias q */
  float max = -INFINITY;
  for (int p = 0; p <= last; p++) {
    float s = dot8(qloc, j->k + ((size_t)p * j->nkv + g) * hd, hd) * j->scale;
    scores[p] = s;
    if (s > max) max = s;
  }
  double sum = 0;
  for (int p = 0; p <= last; p++) {
    scores[p] = expf(scores[p] - max);
    sum += scores[p];
  }
  float inv = (float)(1.0 / sum);
  for (int d = 0; d < hd; d++) acc[d] = 0;
  for (int p = 0; p <= last; p++) {
    const float *vp = j->v + ((size_t)p * j->nkv + g) * hd;
    float wgt = scores[p] * inv;
    for (int d = 0; d < hd; d++) acc[d] += wgt * vp[d];
  }
  memcpy(j->out + qo, acc, (size_t)hd * 4);
}

static void attn_task(void *ctx, int ith, int nth) {
  (void)ith;
  (void)nth;
  attn_job *j = ctx;
  int npos = j->pos0 + j->ntok;
  float *scratch = malloc(((size_t)npos + 2 * (size_t)j->hd) * sizeof(float));
  if (!scratch) return; /* out keeps its old values; malloc of a few KB does not fail */
  int64_t total = (int64_t)j->ntok * j->nhead;
  for (;;) {
    int64_t i = ts_claim(&j->next, 1);
    if (i >= total) break;
    attn_one(j, (int)(i / j->nhead), (int)(i % j->nhead), scratch, scratch + npos,
             scratch + npos + j->hd);
  }
  free(scratch);
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(TS_ATTN_PLAIN)
/* attention_avx2.c: tiles of a GQA group x tokens; libts_x86 only (-DTS_ATTN_PLAIN: this twin). */
void ts_attention_f32_avx2(float *out, const float *q, const float *k, const float *v, int ntok,
                           int pos0, int nhead, int nkv, int hd, float scale);
#define TS_ATTN_AVX2 1
#endif

void ts_attention_f32(float *out, const float *q, const float *k, const float *v, int ntok,
                      int pos0, int nhead, int nkv, int hd, float scale) {
  attn_job j = {out, q, k, v, ntok, pos0, nhead, nkv, hd, scale, 0};
  if (ntok == 0 || nhead == 0 || hd == 0) return;
#ifdef TS_ATTN_AVX2
  if (hd % 8 == 0) {
    ts_attention_f32_avx2(out, q, k, v, ntok, pos0, nhead, nkv, hd, scale);
    return;
  }
#endif
  ts_parallel(attn_task, &j);
}
