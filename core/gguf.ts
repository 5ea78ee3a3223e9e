/**
 * GGUF reader (versions 2 and 3; PowerInfer's `PWRI` magic too).
 *
 * Layout (little-endian): magic, u32 version, u64 tensor count, u64 kv count, the kvs
 * (string key, u32 type, value), the tensor infos (string name, u32 n_dims, u64 ne[n_dims]
 * innermost first, u32 type, u64 offset), padding to `general.alignment`, then tensor data.
 * Strings are a u64 byte length then UTF-8 bytes. Every count, length and offset is checked
 * against the bytes that remain before it is used, so a corrupt file fails with an error that
 * names the source, the field and its byte offset instead of allocating or reading past the end.
 *
 * @example
 * ```ts
 * import { metaNumber, parseGGUF } from "./gguf.ts";
 * const bytes = await Deno.readFile("model.gguf");
 * const file = parseGGUF(bytes, "model.gguf");
 * const layers = metaNumber(file, "llama.block_count");
 * ```
 *
 * @module
 */

import { type DType, dtypeName, isSupported } from "./dtype.ts";
import type { Tensor } from "./tensor.ts";
import { tensorBytes } from "./tensor.ts";
import { Cursor, GGUFType } from "./_gguf_cursor.ts";

export { GGUFType };

const MAX_DIMS = 4;
const TWO_53 = 2 ** 53;

/**
 * A metadata value: numbers for every numeric type (64-bit integers beyond 2^53 as bigint),
 * booleans, strings, and arrays of these (arrays may nest).
 */
export type GGUFValue = number | bigint | boolean | string | GGUFValue[];

/** A parsed GGUF file; tensors view the file's bytes in place. */
export interface GGUFFile {
  /** "GGUF", or "PWRI" for PowerInfer's sparse-format files. */
  readonly magic: "GGUF" | "PWRI";
  readonly version: number;
  readonly alignment: number;
  /** Metadata in file order. */
  readonly metadata: Map<string, GGUFValue>;
  /** The GGUF value type of each metadata key (array element types: `metadataArrayTypes`). */
  readonly metadataTypes: Map<string, number>;
  /** Tensors in file order. */
  readonly tensors: Map<string, Tensor>;
  /** Byte offset of the tensor data section. */
  readonly dataOffset: number;
  /** Where the bytes came from (a path), for error messages. */
  readonly source?: string;
  /** Element type of each top-level array value, by key. */
  readonly metadataArrayTypes?: Map<string, number>;
}

/** Default `general.alignment` of the tensor data section, in bytes. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** A tensor info as read, before its data is placed. */
interface TensorInfo {
  name: string;
  /** Outermost first. */
  shape: number[];
  type: DType;
  /** Relative to the data section start. */
  offset: number;
  /** Byte offset of the info in the file, for errors. */
  at: number;
}

/**
 * Parse a GGUF v2/v3 file (or PowerInfer `PWRI`) held in `bytes`; tensor data stays a view of
 * `bytes`. Throws an Error naming `source`, the field or tensor, and the byte offset on bad input.
 * @param bytes the whole file (e.g. from `plugins/mmap`'s `openFile`)
 * @param source the path or label used in error messages
 */
export function parseGGUF(bytes: Uint8Array, source: string): GGUFFile {
  const c = new Cursor(bytes, source);
  const { magic, version } = readPreamble(c);
  // a tensor info is at least: name length 8, n_dims 4, one dim 8, type 4, offset 8
  const tensorCount = c.count("tensor count", 32);
  // a kv is at least: key length 8, type 4, a one-byte value
  const kvCount = c.count("kv count", 13);

  const metadata = new Map<string, GGUFValue>();
  const metadataTypes = new Map<string, number>();
  const metadataArrayTypes = new Map<string, number>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos;
    const key = c.str(`kv ${i} key`);
    if (metadata.has(key)) throw c.fail(`kv ${i} key "${key}"`, "duplicate metadata key", keyAt);
    const type = c.u32(`kv "${key}" type`);
    if (type === GGUFType.ARRAY) metadataArrayTypes.set(key, c.peekU32(`kv "${key}" element type`));
    metadata.set(key, c.value(type, `kv "${key}"`));
    metadataTypes.set(key, type);
  }
  const alignment = readAlignment(c, metadata);

  const infos: TensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const info = readTensorInfo(c, i, alignment);
    if (names.has(info.name)) {
      throw c.fail(`tensor "${info.name}"`, "duplicate tensor name", info.at);
    }
    names.add(info.name);
    infos.push(info);
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors = new Map<string, Tensor>();
  for (const info of infos) tensors.set(info.name, placeTensor(c, info, dataOffset));
  return {
    magic,
    version,
    alignment,
    metadata,
    metadataTypes,
    tensors,
    dataOffset,
    source,
    metadataArrayTypes,
  };
}

