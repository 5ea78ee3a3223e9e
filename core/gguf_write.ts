/**
 * GGUF writer: `encodeGGUF` builds a small file in memory, `writeGGUF` streams a large one to
 * disk (header first, then each tensor as it is produced), never holding the whole file.
 * Files follow llama.cpp's layout: every tensor's data starts on the alignment and is padded
 * to it, `general.alignment` is written when it is not the default 32.
 *
 * @example
 * ```ts
 * import { encodeGGUF, meta } from "./gguf_write.ts";
 * import { DType } from "./dtype.ts";
 * const bytes = encodeGGUF(
 *   [meta.str("general.architecture", "llama"), meta.u32("llama.block_count", 2)],
 *   [{ spec: { name: "output_norm.weight", type: DType.F32, shape: [4] }, data: new Uint8Array(16) }],
 * );
 * ```
 *
 * @module
 */

import { type DType, dtypeName, isSupported } from "./dtype.ts";
import { GGUF_DEFAULT_ALIGNMENT, GGUFType, type GGUFValue } from "./gguf.ts";
import { Bytes, putValue } from "./_gguf_encode.ts";
import { tensorBytes } from "./tensor.ts";

/** One metadata key/value with its GGUF type. */
export interface MetaEntry {
  readonly key: string;
  /** A `GGUFType` id. */
  readonly type: number;
  readonly value: GGUFValue;
  /** Element type when `type` is ARRAY. */
  readonly arrayType?: number;
  /** Element types of nested levels, outermost first, when `arrayType` is ARRAY. */
  readonly innerTypes?: readonly number[];
}

/** Builders for metadata entries, one per GGUF value type. */
export const meta = {
  u8: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.UINT8, value }),
  i8: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.INT8, value }),
  u16: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.UINT16, value }),
  i16: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.INT16, value }),
  u32: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.UINT32, value }),
  i32: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.INT32, value }),
  f32: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.FLOAT32, value }),
  f64: (key: string, value: number): MetaEntry => ({ key, type: GGUFType.FLOAT64, value }),
  bool: (key: string, value: boolean): MetaEntry => ({ key, type: GGUFType.BOOL, value }),
  str: (key: string, value: string): MetaEntry => ({ key, type: GGUFType.STRING, value }),
  u64: (key: string, value: number | bigint): MetaEntry => ({ key, type: GGUFType.UINT64, value }),
  i64: (key: string, value: number | bigint): MetaEntry => ({ key, type: GGUFType.INT64, value }),
  /** An array of `elemType`; for nested arrays pass ARRAY and the inner levels' types. */
  arr: (
    key: string,
    elemType: number,
    values: GGUFValue[],
    innerTypes?: readonly number[],
  ): MetaEntry => ({ key, type: GGUFType.ARRAY, value: values, arrayType: elemType, innerTypes }),
};

/** A tensor to write; `shape` is outermost first (the writer reverses it into GGUF's ne). */
export interface TensorSpec {
  readonly name: string;
  readonly type: DType;
  readonly shape: readonly number[];
}

/** File-level choices; defaults: "GGUF", version 3, alignment from entries or 32. */
export interface WriteOptions {
  readonly magic?: "GGUF" | "PWRI";
  readonly version?: 2 | 3;
  readonly alignment?: number;
}

/** Alignment from `general.alignment` or the options; both present must agree. */
function chooseAlignment(entries: readonly MetaEntry[], opts: WriteOptions): number {
  const e = entries.find((x) => x.key === "general.alignment");
  const fromMeta = typeof e?.value === "number" ? e.value : undefined;
  if (e && fromMeta === undefined) throw new Error(`metadata "general.alignment" must be a u32`);
  if (fromMeta !== undefined && opts.alignment !== undefined && fromMeta !== opts.alignment) {
    throw new Error(
      `alignment ${opts.alignment} disagrees with metadata "general.alignment" = ${fromMeta}`,
    );
  }
  const a = fromMeta ?? opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) {
    throw new Error(`alignment ${a} is not a power of two`);
  }
  return a;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Bytes of a tensor after checking its spec (name, dims, type, whole blocks). */
function specBytes(spec: TensorSpec): number {
  const t = `tensor "${spec.name}"`;
  if (!spec.name) throw new Error(`tensor name must not be empty`);
  if (!isSupported(spec.type)) {
    throw new Error(`${t}: type ${dtypeName(spec.type)} is not supported`);
  }
  const s = spec.shape;
  if (s.length < 1 || s.length > 4 || s.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw new Error(`${t}: shape [${s.join(", ")}] must have 1..4 positive integer dimensions`);
  }
  try {
    return tensorBytes(spec.type, s);
  } catch (e) {
    throw new Error(`${t}: ${(e as Error).message}`);
  }
}

