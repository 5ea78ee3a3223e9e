/**
 * Shared plumbing of the native CPU plugins (not a plugin itself): one loaded library per
 * spec and process, reference-counted by the backends opened on it, and the checks a probe
 * makes before touching FFI.
 *
 * @module
 */

import type { BackendOptions } from "../../core/backend.ts";
import { hasCompiler, libPath, type LibSpec, loadLibrary } from "./build.ts";
import { NativeBackend } from "./backend.ts";
import type { NativeLib } from "./symbols.ts";

interface Loaded {
  lib: NativeLib;
  refs: number;
}

const loaded = new Map<string, Promise<Loaded>>();

/** The process-wide library of `spec`, building it on first use. */
export function library(spec: LibSpec): Promise<NativeLib> {
  return acquire(spec).then((l) => l.lib);
}

function acquire(spec: LibSpec): Promise<Loaded> {
  let p = loaded.get(spec.name);
  if (!p) {
    p = loadLibrary(spec).then((lib) => ({ lib, refs: 0 }));
    loaded.set(spec.name, p);
    p.catch(() => loaded.delete(spec.name));
  }
  return p;
}

/**
 * Open a backend on `spec`'s library. The thread pool lives in the library, so it is shared
 * by every backend of that library in the process; the latest `threads` wins.
 */
export async function openBackend(
  name: string,
  spec: LibSpec,
  options: BackendOptions = {},
): Promise<NativeBackend> {
  const l = await acquire(spec);
  const threads = options.threads ?? navigator.hardwareConcurrency;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`${name}: threads must be a positive integer, got ${threads}`);
  }
  l.lib.symbols.ts_set_threads(threads);
  l.refs++;
  return new NativeBackend(name, l.lib, () => {
    if (--l.refs > 0) return;
    // Join the workers before unloading the code they run.
    l.lib.symbols.ts_set_threads(1);
    l.lib.close();
    loaded.delete(spec.name);
  });
}

/** Why FFI cannot be used here, or null when it can. */
export function ffiBlocked(): string | null {
  if (typeof Deno?.dlopen !== "function") return "Deno.dlopen is unavailable";
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return "--allow-ffi not granted";
  }
  if (Deno.build.os !== "linux" && Deno.build.os !== "darwin") {
    return `unsupported OS ${Deno.build.os}`;
  }
  if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
    return `unsupported architecture ${Deno.build.arch}`;
  }
  return null;
}

/** "ready" when the library file exists, "buildable" with a C compiler, else a reason. */
export async function availability(spec: LibSpec): Promise<"ready" | "buildable" | string> {
  try {
    Deno.statSync(libPath(spec));
    return "ready";
  } catch {
    // missing (or unreadable): a compiler can still make it
  }
  return (await hasCompiler()) ? "buildable" : `${libPath(spec)} is missing and no C compiler runs`;
}
