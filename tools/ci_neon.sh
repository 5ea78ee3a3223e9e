#!/usr/bin/env bash
# CI for the NEON backend on an x86-64 Linux host: install the aarch64 cross compiler and
# qemu-user, fetch Deno's aarch64 binary from npm, cross-build build/libts_neon.so and
# build/libts_scalar_aarch64.so, then run tests/plugins/cpu_neon_test.ts (shared native
# suite + conformance("cpu_neon")) under emulation: once on a CPU with the dot-product
# extension (qemu's "max"), once on a Cortex-A72 without it. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

DENO_VERSION=2.9.6
SYSROOT=/usr/aarch64-linux-gnu
CACHE=build/ci_neon

if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi

mkdir -p "$CACHE"
if [ ! -x "$CACHE/deno" ]; then
  (cd "$CACHE" && npm pack "@deno/linux-arm64-glibc@$DENO_VERSION" >/dev/null &&
    tar xzf "deno-linux-arm64-glibc-$DENO_VERSION.tgz" && mv package/deno deno && rm -rf package ./*.tgz)
fi

npx -y "deno@$DENO_VERSION" run --allow-read --allow-write=build --allow-run=aarch64-linux-gnu-gcc \
  plugins/_native/build.ts --arch aarch64 --cc aarch64-linux-gnu-gcc neon scalar

# No --allow-run: the emulated Deno must use the cross-built libraries, not build its own.
# Type-checking under emulation is too slow; `deno check` runs natively in the main CI.
run_tests() {
  qemu-aarch64 -L "$SYSROOT" "$CACHE/deno" test --no-check --allow-ffi --allow-read --allow-env \
    "$@" tests/plugins/cpu_neon_test.ts
}

echo "== cpu_neon with dotprod (qemu max CPU): native suite + conformance"
QEMU_CPU=max run_tests
echo "== cpu_neon without dotprod (Cortex-A72): native suite"
QEMU_CPU=cortex-a72 run_tests --filter "/^cpu_neon /"
echo "== cpu_neon sparse ops: identical results for 1, 2 and 3 threads (qemu max CPU)"
QEMU_CPU=max qemu-aarch64 -L "$SYSROOT" "$CACHE/deno" test --no-check --allow-ffi --allow-read --allow-env \
  --filter "/^cpu_neon /" tests/plugins/cpu_sparse_test.ts
echo "cpu_neon: all passed"
