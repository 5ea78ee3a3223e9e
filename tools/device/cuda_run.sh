#!/usr/bin/env bash
# Runs on the GPU machine (the device tool), from the repo root: unpacks the carried deno and
# node_modules (tools/device/_env.sh: no network there; deno.xz travels split in two, the first
# part parked in build/carry/ by an earlier call because one call may carry only 64 MiB), builds
# build/libts_cuda.so with nvcc, then
# runs the CUDA conformance tests, the golden forward-pass test, bench/cuda_decode.ts (dense,
# then sparse at 10% and 5% active) and the sparse/MoE forward tests.
# Logs go to $OUT (or ./out). Usage: bash tools/device/cuda_run.sh [bench args...]
set -o pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
source tools/device/_env.sh
{ nvidia-smi -L; nvcc --version | tail -1; deno --version | head -1; date -u; } 2>&1 | tee "$OUT/machine.log"
s=$(date +%s)
deno run -A --no-check plugins/cuda/_build.ts 2>&1 | tee "$OUT/build.log"
echo "build: $(( $(date +%s) - s )) s" | tee -a "$OUT/build.log"
deno test -A --no-check tests/plugins/cuda_test.ts tests/plugins/cuda_sparse_test.ts 2>&1 | tee "$OUT/conformance.log" | grep -v " ok " | tail -60
deno test -A --no-check --filter cuda tests/core/golden_test.ts 2>&1 | tee "$OUT/golden.log" | tail -12
deno run -A --no-check bench/cuda_decode.ts --json "$OUT/bench_f16.json" "$@" 2>&1 | tee "$OUT/bench.log"
for f in 0.1 0.05; do
  deno run -A --no-check bench/cuda_decode.ts --sparse $f --prompt 64 --json "$OUT/bench_sparse_$f.json" "$@" 2>&1 | tee -a "$OUT/bench.log"
done
deno test -A --no-check tests/core/sparse_test.ts tests/core/moe_test.ts 2>&1 | tee "$OUT/sparse_tests.log" | grep -v " ok " | tail -20
