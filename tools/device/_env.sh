# Sourced by the tools/device/*.sh scripts on the GPU machine (the device tool), from the repo
# root: unpacks the carried deno (split in two: build/carry/deno.xz.aa parked by an earlier call,
# .device_carry/deno.xz.ab carried by this one) and node_modules, and sets PATH for deno and nvcc.
set -o pipefail; mkdir -p /tmp/denobin; [ -x /tmp/denobin/deno ] || { cat build/carry/deno.xz.aa .device_carry/deno.xz.ab | xz -dc > /tmp/denobin/deno && chmod +x /tmp/denobin/deno; }; [ -d node_modules/zod ] || tar xJf .device_carry/nm.tar.xz
export PATH=/tmp/denobin:$PATH:/usr/local/cuda/bin DENO_DIR=/tmp/deno_dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
