/**
 * An independent, trusting walk over a well-formed GGUF header that records where each field
 * sits, so tests can truncate at section boundaries and patch single fields.
 *
 * @module
 */

/** Byte offsets of one metadata entry's parts. */
export interface KvAt {
  readonly key: string;
  readonly start: number;
  readonly typeAt: number;
  readonly valueAt: number;
  readonly end: number;
}

/** Byte offsets of one tensor info's parts. */
export interface InfoAt {
  readonly name: string;
  readonly start: number;
  readonly nDimsAt: number;
  readonly dimsAt: number;
  readonly typeAt: number;
  readonly offsetAt: number;
  readonly end: number;
  /** Data start relative to the data section. */
  readonly offset: number;
}

/** Where everything in a GGUF header sits. */
export interface Walk {
  readonly kvs: KvAt[];
  readonly infos: InfoAt[];
  readonly infoEnd: number;
}

const SIZE: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/** Walk a valid file's header (no checks: the input is the writer's own output). */
export function walk(bytes: Uint8Array): Walk {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  const u64 = () => {
    const v = Number(dv.getBigUint64(p, true));
    p += 8;
    return v;
  };
  const u32 = () => {
    const v = dv.getUint32(p, true);
    p += 4;
    return v;
  };
  const str = () => {
    const n = u64();
    const s = new TextDecoder().decode(bytes.subarray(p, p + n));
    p += n;
    return s;
  };
  const skip = (type: number): void => {
    if (SIZE[type] !== undefined) p += SIZE[type];
    else if (type === 8) str();
    else {
      const elem = u32();
      const n = u64();
      for (let i = 0; i < n; i++) skip(elem);
    }
  };
  const nTensors = u64();
  const nKv = u64();
  const kvs: KvAt[] = [];
  for (let i = 0; i < nKv; i++) {
    const start = p;
    const key = str();
    const typeAt = p;
    const type = u32();
    const valueAt = p;
    skip(type);
    kvs.push({ key, start, typeAt, valueAt, end: p });
  }
  const infos: InfoAt[] = [];
  for (let i = 0; i < nTensors; i++) {
    const start = p;
    const name = str();
    const nDimsAt = p;
    const nDims = u32();
    const dimsAt = p;
    p += 8 * nDims;
    const typeAt = p;
    p += 4;
    const offsetAt = p;
    const offset = u64();
    infos.push({ name, start, nDimsAt, dimsAt, typeAt, offsetAt, end: p, offset });
  }
  return { kvs, infos, infoEnd: p };
}
