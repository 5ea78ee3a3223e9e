// Decode-step capture: the whole step is recorded once into a CUDA graph and replayed for
// each later token, so the host issues one launch instead of hundreds. What changes between
// tokens lives in device memory (the step's position and token id, written before each
// replay); the kernels of a captured step read it there (the `dpos`/`dtok` arguments).
// Scratch areas keep their addresses while a graph lives: growing one bumps an epoch, and
// plugins/cuda re-captures graphs made in an older epoch.
//
// Build: see ts_cuda.h. Bench: bench/cuda_decode.ts (host time per token).
#include "ts_cuda.h"

static int* g_step = nullptr;  // [pos, token] of the step being run or replayed
static int g_host_step[2];

// Device pointer to {pos, token}, allocated on first use (null on failure).
TS_EXPORT int* ts_step_ptr() {
  if (!g_step && cudaMalloc(&g_step, 2 * sizeof(int)) != cudaSuccess) g_step = nullptr;
  return g_step;
}

// Queue the write of this step's position and token (ordered before the replay on the stream).
TS_EXPORT int ts_step_set(int pos, int token) {
  if (!ts_step_ptr()) return (int)cudaErrorMemoryAllocation;
  g_host_step[0] = pos, g_host_step[1] = token;
  return (int)cudaMemcpyAsync(g_step, g_host_step, sizeof g_host_step, cudaMemcpyHostToDevice,
                              ts_stream());
}

TS_EXPORT int ts_graph_begin() {
  return (int)cudaStreamBeginCapture(ts_stream(), cudaStreamCaptureModeThreadLocal);
}

// End the capture; *exec receives the instantiated graph (null when capture failed).
TS_EXPORT int ts_graph_end(void** exec) {
  cudaGraph_t g = nullptr;
  *exec = nullptr;
  cudaError_t e = cudaStreamEndCapture(ts_stream(), &g);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky capture error
    return (int)e;
  }
  cudaGraphExec_t x = nullptr;
  e = cudaGraphInstantiate(&x, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) return (int)e;
  *exec = (void*)x;
  return 0;
}

TS_EXPORT int ts_graph_launch(void* exec) {
  return (int)cudaGraphLaunch((cudaGraphExec_t)exec, ts_stream());
}

TS_EXPORT int ts_graph_free(void* exec) {
  cudaStreamSynchronize(ts_stream());
  return (int)cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

// Bench only: milliseconds per replay of `exec`, the median of `reps` replays each timed with
// events (one warm-up replay first); -1 on error.
TS_EXPORT double ts_graph_time(void* exec, int reps) {
  cudaEvent_t ev[2];
  cudaEventCreate(&ev[0]), cudaEventCreate(&ev[1]);
  float ms[64];
  if (reps > 64) reps = 64;
  if (reps < 1) reps = 1;
  bool ok = cudaGraphLaunch((cudaGraphExec_t)exec, ts_stream()) == cudaSuccess;
  for (int i = 0; i < reps && ok; i++) {
    cudaEventRecord(ev[0], ts_stream());
    ok = cudaGraphLaunch((cudaGraphExec_t)exec, ts_stream()) == cudaSuccess;
    cudaEventRecord(ev[1], ts_stream());
    ok = ok && cudaEventSynchronize(ev[1]) == cudaSuccess;
    ok = ok && cudaEventElapsedTime(&ms[i], ev[0], ev[1]) == cudaSuccess;
  }
  cudaEventDestroy(ev[0]), cudaEventDestroy(ev[1]);
  if (!ok) return -1;
  for (int i = 1; i < reps; i++) {  // insertion sort: reps is small
    const float v = ms[i];
    int j = i - 1;
    while (j >= 0 && ms[j] > v) ms[j + 1] = ms[j], j--;
    ms[j + 1] = v;
  }
  return ms[reps / 2];
}