/** Magic and version; v1, big-endian and unknown versions are refused. */
function readPreamble(c: Cursor): { magic: "GGUF" | "PWRI"; version: number } {
  c.need(4, "magic");
  const b = c.bytes;
  const magic = String.fromCharCode(b[0], b[1], b[2], b[3]);
  if (magic !== "GGUF" && magic !== "PWRI") {
    throw c.fail("magic", `expected "GGUF" or "PWRI", found ${JSON.stringify(magic)}`);
  }
  c.pos = 4;
  const version = c.u32("version");
  if (version === 1) {
    throw c.fail("version", "GGUF v1 is not supported (expected 2 or 3); re-convert the model", 4);
  }
  if (version === 0x02000000 || version === 0x03000000) {
    throw c.fail("version", "big-endian GGUF is not supported (expected little-endian 2 or 3)", 4);
  }
  if (version !== 2 && version !== 3) {
    throw c.fail("version", `unknown version ${version} (expected 2 or 3)`, 4);
  }
  return { magic, version };
}

/** `general.alignment`, default 32; must be a nonzero power of two. */
function readAlignment(c: Cursor, metadata: Map<string, GGUFValue>): number {
  const a = metadata.get("general.alignment");
  if (a === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (typeof a !== "number" || !Number.isInteger(a) || a <= 0 || a > 2 ** 30 || (a & (a - 1))) {
    throw c.fail('kv "general.alignment"', `${String(a)} is not a power of two (expected e.g. 32)`);
  }
  return a;
}

/** One tensor info: name, n_dims, ne (innermost first), type, offset. */
function readTensorInfo(c: Cursor, index: number, alignment: number): TensorInfo {
  const at = c.pos;
  const name = c.str(`tensor info ${index} name`);
  const t = `tensor "${name}"`;
  const nDimsAt = c.pos;
  const nDims = c.u32(`${t} n_dims`);
  if (nDims < 1 || nDims > MAX_DIMS) {
    throw c.fail(`${t} n_dims`, `${nDims} dimensions (expected 1..${MAX_DIMS})`, nDimsAt);
  }
  const ne: number[] = [];
  let elems = 1;
  for (let d = 0; d < nDims; d++) {
    const dimAt = c.pos;
    const dim = c.size(`${t} ne[${d}]`);
    if (dim === 0) throw c.fail(`${t} ne[${d}]`, "dimension is 0 (expected >= 1)", dimAt);
    elems *= dim;
    if (elems >= TWO_53) throw c.fail(`${t} ne[${d}]`, "element count overflows 2^53", dimAt);
    ne.push(dim);
  }
  const typeAt = c.pos;
  const type = c.u32(`${t} type`);
  if (!isSupported(type)) {
    throw c.error(
      `${t} has type ${dtypeName(type)}, which turbosparse does not support ` +
        `(supported: F32, F16, BF16, Q8_0, Q4_0, I32)`,
      typeAt,
    );
  }
  const offsetAt = c.pos;
  const offset = c.size(`${t} offset`);
  if (offset % alignment !== 0) {
    throw c.fail(
      `${t} offset`,
      `${offset} is not a multiple of the alignment ${alignment}`,
      offsetAt,
    );
  }
  return { name, shape: ne.reverse(), type, offset, at };
}

/** The tensor viewing its bytes in place; its whole range must lie inside the file. */
function placeTensor(c: Cursor, info: TensorInfo, dataOffset: number): Tensor {
  const { name, shape, type, offset, at } = info;
  let nbytes: number;
  try {
    nbytes = tensorBytes(type, shape);
  } catch (e) {
    throw c.fail(`tensor "${name}" shape [${shape.join(", ")}]`, (e as Error).message, at);
  }
  const start = dataOffset + offset;
  const size = c.bytes.length;
  if (start + nbytes > size) {
    throw c.fail(
      `tensor "${name}" data`,
      `${nbytes} bytes at data offset ${offset} (file byte ${start}) run past the end of the ` +
        `file (${size} bytes)`,
      at,
    );
  }
  return { name, type, shape, data: c.bytes.subarray(start, start + nbytes) };
}

export {
  getTensor,
  metaArray,
  metaBool,
  metaNumber,
  metaNumbers,
  metaString,
  metaStrings,
} from "./gguf_meta.ts";
