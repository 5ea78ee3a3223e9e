/**
 * Zero-copy model file access: map the file read-only with libc `mmap` through `Deno.dlopen`,
 * or, where FFI is not permitted or fails, read it into one buffer. Either way the caller gets
 * one `Uint8Array` of the whole file for `parseGGUF`.
 *
 * @example
 * ```ts
 * import { openFile } from "./mod.ts";
 * const f = await openFile("model.gguf");
 * try {
 *   console.log(f.bytes.length, f.mapped ? "mapped" : "read");
 * } finally {
 *   f.close();
 * }
 * ```
 *
 * @module
 */

import { LIBC_SYMBOLS, libcPath, MAP_PRIVATE, O_RDONLY, PROT_READ } from "./_ffi.ts";

/** A whole file as bytes. After `close()` a mapped file's bytes must not be touched. */
export interface OpenedFile {
  readonly bytes: Uint8Array;
  /** True when `bytes` is an mmap of the file, false when it was read into memory. */
  readonly mapped: boolean;
  /** Why the file was read rather than mapped (absent when mapped). */
  readonly fallbackReason?: string;
  close(): void;
}

/** Options of `openFile`. */
export interface OpenOptions {
  /** Set false to skip mmap and read the file into memory. Default true. */
  readonly mmap?: boolean;
}

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** The opened libc, or the reason it could not be opened; tried once per process. */
let libc: { symbols: Libc } | { error: string } | undefined;

function loadLibc(): { symbols: Libc } | { error: string } {
  if (libc) return libc;
  const path = libcPath();
  if (!path) {
    libc = { error: `no libc mapping on ${Deno.build.os}` };
    return libc;
  }
  try {
    libc = { symbols: Deno.dlopen(path, LIBC_SYMBOLS).symbols };
  } catch (e) {
    // NotCapable / PermissionDenied without --allow-ffi, or no such library
    libc = { error: `cannot load ${path}: ${(e as Error).message}` };
  }
  return libc;
}

/**
 * Open `path` as one byte array: mapped read-only when possible, else read into memory.
 * Throws naming the path when it is missing, empty or a directory.
 * @param path the file
 * @param options `{ mmap: false }` forces the read fallback
 */
export async function openFile(path: string, options: OpenOptions = {}): Promise<OpenedFile> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new Error(`cannot open model file "${path}": ${(e as Error).message}`);
  }
  if (info.isDirectory) throw new Error(`"${path}" is a directory, expected a model file`);
  if (!info.isFile) throw new Error(`"${path}" is not a regular file`);
  if (info.size === 0) throw new Error(`model file "${path}" is empty (0 bytes)`);

  let reason = "mmap disabled by option";
  if (options.mmap !== false) {
    const lib = loadLibc();
    if ("symbols" in lib) {
      const mapped = mapFile(lib.symbols, path, info.size);
      if (typeof mapped !== "string") return mapped;
      reason = mapped;
    } else {
      reason = lib.error;
    }
  }
  const bytes = await readWhole(path, info.size);
  return { bytes, mapped: false, fallbackReason: reason, close() {} };
}

/** (void *)-1 as an unsigned address. */
const MAP_FAILED = 0xffffffffffffffffn;

/** mmap the file, or return why it failed. */
function mapFile(c: Libc, path: string, size: number): OpenedFile | string {
  const cpath = new TextEncoder().encode(path + "\0");
  const fd = c.open(cpath, O_RDONLY);
  if (fd < 0) return `open("${path}") failed`;
  // the mapping keeps the file alive, so the descriptor can be closed right away
  const ptr = c.mmap(null, BigInt(size), PROT_READ, MAP_PRIVATE, fd, 0n);
  c.close(fd);
  if (ptr === null || BigInt(Deno.UnsafePointer.value(ptr)) === MAP_FAILED) {
    return `mmap of "${path}" (${size} bytes) failed`;
  }
  const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, size));
  let open = true;
  return {
    bytes,
    mapped: true,
    close() {
      if (!open) return;
      open = false;
      c.munmap(ptr, BigInt(size));
    },
  };
}

/** Read the whole file into one buffer (works past 2 GB: reads go in bounded chunks). */
async function readWhole(path: string, size: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(size);
  const file = await Deno.open(path, { read: true });
  try {
    const chunk = 1 << 26; // 64 MiB per read call
    let done = 0;
    while (done < size) {
      const n = await file.read(bytes.subarray(done, Math.min(size, done + chunk)));
      if (n === null) {
        throw new Error(`model file "${path}" shrank while reading: ${done} of ${size} bytes`);
      }
      done += n;
    }
  } finally {
    file.close();
  }
  return bytes;
}
