/**
 * Tensor element types, by their GGUF/ggml id, with llama.cpp's block layouts.
 *
 * - F32, F16, BF16, I32: plain little-endian elements.
 * - Q8_0: blocks of 32 values: f16 scale d, then 32 int8 q; value = d * q.
 * - Q4_0: blocks of 32 values: f16 scale d, then 16 bytes; byte j holds value j in its low
 *   nibble and value j + 16 in its high nibble; value = d * (nibble - 8).
 *
 * @module
 */

/** The element types this runtime reads, by GGUF id. */
export const DType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, I32: 26, BF16: 30 } as const;
/** One of the supported GGUF type ids. */
export type DType = typeof DType[keyof typeof DType];

/** Values per quantisation block (Q8_0, Q4_0). */
export const QK = 32;

/** ggml's names for every type id GGUF defines, so errors can name unsupported ones. */
const GGML_NAMES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  6: "Q5_0",
  7: "Q5_1",
  8: "Q8_0",
  9: "Q8_1",
  10: "Q2_K",
  11: "Q3_K",
  12: "Q4_K",
  13: "Q5_K",
  14: "Q6_K",
  15: "Q8_K",
  16: "IQ2_XXS",
  17: "IQ2_XS",
  18: "IQ3_XXS",
  19: "IQ1_S",
  20: "IQ4_NL",
  21: "IQ3_S",
  22: "IQ2_S",
  23: "IQ4_XS",
  24: "I8",
  25: "I16",
  26: "I32",
  27: "I64",
  28: "F64",
  29: "IQ1_M",
  30: "BF16",
  34: "TQ1_0",
  35: "TQ2_0",
  39: "MXFP4",
}; // deno-fmt-ignore

/** Name of a type id, e.g. `dtypeName(8) === "Q8_0"`; unknown ids read `type#N`. */
export function dtypeName(type: number): string {
  return GGML_NAMES[type] ?? `type#${type}`;
}

/** True when this runtime can compute with tensors of the given type id. */
export function isSupported(type: number): type is DType {
  return type === 0 || type === 1 || type === 2 || type === 8 || type === 26 || type === 30;
}

/** Parse a dtype name ("f16", "Q8_0", ...) as given on a command line. */
export function parseDType(name: string): DType {
  const key = name.toUpperCase() as keyof typeof DType;
  if (!(key in DType)) {
    throw new Error(`unknown dtype "${name}": expected one of ${Object.keys(DType).join(", ")}`);
  }
  return DType[key];
}

/** Elements per block and bytes per block of a type. */
export function blockOf(type: DType): { elems: number; bytes: number } {
  switch (type) {
    case DType.F32:
    case DType.I32:
      return { elems: 1, bytes: 4 };
    case DType.F16:
    case DType.BF16:
      return { elems: 1, bytes: 2 };
    case DType.Q8_0:
      return { elems: QK, bytes: 2 + QK };
    case DType.Q4_0:
      return { elems: QK, bytes: 2 + QK / 2 };
  }
}

/** Bytes of one row of `n` elements; throws when `n` is not a whole number of blocks. */
export function rowBytes(type: DType, n: number): number {
  const b = blockOf(type);
  if (n % b.elems !== 0) {
    throw new Error(`${dtypeName(type)} rows need a multiple of ${b.elems} elements, got ${n}`);
  }
  return (n / b.elems) * b.bytes;
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** IEEE half (as its 16 bits) to number. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Number to IEEE half bits, rounding to nearest even (as ggml's conversion does). */
export function f32ToF16(x: number): number {
  const h = new Uint16Array(new Float16Array([x]).buffer);
  return h[0];
}

/** bfloat16 bits to number. */
export function bf16ToF32(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0];
}

/** Number to bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN. */
export function f32ToBF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >> 16) & 1)) >>> 16) & 0xffff;
}
