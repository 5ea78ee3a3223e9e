/*
 * pool.c: the persistent thread pool every ts_* kernel runs on.
 *
 * Created once by ts_set_threads(n) (the plugins call it from open()); the calling thread is
 * thread 0, n-1 workers spin briefly for the next job, then sleep on a condition variable.
 * No thread is created per call. Jobs split work by output rows, and each row is computed by
 * one thread with a fixed sum order, so results never depend on scheduling.
 * Build: plugins/_native/build.ts; bench: bench/decode.ts (per-op overhead shows at nTok=1).
 */
#include "ts.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TS_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define TS_RELAX() __asm__ __volatile__("yield")
#else
#define TS_RELAX() ((void)0)
#endif

/* Pause iterations a worker spins before sleeping (about 0.2-2 ms). */
#define TS_SPIN 30000
/* Spins between sched_yield() calls: on an oversubscribed machine (or under qemu) a spinning
 * thread must not hold the core the thread it waits for needs. */
#define TS_YIELD_EVERY 256

static struct {
  int n; /* threads including the caller */
  pthread_t *tids;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_uint_fast64_t gen; /* bumped once per job */
  atomic_int pending;       /* workers still inside the current job */
  atomic_int sleepers;
  atomic_int stop;
  ts_task task;
  void *ctx;
} P = {.n = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

typedef struct {
  int ith;
  uint64_t gen; /* generation at creation: a job published before the thread runs is not missed */
} worker_arg;

static void *worker(void *arg) {
  int ith = ((worker_arg *)arg)->ith;
  uint64_t seen = ((worker_arg *)arg)->gen;
  free(arg);
  for (;;) {
    int spins = 0;
    while (atomic_load_explicit(&P.gen, memory_order_acquire) == seen) {
      if (atomic_load_explicit(&P.stop, memory_order_relaxed)) return NULL;
      if (++spins < TS_SPIN) {
        if (spins % TS_YIELD_EVERY == 0) sched_yield();
        else TS_RELAX();
        continue;
      }
      pthread_mutex_lock(&P.mu);
      atomic_fetch_add(&P.sleepers, 1); /* seq_cst pairs with the bump in ts_parallel */
      while (atomic_load(&P.gen) == seen && !atomic_load(&P.stop)) pthread_cond_wait(&P.cv, &P.mu);
      atomic_fetch_sub(&P.sleepers, 1);
      pthread_mutex_unlock(&P.mu);
      spins = 0;
    }
    if (atomic_load(&P.stop)) return NULL;
    seen = atomic_load(&P.gen);
    P.task(P.ctx, ith, P.n);
    atomic_fetch_sub_explicit(&P.pending, 1, memory_order_release);
  }
}

static void pool_stop(void) {
  if (P.n <= 1) return;
  pthread_mutex_lock(&P.mu);
  atomic_store(&P.stop, 1);
  pthread_cond_broadcast(&P.cv);
  pthread_mutex_unlock(&P.mu);
  for (int i = 1; i < P.n; i++) pthread_join(P.tids[i], NULL);
  free(P.tids);
  P.tids = NULL;
  P.n = 1;
  atomic_store(&P.stop, 0);
}

/* Join the workers when the library is unloaded (dlclose, or the host process exiting):
 * a worker still spinning in code that is about to be unmapped would crash the process. */
__attribute__((destructor)) static void pool_unload(void) { pool_stop(); }

/* Resize the pool to n threads (n <= 0 stops the workers); returns the size in effect. */
int ts_set_threads(int n) {
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  if (n == P.n) return n;
  pool_stop();
  if (n == 1) return 1;
  P.tids = calloc((size_t)n, sizeof(pthread_t));
  if (!P.tids) return 1;
  int started = 1;
  for (int i = 1; i < n; i++) {
    worker_arg *a = malloc(sizeof *a);
    if (!a) break;
    a->ith = i;
    a->gen = atomic_load(&P.gen);
    P.n = i + 1; /* workers read P.n only inside jobs, after this loop */
    if (pthread_create(&P.tids[i], NULL, worker, a) != 0) {
      free(a);
      P.n = i;
      break;
    }
    started = i + 1;
  }
  P.n = started;
  return started;
}

int ts_threads(void) { return P.n; }

/* Exported alias of ts_threads for the plugins. */
int ts_get_threads(void) { return P.n; }

void ts_parallel(ts_task task, void *ctx) {
  if (P.n <= 1) {
    task(ctx, 0, 1);
    return;
  }
  P.task = task;
  P.ctx = ctx;
  atomic_store_explicit(&P.pending, P.n - 1, memory_order_relaxed);
  atomic_fetch_add(&P.gen, 1); /* seq_cst: publishes task/ctx, orders against sleepers */
  if (atomic_load(&P.sleepers) > 0) {
    pthread_mutex_lock(&P.mu);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
  }
  task(ctx, 0, P.n);
  for (int spins = 1; atomic_load_explicit(&P.pending, memory_order_acquire) > 0; spins++) {
    if (spins % TS_YIELD_EVERY == 0) sched_yield();
    else TS_RELAX();
  }
}

int64_t ts_claim(int64_t *counter, int64_t chunk) {
  return atomic_fetch_add_explicit((_Atomic int64_t *)counter, chunk, memory_order_relaxed);
}
