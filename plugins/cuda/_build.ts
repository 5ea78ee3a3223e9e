/**
 * Builds `build/libts_cuda.so` from `kernels/cuda/*.cu` with nvcc (sm_90 machine code plus
 * compute_90 PTX) and loads it: a library whose ABI version or build id (a hash of the
 * sources and flags) is stale is rebuilt on first use, printing one line to stderr.
 *
 * Permissions: `--allow-ffi --allow-read --allow-write=build --allow-run` (nvcc).
 *
 * @example
 * ```sh
 * deno run --allow-read --allow-write=build --allow-run --allow-env plugins/cuda/_build.ts
 * ```
 *
 * @module
 */

import { ABI_VERSION, type CudaLib, SYMBOLS } from "./_ffi.ts";

const ROOT = new URL("../../", import.meta.url);
const KERNELS = new URL("kernels/cuda/", ROOT);
/** Every translation unit of the library; ts_cuda.h is shared by all. */
export const SOURCES = [
  "runtime.cu",
  "matvec.cu",
  "matvec_xreg.cu",
  "gemm.cu",
  "ops.cu",
  "attention.cu",
  "sparse.cu",
  "graph.cu",
];
const HEADERS = ["ts_cuda.h", "matvec.h"];
const FLAGS = [
  "-O3",
  "-std=c++17",
  "-Xcompiler=-fPIC,-fvisibility=hidden",
  "-gencode=arch=compute_90,code=sm_90",
  "-gencode=arch=compute_90,code=compute_90",
];

/** `build/libts_cuda.so`. */
export const LIB_PATH = new URL("build/libts_cuda.so", ROOT).pathname;

/** The nvcc to use: `$NVCC`, else `nvcc` on the PATH, else `/usr/local/cuda/bin/nvcc`. */
export async function findNvcc(): Promise<string | null> {
  let env: string | undefined;
  try {
    env = Deno.env.get("NVCC");
  } catch {
    // no --allow-env: look on the PATH only
  }
  for (const cmd of [env, "nvcc", "/usr/local/cuda/bin/nvcc"]) {
    if (!cmd) continue;
    try {
      const r = await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
        .output();
      if (r.success) return cmd;
    } catch {
      // not there, or --allow-run not granted
    }
  }
  return null;
}

/** Hash of everything that goes into the library. */
export async function buildId(): Promise<string> {
  const parts = [`abi ${ABI_VERSION}`, FLAGS.join(" ")];
  for (const f of [...HEADERS, ...SOURCES]) {
    parts.push(f, await Deno.readTextFile(new URL(f, KERNELS)));
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\n")));
  return [...new Uint8Array(digest).slice(0, 8)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** Compile every source (in parallel) into `objDir`, then link `out` atomically. */
export async function buildLibrary(
  nvcc: string,
  out: string = LIB_PATH,
  objDir: string = new URL("build/obj/cuda/", ROOT).pathname,
): Promise<string> {
  await Deno.mkdir(objDir, { recursive: true });
  const id = await buildId();
  const objs = await Promise.all(SOURCES.map(async (f) => {
    const obj = `${objDir}/${f.replace(/\.cu$/, ".o")}`;
    await run(nvcc, [
      ...FLAGS,
      `-DTS_BUILD_ID="${id}"`,
      "-c",
      new URL(f, KERNELS).pathname,
      "-o",
      obj,
    ]);
    return obj;
  }));
  const tmp = `${out}.${Deno.pid}.tmp`;
  await run(nvcc, ["-shared", ...FLAGS, ...objs, "-o", tmp]);
  await Deno.rename(tmp, out);
  return out;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(r.stderr)}`);
  }
}

function open(path: string): CudaLib {
  const lib = Deno.dlopen(path, SYMBOLS);
  const abi = lib.symbols.ts_cuda_abi_version();
  if (abi !== ABI_VERSION) {
    lib.close();
    throw new Error(`build/libts_cuda.so: ABI version ${abi}, expected ${ABI_VERSION}`);
  }
  return lib;
}

function idOf(lib: CudaLib): string {
  const p = lib.symbols.ts_cuda_build_id();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

/**
 * Open the library, building it first when it is missing, fails to open, or was built from
 * other sources. A stale library is used as is (with a warning) when nvcc cannot run.
 */
export async function loadLibrary(): Promise<CudaLib> {
  const want = await buildId();
  let lib: CudaLib | null = null;
  let why = "first use";
  try {
    lib = open(LIB_PATH);
    if (idOf(lib) === want) return lib;
    why = "sources changed";
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) && exists(LIB_PATH)) why = (err as Error).message;
  }
  const nvcc = await findNvcc();
  if (!nvcc) {
    if (lib) {
      console.error(
        `warning: build/libts_cuda.so is stale (${why}) and nvcc does not run; using it`,
      );
      return lib;
    }
    throw new Error("build/libts_cuda.so is missing and nvcc does not run");
  }
  lib?.close();
  console.error(`building build/libts_cuda.so with ${nvcc} (${why})…`);
  await buildLibrary(nvcc);
  return open(LIB_PATH);
}

/** True when the file exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const nvcc = await findNvcc();
  if (!nvcc) throw new Error("nvcc not found (set NVCC or put it on the PATH)");
  console.log(`built ${await buildLibrary(nvcc)}`);
}
