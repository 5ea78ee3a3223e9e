// Kernel-boundary cost on the GPU: a chain of N kernels captured in one CUDA graph, each
// streaming its own slice of weights and reading one value its predecessor wrote, with the
// dependency between neighbours kept either by programmatic dependent launch alone
// (griddepcontrol.wait: the whole previous grid finished and flushed) or by a counter that each
// block of the previous kernel bumps when its writes are out (the waiting block polls it).
//
// Build and run (on the GPU machine):
//   nvcc -O3 -std=c++17 -arch=sm_90 -o build/cuda_sync bench/cuda_sync.cu && build/cuda_sync
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include <algorithm>
#include <vector>

#define CK(x)                                                               \
  do {                                                                      \
    cudaError_t e = (x);                                                    \
    if (e != cudaSuccess) {                                                 \
      fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); \
      return 1;                                                             \
    }                                                                       \
  } while (0)

constexpr int THREADS = 256, PRE = 4;

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// mode 0: PDL wait; 1: counter wait; 2: counter wait with __nanosleep between polls.
template <int MODE>
__global__ void __launch_bounds__(THREADS)
link(const uint4* w, int per_block, const float* prev, float* out, unsigned* sig,
     const unsigned* wait, unsigned want) {
  const uint4* p = w + (size_t)blockIdx.x * per_block;
  uint4 r[PRE];
#pragma unroll
  for (int i = 0; i < PRE; i++) {
    const int k = threadIdx.x + i * THREADS;
    r[i] = k < per_block ? __ldg(p + k) : make_uint4(0, 0, 0, 0);
  }
  if (MODE == 0 || !wait) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
  } else {
    if (threadIdx.x == 0) {
      while (ld_acquire(wait) < want) {
        if (MODE == 2) __nanosleep(64);
      }
    }
    __syncthreads();
  }
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  unsigned acc = 0;
#pragma unroll
  for (int i = 0; i < PRE; i++) acc += r[i].x ^ r[i].y ^ r[i].z ^ r[i].w;
  for (int k = threadIdx.x + PRE * THREADS; k < per_block; k += THREADS) {
    const uint4 v = __ldg(p + k);
    acc += v.x ^ v.y ^ v.z ^ v.w;
  }
  __shared__ unsigned red[THREADS / 32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned s = 0;
    for (int i = 0; i < THREADS / 32; i++) s += red[i];
    out[blockIdx.x] = prev[(blockIdx.x * 7) % gridDim.x] + 1.f + (float)(s & 2);
  }
  if (MODE != 0) {
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(sig, 1u);
    }
  }
}

using Link = void (*)(const uint4*, int, const float*, float*, unsigned*, const unsigned*,
                     unsigned);
constexpr Link LINKS[3] = {link<0>, link<1>, link<2>};

static cudaError_t launch(int mode, const uint4* w, int per_block, int grid, const float* prev,
                          float* out, unsigned* sig, const unsigned* wait, unsigned want,
                          cudaStream_t s) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid, cfg.blockDim = THREADS, cfg.stream = s, cfg.attrs = attr, cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, LINKS[mode], w, per_block, prev, out, sig, wait, want);
}

int main() {
  const int n = 224, reps = 12;
  bool bad_chain = false;
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const size_t mb[] = {0, 4, 16};
  const size_t max_bytes = (size_t)n * 16 << 20;
  uint4* w;
  CK(cudaMalloc(&w, max_bytes + (1 << 20)));
  CK(cudaMemset(w, 1, max_bytes + (1 << 20)));
  float* outs;
  CK(cudaMalloc(&outs, (size_t)(n + 1) * 4096 * sizeof(float)));
  CK(cudaMemset(outs, 0, (size_t)(n + 1) * 4096 * sizeof(float)));
  unsigned* ctr;
  CK(cudaMalloc(&ctr, (n + 1) * sizeof(unsigned)));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  printf("%d SMs; chain of %d kernels in one graph, %d replays; us per kernel (median)\n", sms,
         n, reps);
  printf("%-10s %-6s %-10s %-10s %-10s %-10s\n", "MB/kernel", "grid", "pdl", "counter",
         "cnt+sleep", "counter/pdl");
  for (size_t m : mb) {
    for (int per_sm : {1, 3}) {
      const int grid = sms * per_sm;
      const int per_block = m == 0 ? PRE * THREADS : (int)((m << 20) / 16 / grid);
      float res[3];
      for (int mode = 0; mode < 3; mode++) {
        cudaGraph_t g;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        CK(cudaMemsetAsync(ctr, 0, (n + 1) * sizeof(unsigned), s));
        for (int k = 0; k < n; k++) {
          const uint4* wk = w + (m == 0 ? 0 : (size_t)k * (m << 20) / 16);
          const float* prev = outs + (size_t)k * 4096;
          float* out = outs + (size_t)(k + 1) * 4096;
          const unsigned* wt = k == 0 ? nullptr : ctr + k - 1;
          CK(launch(mode, wk, per_block, grid, prev, out, ctr + k, wt, grid, s));
        }
        CK(cudaStreamEndCapture(s, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        std::vector<float> t;
        for (int r = 0; r < reps + 2; r++) {
          // stale values from the last replay would hide a race: clear the chain first
          CK(cudaMemsetAsync(outs + 4096, 0, (size_t)n * 4096 * sizeof(float), s));
          CK(cudaEventRecord(a, s));
          CK(cudaGraphLaunch(ge, s));
          CK(cudaEventRecord(b, s));
          CK(cudaEventSynchronize(b));
          float ms;
          CK(cudaEventElapsedTime(&ms, a, b));
          if (r >= 2) t.push_back(ms * 1000.f / n);
        }
        std::sort(t.begin(), t.end());
        res[mode] = t[t.size() / 2];
        // every kernel adds 1 to a value of its predecessor's (the weights' bytes are all 1, so
        // s & 2 is 0): a kernel that read before its predecessor wrote leaves less than n
        std::vector<float> last(grid);
        CK(cudaMemcpy(last.data(), outs + (size_t)n * 4096, grid * sizeof(float),
                      cudaMemcpyDeviceToHost));
        for (int i = 0; i < grid; i++) {
          if (last[i] != (float)n) {
            printf("RACE: mode %d, %zu MB, grid %d: value %d is %g, not %d\n", mode, m, grid, i,
                   last[i], n);
            bad_chain = true;
            break;
          }
        }
        CK(cudaGraphExecDestroy(ge));
        CK(cudaGraphDestroy(g));
      }
      printf("%-10zu %-6d %-10.2f %-10.2f %-10.2f %-10.3f\n", m, grid, res[0], res[1], res[2],
             res[1] / res[0]);
    }
  }
  printf(bad_chain ? "chain values: WRONG\n" : "chain values: all %d, every mode and size\n", n);
  return bad_chain;
}
