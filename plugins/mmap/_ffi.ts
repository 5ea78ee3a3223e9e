/**
 * libc symbols for read-only file mapping: open, mmap, munmap, close.
 *
 * @module
 */

/** The symbol table passed to `Deno.dlopen`. */
export const LIBC_SYMBOLS = {
  /** int open(const char *path, int flags) */
  open: { parameters: ["buffer", "i32"], result: "i32" },
  /** void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset) */
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  /** int munmap(void *addr, size_t len) */
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
} as const;

/** O_RDONLY, the same on Linux and macOS. */
export const O_RDONLY = 0;
/** PROT_READ, the same on Linux and macOS. */
export const PROT_READ = 1;
/** MAP_PRIVATE, the same on Linux and macOS. */
export const MAP_PRIVATE = 2;

/** Path of the C library on this OS, or null where mapping is not attempted. */
export function libcPath(): string | null {
  if (Deno.build.os === "linux") return "libc.so.6";
  if (Deno.build.os === "darwin") return "/usr/lib/libSystem.B.dylib";
  return null;
}
