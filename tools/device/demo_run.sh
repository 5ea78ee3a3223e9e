#!/usr/bin/env bash
# Runs on the GPU machine (the device tool), from the repo root: unpacks the carried deno (as
# tools/device/cuda_run.sh does), then runs the README's demo on the shipped model (the backend
# is chosen by probing, so it should be cuda), and the forward-pass tests that compare against
# transformers and against the model card, on the default backend. Logs go to $OUT.
set -o pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
source tools/device/_env.sh
deno run -A --no-check plugins/cuda/_build.ts 2>&1 | tail -2
deno run -A --no-check main.ts demo 2>&1 | tee "$OUT/demo.log"
deno run -A --no-check main.ts demo --model models/tiny-turbosparse-moe.gguf --prompt "Call me Ishmael." 2>&1 | tee "$OUT/demo_moe.log"
deno test -A --no-check tests/core/golden_test.ts tests/models/ 2>&1 | tee "$OUT/tests.log" | grep -v " ok " | tail -30
