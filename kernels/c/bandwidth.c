/*
 * bandwidth.c: ts_read_bandwidth(buf, bytes), the memory read roofline the kernels are
 * measured against: every pool thread sums its slice of buf with wide loads; returns GB/s.
 * Compiled with the library's SIMD flags. Bench: bench/bandwidth.ts.
 */
#include "ts.h"

#include <time.h>

typedef struct {
  const uint64_t *p;
  int64_t n;    /* uint64 words */
  int64_t next; /* next chunk to claim: a descheduled thread just reads less */
  uint64_t sums[256];
} bw_job;

#define BW_CHUNK (1 << 17) /* words: 1 MiB */

static void bw_task(void *ctx, int ith, int nth) {
  (void)nth;
  bw_job *j = ctx;
  uint64_t s[8] = {0};
  for (;;) {
    int64_t i = ts_claim(&j->next, BW_CHUNK);
    if (i >= j->n) break;
    int64_t i1 = i + BW_CHUNK < j->n ? i + BW_CHUNK : j->n;
    for (; i + 8 <= i1; i += 8)
      for (int k = 0; k < 8; k++) s[k] += j->p[i + k];
    for (; i < i1; i++) s[0] += j->p[i];
  }
  j->sums[ith] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

/* Read `bytes` of buf once with all threads; returns GB/s (1e9 bytes per second). */
double ts_read_bandwidth(const uint8_t *buf, int64_t bytes) {
  bw_job j = {(const uint64_t *)buf, bytes / 8, 0, {0}};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  ts_parallel(bw_task, &j);
  clock_gettime(CLOCK_MONOTONIC, &b);
  uint64_t sum = 0;
  for (int i = 0; i < 256; i++) sum += j.sums[i];
  __asm__ __volatile__("" : : "r"(sum)); /* keep the loads */
  double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
  return (double)bytes / s / 1e9;
}
