// Shared by matvec.cu and matvec_xreg.cu: a batch of matrices that share x (Q, K, V) or a
// gate/up pair, and the epilogues. Build: see ts_cuda.h.
#pragma once
#include "ts_cuda.h"

constexpr int MV_WARPS = 8;  // warps per block
constexpr int MV_LOADS = 8;  // 16-byte weight loads in flight per lane (over all rows read)
constexpr int MV_JOBS = 3;

// Epilogues: none, relu, or a gate/up pair with the gated activation.
enum { EPI_NONE = 0, EPI_RELU = 1, EPI_SWIGLU = 2, EPI_REGLU = 3, EPI_DRELU = 4 };

struct MvJob {
  float* out;           // [n_tok, rows]
  const uint8_t* w;     // [rows, cols]
  float* out2;          // up output of a pair
  const uint8_t* w2;    // up weight of a pair (null for single matrices)
  int rows, wpr, block0;  // warps per row, first block (matvec_xreg: first row) of this job
};
struct MvBatch {
  MvJob job[MV_JOBS];
  int n_job, epi;
  // matvec_xreg.cu only (null: off). Prologue: x is rmsnorm(x) · norm_w, block 0 stores it
  // to norm_out (norm_side: only stores it; the rows multiply the x given, as a predictor
  // reading the residual next to the FFN's norm of it). Epilogues of one matrix: res_out = res_a + y (the residual add);
  // sel_idx = [count, rows with y >= sel_thr, ascending] (select; sel_ids/sel_cnt: scratch).
  const float* norm_w;
  float* norm_out;
  float eps;
  int norm_side;  // 1: store the normed x to norm_out, but multiply by x as given

  float* res_out;
  const float* res_a;
  int* sel_idx;
  int* sel_ids;  // [rows]: block q's survivors from its first row on
  int* sel_cnt;  // [grid]
  float sel_thr;
  int sel_local;  // 1: stop at the per-block lists (ts_local_sel); the next glu places them
};

__device__ __forceinline__ float epilogue(int epi, float g, float u) {
  if (epi == EPI_SWIGLU) return g / (1.0f + expf(-g)) * u;
  if (epi == EPI_REGLU) return fmaxf(g, 0.f) * u;
  return fmaxf(g, 0.f) * fmaxf(u, 0.f);
}

// The matvec's first-rows mode (ts_matvec_config): 0 none, 1 asked into L2 before the PDL wait,
// 2 (default) loaded into registers before the wait (matvec_xreg.cu).
int ts_matvec_prefetch();

// matvec_xreg.cu: one token, F16/BF16/Q8_0/Q4_0, cols a whole number of its chunks; false when
// it does not apply (the caller runs the general kernel).
template <int T, int ROWS>
bool matvec_xreg(MvBatch b, const float* x, int cols, int prefetch);
// Blocks of a select launch at most: the last block scans their counts in shared memory.
constexpr int XR_SEL_MAX_GRID = 2048;
