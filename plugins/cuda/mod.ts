/**
 * The CUDA backend: every Backend op as CUDA kernels (kernels/cuda) on an NVIDIA GPU, over
 * FFI. The probe opens the driver library `libcuda.so.1` first and scores 0, with the reason,
 * when it is missing, finds no device, or the device is older than compute capability 9.0
 * (the library is built for sm_90); else 100, so a GPU wins over the CPU plugins. The library
 * is built with nvcc into `build/` on first use. Needs `--allow-ffi --allow-read
 * --allow-write=build --allow-run --allow-env` (write, run and env only to build).
 *
 * @example
 * ```ts
 * import { plugin } from "./mod.ts";
 * const probe = await plugin.probe();
 * console.log(probe.score, probe.reason); // 100 "CUDA NVIDIA H200 (sm_90, ...)" on an H200
 * ```
 *
 * @module
 */

import type { Backend, BackendPlugin, Probe } from "../../core/backend.ts";
import { CudaBackend } from "./backend.ts";
import { exists, findNvcc, LIB_PATH, loadLibrary } from "./_build.ts";
import { CC_MAJOR, CC_MINOR, type CudaLib, DRIVER_SYMBOLS } from "./_ffi.ts";

export { CudaBackend, CudaBuf, CudaWeight } from "./backend.ts";
export type { KernelTrace } from "./backend.ts";

/** Why FFI cannot be used here, or null when it can. */
function ffiBlocked(): string | null {
  if (typeof Deno?.dlopen !== "function") return "Deno.dlopen is unavailable";
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return "--allow-ffi not granted";
  }
  if (Deno.build.os !== "linux") return `CUDA plugin runs on Linux only, not ${Deno.build.os}`;
  return null;
}

/** The first device as the driver reports it, or why there is none. */
export function driverDevice(): { name: string; cc: number } | string {
  let drv: Deno.DynamicLibrary<typeof DRIVER_SYMBOLS>;
  try {
    drv = Deno.dlopen("libcuda.so.1", DRIVER_SYMBOLS);
  } catch {
    return "libcuda.so.1 cannot be opened (no NVIDIA driver)";
  }
  try {
    const rc = drv.symbols.cuInit(0);
    if (rc !== 0) return `cuInit failed (CUresult ${rc})`;
    const count = new Int32Array(1);
    if (drv.symbols.cuDeviceGetCount(count) !== 0 || count[0] === 0) return "no CUDA device";
    const name = new Uint8Array(256);
    drv.symbols.cuDeviceGetName(name, name.length, 0);
    const major = new Int32Array(1), minor = new Int32Array(1);
    drv.symbols.cuDeviceGetAttribute(major, CC_MAJOR, 0);
    drv.symbols.cuDeviceGetAttribute(minor, CC_MINOR, 0);
    const text = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    return { name: text, cc: major[0] * 10 + minor[0] };
  } finally {
    drv.close();
  }
}

let lib: Promise<CudaLib> | null = null;

/** The process-wide library (built on first use), with its device initialised. */
async function library(): Promise<{ lib: CudaLib; device: string }> {
  if (!lib) {
    lib = loadLibrary();
    lib.catch(() => (lib = null));
  }
  const l = await lib;
  const n = l.symbols.ts_cuda_init();
  if (n <= 0) {
    const p = n < 0 ? l.symbols.ts_cuda_error_string(-n) : null;
    throw new Error(
      `cuda: no usable device (${p ? Deno.UnsafePointerView.getCString(p) : "none found"})`,
    );
  }
  const p = l.symbols.ts_cuda_device_name();
  return { lib: l, device: p ? Deno.UnsafePointerView.getCString(p) : "" };
}

/** The registry entry: 100 with an sm_90+ NVIDIA GPU, 0 elsewhere. */
export const plugin: BackendPlugin = {
  name: "cuda",
  async probe(): Promise<Probe> {
    const blocked = ffiBlocked();
    if (blocked) return { score: 0, reason: blocked };
    const dev = driverDevice();
    if (typeof dev === "string") return { score: 0, reason: dev };
    if (dev.cc < 90) {
      return { score: 0, reason: `${dev.name} is sm_${dev.cc}; the kernels are built for sm_90` };
    }
    if (!exists(LIB_PATH) && !(await findNvcc())) {
      return { score: 0, reason: "build/libts_cuda.so is missing and nvcc does not run" };
    }
    return { score: 100, reason: `CUDA ${dev.name} (sm_${dev.cc})` };
  },
  async open(): Promise<Backend> {
    const probe = await plugin.probe();
    if (probe.score <= 0) throw new Error(`cuda cannot run here: ${probe.reason}`);
    const { lib, device } = await library();
    return new CudaBackend(lib, device);
  },
};
