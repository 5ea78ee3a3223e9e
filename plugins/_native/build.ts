/**
 * Builds the native libraries from `kernels/c` with the system C compiler into `build/`, and
 * loads them: a library whose ABI version or build id (a hash of its sources and flags) is
 * stale is rebuilt on first use, printing one line to stderr.
 *
 * Permissions: `--allow-ffi --allow-read --allow-write=build --allow-run=cc`.
 *
 * @example
 * ```sh
 * deno run --allow-read --allow-write=build --allow-run=cc plugins/_native/build.ts
 * # cross-build the NEON and scalar libraries for aarch64:
 * deno run --allow-read --allow-write=build --allow-run=aarch64-linux-gnu-gcc \
 *   plugins/_native/build.ts --arch aarch64 --cc aarch64-linux-gnu-gcc neon scalar
 * ```
 *
 * @module
 */

import { ABI_VERSION, type NativeLib, SYMBOLS } from "./symbols.ts";

/** One C source of a library and the extra flags it is compiled with. */
export interface Source {
  readonly file: string;
  readonly flags: readonly string[];
}

/** A library built from kernels/c. */
export interface LibSpec {
  /** `x86` → `build/libts_x86.so`. */
  readonly name: string;
  /** CPU architecture it targets (`Deno.build.arch` naming); null: any. */
  readonly arch: "x86_64" | "aarch64" | null;
  readonly sources: readonly Source[];
}

const ROOT = new URL("../../", import.meta.url);
const KERNELS = new URL("kernels/c/", ROOT);
const COMMON = ["-std=c11", "-D_GNU_SOURCE", "-O3", "-fPIC", "-pthread", "-Wall"];

/** Path of a library for an architecture (scalar libraries carry the arch in the name). */
export function libPath(spec: LibSpec, arch: string = Deno.build.arch): string {
  const ext = Deno.build.os === "darwin" ? "dylib" : "so";
  const name = spec.arch ? spec.name : `${spec.name}_${arch}`;
  return new URL(`build/libts_${name}.${ext}`, ROOT).pathname;
}

/** Repo-relative form of a path under the root, for messages. */
function rel(path: string): string {
  return path.startsWith(ROOT.pathname) ? path.slice(ROOT.pathname.length) : path;
}

/** Hash of everything that goes into a library: sources, shared header, flags. */
export async function buildId(spec: LibSpec): Promise<string> {
  const parts: string[] = [`abi ${ABI_VERSION}`, COMMON.join(" ")];
  for (const f of ["ts.h", "neon.h", ...spec.sources.map((s) => s.file)]) {
    parts.push(f, await Deno.readTextFile(new URL(f, KERNELS)));
  }
  for (const s of spec.sources) parts.push(s.flags.join(" "));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\n")));
  return [...new Uint8Array(digest).slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** The C compiler to use: `$CC` when set and readable, else `cc`. */
export function defaultCC(): string {
  // Query first: reading an ungranted variable would prompt on a terminal.
  if (Deno.permissions.querySync({ name: "env", variable: "CC" }).state !== "granted") return "cc";
  return Deno.env.get("CC") || "cc";
}

/** True when `cc --version` runs. */
export async function hasCompiler(cc: string = defaultCC()): Promise<boolean> {
  try {
    const r = await new Deno.Command(cc, { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

/** Compile every source, then link; writes the library atomically. Returns its path. */
export async function buildLibrary(
  spec: LibSpec,
  opts: { cc?: string; arch?: string } = {},
): Promise<string> {
  const cc = opts.cc ?? defaultCC();
  const arch = opts.arch ?? Deno.build.arch;
  const out = libPath(spec, arch);
  const objDir = new URL(`build/obj/${spec.name}_${arch}/`, ROOT).pathname;
  await Deno.mkdir(objDir, { recursive: true });
  const id = await buildId(spec);
  const objs = await Promise.all(spec.sources.map(async (s) => {
    const obj = `${objDir}${s.file.replace(/\.c$/, ".o")}`;
    const src = new URL(s.file, KERNELS).pathname;
    await run(cc, [...COMMON, `-DTS_BUILD_ID="${id}"`, ...s.flags, "-c", src, "-o", obj]);
    return obj;
  }));
  const tmp = `${out}.${Deno.pid}.tmp`;
  const linkFlags = Deno.build.os === "linux" ? ["-Wl,-Bsymbolic"] : [];
  await run(cc, ["-shared", "-pthread", ...linkFlags, ...objs, "-o", tmp, "-lm"]);
  await Deno.rename(tmp, out);
  return out;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    const err = new TextDecoder().decode(r.stderr);
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${err}`);
  }
}

/** Open a library file and check its ABI version; throws a message naming the file. */
function open(path: string): NativeLib {
  const lib = Deno.dlopen(path, SYMBOLS);
  const abi = lib.symbols.ts_abi_version();
  if (abi !== ABI_VERSION) {
    lib.close();
    throw new Error(`${rel(path)}: ABI version ${abi}, expected ${ABI_VERSION}`);
  }
  return lib;
}

function idOf(lib: NativeLib): string {
  const p = lib.symbols.ts_build_id();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

/**
 * Open `spec`'s library, building it first when it is missing, fails to open, or was built
 * from other sources or flags. A stale library is used as is (with a warning) when no
 * compiler can run, which is how a prebuilt (e.g. cross-compiled) library is accepted.
 */
export async function loadLibrary(spec: LibSpec): Promise<NativeLib> {
  const path = libPath(spec);
  const want = await buildId(spec);
  let lib: NativeLib | null = null;
  let why = "first use";
  try {
    lib = open(path);
    if (idOf(lib) === want) return lib;
    why = "sources changed";
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) && exists(path)) why = (err as Error).message;
  }
  if (!(await hasCompiler())) {
    if (lib) {
      console.error(`warning: ${rel(path)} is stale (${why}) and no C compiler runs; using it`);
      return lib;
    }
    throw new Error(`${rel(path)} is missing and no C compiler ("${defaultCC()}") runs`);
  }
  lib?.close();
  console.error(`building ${rel(path)} (${why})…`);
  await buildLibrary(spec);
  return open(path);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const { LIBS } = await import("./libs.ts");
  const args = [...Deno.args];
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i < 0 ? undefined : args.splice(i, 2)[1];
  };
  const cc = flag("--cc");
  const arch = flag("--arch") ?? Deno.build.arch;
  const names = args.length
    ? args
    : LIBS.filter((s) => !s.arch || s.arch === arch).map((s) => s.name);
  for (const name of names) {
    const spec = LIBS.find((s) => s.name === name);
    if (!spec) {
      throw new Error(`unknown library "${name}": expected ${LIBS.map((s) => s.name).join(", ")}`);
    }
    console.log(`built ${rel(await buildLibrary(spec, { cc, arch }))}`);
  }
}
