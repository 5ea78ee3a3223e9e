/**
 * A small safetensors reader: an 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and byte range, then the raw little-endian data. Tensors view the
 * bytes in place. F32, F16 and BF16 tensors become `Tensor`s; others (I8, ...) are listed but
 * refused by `get` with their name.
 *
 * @example
 * ```ts ignore
 * const st = parseSafetensors(await Deno.readFile("preds.safetensors"), "preds.safetensors");
 * const fc1 = st.get("blk.0.fc1.weight");
 * ```
 *
 * @module
 */

import { DType } from "./dtype.ts";
import { numel, type Tensor } from "./tensor.ts";

/** One header entry. */
export interface SafetensorInfo {
  readonly dtype: string;
  /** Outermost first. */
  readonly shape: readonly number[];
  /** Byte range relative to the data section. */
  readonly offsets: readonly [number, number];
}

/** A parsed safetensors file. */
export interface Safetensors {
  /** The header's `__metadata__` (string to string). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor's header entry, in header order. */
  readonly infos: ReadonlyMap<string, SafetensorInfo>;
  /** Whether the file holds a tensor of this name. */
  has(name: string): boolean;
  /** The tensor `name` as a view; throws naming it when missing or of an unsupported dtype. */
  get(name: string): Tensor;
}

const TYPES: Record<string, { type: DType; size: number }> = {
  F32: { type: DType.F32, size: 4 },
  F16: { type: DType.F16, size: 2 },
  BF16: { type: DType.BF16, size: 2 },
};
const SIZES: Record<string, number> = { F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/**
 * Parse a safetensors file held in `bytes`; throws naming `source` and the field on bad input.
 * @param bytes the whole file
 * @param source the path, for error messages
 */
export function parseSafetensors(bytes: Uint8Array, source: string): Safetensors {
  if (bytes.length < 8) throw new Error(`${source}: too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.length) {
    throw new Error(`${source}: header of ${n} bytes runs past the end (${bytes.length} bytes)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${source}: header is not JSON: ${(e as Error).message}`);
  }
  const data = bytes.subarray(8 + n);
  const infos = new Map<string, SafetensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    infos.set(name, checkInfo(name, v, data.length, source));
  }
  return {
    metadata,
    infos,
    has: (name) => infos.has(name),
    get(name) {
      const info = infos.get(name);
      if (!info) throw new Error(`${source}: missing tensor "${name}"`);
      const t = TYPES[info.dtype];
      if (!t) {
        throw new Error(`${source}: tensor "${name}" is ${info.dtype}; expected F32, F16 or BF16`);
      }
      return { name, type: t.type, shape: info.shape, data: data.subarray(...info.offsets) };
    },
  };
}

function checkInfo(name: string, v: unknown, size: number, source: string): SafetensorInfo {
  const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const where = `${source}: tensor "${name}"`;
  if (typeof e?.dtype !== "string" || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
    throw new Error(`${where}: header entry needs dtype, shape and data_offsets`);
  }
  const shape = e.shape as number[];
  const [from, to] = e.data_offsets as number[];
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${where}: bad shape`);
  const elem = TYPES[e.dtype]?.size ?? SIZES[e.dtype];
  if (elem === undefined) throw new Error(`${where}: unknown dtype ${e.dtype}`);
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= size)) {
    throw new Error(`${where}: data_offsets [${from}, ${to}] outside the data (${size} bytes)`);
  }
  if (to - from !== numel(shape) * elem) {
    throw new Error(`${where}: ${to - from} bytes for ${e.dtype} [${shape.join(", ")}]`);
  }
  return { dtype: e.dtype, shape, offsets: [from, to] };
}

/**
 * Encode tensors as a safetensors file (tests and tools; F32, F16 and BF16 only).
 * @param tensors in file order
 * @param metadata the header's `__metadata__`
 */
export function encodeSafetensors(
  tensors: readonly Tensor[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const names: Record<number, string> = {
    [DType.F32]: "F32",
    [DType.F16]: "F16",
    [DType.BF16]: "BF16",
  };
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    if (!names[t.type]) throw new Error(`encodeSafetensors: ${t.name} must be F32, F16 or BF16`);
    header[t.name] = {
      dtype: names[t.type],
      shape: t.shape,
      data_offsets: [off, off + t.data.length],
    };
    off += t.data.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(raw.length + ((8 - (raw.length % 8)) % 8)).fill(0x20); // space-padded
  head.set(raw);
  const out = new Uint8Array(8 + head.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}
