#!/usr/bin/env bash
# Runs on the GPU machine (the device tool), from the repo root, after the deno parts are in
# place (see _env.sh). Two stages, each fitting one device call (builds the library first):
#   test   the CUDA tests, the CUDA golden logits, the sparse/MoE forward tests;
#   bench  decode speed with F16, Q8_0 and Q4_0 predictors (alternating, three rounds), a Q8_0
#          model dense and sparse, and the per-part breakdown of each predictor type.
# Usage: bash tools/device/quant_run.sh test|bench   (logs in $OUT)
set -o pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
source tools/device/_env.sh
stage=${1:-test}
s=$(date +%s); deno run -A --no-check plugins/cuda/_build.ts > "$OUT/build.log" 2>&1
echo "build rc $? $(( $(date +%s) - s )) s"
if [ "$stage" = test ]; then
  s=$(date +%s); timeout 400 deno test -A --no-check tests/plugins/cuda_test.ts tests/plugins/cuda_sparse_test.ts > "$OUT/conformance.log" 2>&1
  echo "cuda_test rc $? $(( $(date +%s) - s )) s"; grep -E "FAILED|passed|failed|=> " "$OUT/conformance.log" | tail -8
  timeout 60 deno test -A --no-check --filter cuda tests/core/golden_test.ts > "$OUT/golden.log" 2>&1
  echo "golden rc $?"; grep -E "passed|failed" "$OUT/golden.log" | tail -1
  timeout 90 deno test -A --no-check tests/core/sparse_test.ts tests/core/moe_test.ts > "$OUT/sparse_tests.log" 2>&1
  echo "sparse rc $?"; grep -E "passed|failed" "$OUT/sparse_tests.log" | tail -1
  exit 0
fi
b() { timeout 120 deno run -A --no-check bench/cuda_decode.ts --quick "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -E "decode:|breakdown"; }
for r in 1 2 3; do
  for p in f16 q8_0 q4_0; do echo "sparse 10%, $p predictor: $(b --sparse 0.1 --prompt 64 --pred $p)"; done
done
echo "dense f16: $(b --prompt 512)"
echo "dense q8_0: $(b --prompt 512 --dtype q8_0)"
echo "sparse 10%, q8_0 model: $(b --sparse 0.1 --prompt 64 --dtype q8_0)"
for p in f16 q8_0; do echo "breakdown, $p predictor: $(b --sparse 0.1 --prompt 64 --pred $p --breakdown)"; done