/** The encoded header (padded to the data section) and each tensor's size and data offset. */
export interface GGUFLayout {
  readonly header: Uint8Array;
  readonly alignment: number;
  readonly sizes: readonly number[];
  readonly offsets: readonly number[];
  /** Size of the whole file in bytes. */
  readonly totalBytes: number;
}

/**
 * Encode the header of a file holding `specs`: magic, version, counts, metadata, tensor infos
 * and padding up to the data section.
 */
export function encodeHeader(
  entries: readonly MetaEntry[],
  specs: readonly TensorSpec[],
  opts: WriteOptions = {},
): GGUFLayout {
  const alignment = chooseAlignment(entries, opts);
  const all = [...entries];
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !all.some((e) => e.key === "general.alignment")) {
    all.push(meta.u32("general.alignment", alignment));
  }
  const b = new Bytes();
  b.raw(new TextEncoder().encode(opts.magic ?? "GGUF"));
  b.u32(opts.version ?? 3);
  b.u64(specs.length);
  b.u64(all.length);
  const keys = new Set<string>();
  for (const e of all) {
    if (keys.has(e.key)) throw new Error(`duplicate metadata key "${e.key}"`);
    keys.add(e.key);
    b.str(e.key);
    b.u32(e.type);
    const types = e.type === GGUFType.ARRAY ? [e.arrayType ?? -1, ...(e.innerTypes ?? [])] : [];
    putValue(b, `"${e.key}"`, e.type, e.value, types);
  }
  const names = new Set<string>();
  const sizes: number[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (names.has(spec.name)) throw new Error(`duplicate tensor name "${spec.name}"`);
    names.add(spec.name);
    const size = specBytes(spec);
    b.str(spec.name);
    b.u32(spec.shape.length);
    for (let d = spec.shape.length - 1; d >= 0; d--) b.u64(spec.shape[d]); // ne: innermost first
    b.u32(spec.type);
    b.u64(offset);
    sizes.push(size);
    offsets.push(offset);
    offset += alignUp(size, alignment);
  }
  b.take(alignUp(b.len, alignment) - b.len); // zero padding up to the data section
  const header = b.done();
  return { header, alignment, sizes, offsets, totalBytes: header.length + offset };
}

/**
 * Encode a whole GGUF file in memory (for small files and tests).
 * @param entries metadata in file order
 * @param tensors specs with their encoded data (length must equal the spec's byte size)
 * @param opts magic, version, alignment
 */
export function encodeGGUF(
  entries: readonly MetaEntry[],
  tensors: readonly { spec: TensorSpec; data: Uint8Array }[],
  opts: WriteOptions = {},
): Uint8Array {
  const layout = encodeHeader(entries, tensors.map((t) => t.spec), opts);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.header);
  tensors.forEach((t, i) => {
    checkData(t.spec, t.data, layout.sizes[i]);
    out.set(t.data, layout.header.length + layout.offsets[i]);
  });
  return out;
}

function checkData(spec: TensorSpec, data: Uint8Array, size: number): void {
  if (data.length !== size) {
    throw new Error(
      `tensor "${spec.name}" ${dtypeName(spec.type)} [${spec.shape.join(", ")}]: data is ` +
        `${data.length} bytes, expected ${size}`,
    );
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

/**
 * Stream a GGUF file to `path`: the header, then each tensor's data as `produce` returns it,
 * so only one tensor is in memory at a time.
 * @param path file to create (truncated if it exists)
 * @param entries metadata in file order
 * @param specs tensors in file order
 * @param produce encoded data of tensor `index`; its length must equal the spec's byte size
 * @param opts magic, version, alignment
 * @param onProgress called after the header and after each tensor with bytes written so far
 */
export async function writeGGUF(
  path: string,
  entries: readonly MetaEntry[],
  specs: readonly TensorSpec[],
  produce: (spec: TensorSpec, index: number) => Uint8Array | Promise<Uint8Array>,
  opts: WriteOptions = {},
  onProgress?: (doneBytes: number, totalBytes: number) => void,
): Promise<void> {
  const layout = encodeHeader(entries, specs, opts);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, layout.header);
    let done = layout.header.length;
    onProgress?.(done, layout.totalBytes);
    for (let i = 0; i < specs.length; i++) {
      const data = await produce(specs[i], i);
      checkData(specs[i], data, layout.sizes[i]);
      await writeAll(file, data);
      const pad = alignUp(data.length, layout.alignment) - data.length;
      if (pad) await writeAll(file, new Uint8Array(pad));
      done += data.length + pad;
      onProgress?.(done, layout.totalBytes);
    }
  } finally {
    file.close();
  }
}
