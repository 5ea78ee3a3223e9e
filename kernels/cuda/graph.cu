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

// Greedy decoding on the device: the last op of each captured step picks the argmax of the
// step's logits, feeds it to the next step ({pos, token} above: pos + 1 and the token) and
// appends it to g_greedy, so steps replay back to back and the host reads their tokens once.
constexpr int GREEDY_MAX = 4096;
static int* g_greedy = nullptr;  // [count, token 0 .. GREEDY_MAX - 1]

// Index of the largest logit, the lowest index on ties, as core/sampler.ts argmax. Logits
// with a NaN (the host sampler refuses them) record -1 for the host to report, and feed
// token 0 to the next step so that it reads nothing out of bounds.
__global__ void __launch_bounds__(1024) argmax_step_kernel(int* step, int* greedy,
                                                           const float* logits, int n) {
  pdl_start();
  __shared__ float wv[32];
  __shared__ int wi[32], wn[32];
  float bv = -INFINITY;
  int bi = INT_MAX, nan = 0;
#pragma unroll 8
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = logits[i];
    nan |= v != v;
    if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
  }
  auto better = [](float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); };
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, bv, o);
    const int i = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(v, i, bv, bi)) bv = v, bi = i;
  }
  nan = __any_sync(0xffffffffu, nan);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) wv[warp] = bv, wi[warp] = bi, wn[warp] = nan;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) {
      if (better(wv[w], wi[w], bv, bi)) bv = wv[w], bi = wi[w];
      nan |= wn[w];
    }
    step[0] += 1, step[1] = nan ? 0 : bi;
    const int c = greedy[0];
    if (c < GREEDY_MAX) greedy[1 + c] = nan ? -1 : bi;
    greedy[0] = c + 1;
  }
}

// Start a run of greedy steps: no tokens picked yet (queued on the stream).
TS_EXPORT int ts_greedy_begin() {
  if (!g_greedy && cudaMalloc(&g_greedy, (1 + GREEDY_MAX) * sizeof(int)) != cudaSuccess) {
    g_greedy = nullptr;
    return (int)cudaErrorMemoryAllocation;
  }
  return (int)cudaMemsetAsync(g_greedy, 0, sizeof(int), ts_stream());
}

// Queue the argmax of logits[0 .. n) as the step's next token (see g_greedy); after
// ts_greedy_begin.
TS_EXPORT int ts_step_argmax(const float* logits, int n) {
  if (!g_greedy || !ts_step_ptr() || n < 1) return (int)cudaErrorInvalidValue;
  ts_launch(argmax_step_kernel, 1, 1024, g_step, g_greedy, logits, n);
  return ts_launch_status();
}

// Wait for the queued steps, then copy the first n tokens picked since ts_greedy_begin into
// out; cudaErrorInvalidValue when fewer were picked.
TS_EXPORT int ts_greedy_read(int* out, int n) {
  if (!g_greedy || n < 0 || n > GREEDY_MAX) return (int)cudaErrorInvalidValue;
  int count = 0;
  cudaError_t e = cudaMemcpyAsync(&count, g_greedy, sizeof(int), cudaMemcpyDeviceToHost, ts_stream());
  if (e == cudaSuccess) e = cudaStreamSynchronize(ts_stream());
  if (e != cudaSuccess) return (int)e;
  if (count < n) return (int)cudaErrorInvalidValue;
  e = cudaMemcpy(out, g_greedy + 1, (size_t)n * sizeof(int), cudaMemcpyDeviceToHost);
  return (int)e;
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
