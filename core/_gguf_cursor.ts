/**
 * The GGUF reader's bounds-checked cursor: little-endian reads over a file's bytes where every
 * count and length is checked against the bytes that remain, and every error names the source,
 * the field and the byte offset.
 *
 * @module
 */

import { decodeStrings } from "./_utf8.ts";
import type { GGUFValue } from "./gguf.ts";

/** GGUF metadata value type ids (re-exported by `core/gguf.ts`). */
// deno-fmt-ignore
export const GGUFType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7,
  STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;

/** Byte size of each fixed-size value type; strings and arrays are variable. */
// deno-fmt-ignore
export const FIXED_SIZE: Readonly<Record<number, number>> = {
  0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8,
};

/** Fewest bytes a value of a type can occupy: a string is a u64 length, an array a type + length. */
function minSize(type: number): number {
  if (type === GGUFType.STRING) return 8;
  if (type === GGUFType.ARRAY) return 12;
  return FIXED_SIZE[type];
}

/** Nested arrays deeper than this are refused (real files nest at most once). */
const MAX_ARRAY_DEPTH = 8;

const decoder = new TextDecoder();

/** Bounds-checked little-endian reads over the file's bytes; errors name the field and offset. */
export class Cursor {
  pos = 0;
  private readonly dv: DataView;

  constructor(readonly bytes: Uint8Array, readonly source: string) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** An Error naming the source and a byte offset. */
  error(message: string, at = this.pos): Error {
    return new Error(`${this.source}: ${message} (at byte ${at})`);
  }

  /** An Error naming the source, the field and a byte offset. */
  fail(what: string, problem: string, at = this.pos): Error {
    return this.error(`${what}: ${problem}`, at);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throw unless `n` more bytes exist. */
  need(n: number, what: string): void {
    if (n > this.remaining) {
      throw this.fail(
        what,
        `truncated: needs ${n} bytes, only ${this.remaining} remain (file is ${this.bytes.length} bytes)`,
      );
    }
  }

  /** The next u32 without consuming it. */
  peekU32(what: string): number {
    this.need(4, what);
    return this.dv.getUint32(this.pos, true);
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A u64 as a number; values past 2^53 are refused (sizes and counts never get there). */
  size(what: string): number {
    this.need(8, what);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getUint32(this.pos + 4, true);
    if (hi >= 0x200000) {
      throw this.fail(what, `value 2^${Math.floor(Math.log2(hi)) + 32} is too large`);
    }
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }

  /** A u64 element count whose elements take at least `minBytes` each, checked against the file. */
  count(what: string, minBytes: number): number {
    const start = this.pos;
    const n = this.size(what);
    if (n * minBytes > this.remaining) {
      throw this.fail(
        what,
        `count ${n} needs at least ${
          n * minBytes
        } bytes, only ${this.remaining} remain (truncated or corrupt)`,
        start,
      );
    }
    return n;
  }

  str(what: string): string {
    const n = this.count(`${what} length`, 1);
    const s = decoder.decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  /** `n` strings in a row, decoded together (large vocabularies parse in milliseconds). */
  strings(n: number, what: string): string[] {
    const starts = new Float64Array(n);
    const lengths = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.need(8, `${what}[${i}] length`);
      const len = this.dv.getUint32(this.pos, true);
      if (this.dv.getUint32(this.pos + 4, true) !== 0 || len > this.remaining - 8) {
        this.count(`${what}[${i}] length`, 1); // throws with the exact reason
      }
      starts[i] = this.pos + 8;
      lengths[i] = len;
      this.pos += 8 + len;
    }
    return decodeStrings(this.bytes, starts, lengths);
  }

  /** One value of a fixed-size type at `p` (no bounds check: callers reserved the bytes). */
  fixedAt(type: number, p: number): number | bigint | boolean {
    const dv = this.dv;
    switch (type) {
      case GGUFType.UINT8:
        return dv.getUint8(p);
      case GGUFType.INT8:
        return dv.getInt8(p);
      case GGUFType.UINT16:
        return dv.getUint16(p, true);
      case GGUFType.INT16:
        return dv.getInt16(p, true);
      case GGUFType.UINT32:
        return dv.getUint32(p, true);
      case GGUFType.INT32:
        return dv.getInt32(p, true);
      case GGUFType.FLOAT32:
        return dv.getFloat32(p, true);
      case GGUFType.BOOL:
        return dv.getUint8(p) !== 0;
      case GGUFType.UINT64:
        return safeNumber(dv.getBigUint64(p, true));
      case GGUFType.INT64:
        return safeNumber(dv.getBigInt64(p, true));
      default:
        return dv.getFloat64(p, true); // FLOAT64
    }
  }

  /** A value of `type`; `what` names it (the key, with an index inside arrays). */
  value(type: number, what: string, depth = 0): GGUFValue {
    const size = FIXED_SIZE[type];
    if (size !== undefined) {
      this.need(size, what);
      const v = this.fixedAt(type, this.pos);
      this.pos += size;
      return v;
    }
    if (type === GGUFType.STRING) return this.str(what);
    if (type === GGUFType.ARRAY) return this.array(what, depth);
    throw this.fail(what, `unknown value type ${type} (expected 0..12)`, this.pos - 4);
  }

  /** An array: u32 element type, u64 count, the elements. */
  array(what: string, depth: number): GGUFValue[] {
    if (depth >= MAX_ARRAY_DEPTH) {
      throw this.fail(what, `arrays nest deeper than ${MAX_ARRAY_DEPTH}`);
    }
    const typeAt = this.pos;
    const type = this.u32(`${what} element type`);
    const min = minSize(type);
    if (min === undefined) {
      throw this.fail(what, `unknown array element type ${type} (expected 0..12)`, typeAt);
    }
    const n = this.count(`${what} array length`, min);
    const out: GGUFValue[] = new Array(n);
    const size = FIXED_SIZE[type];
    if (size !== undefined) {
      // count() already reserved n * size bytes
      for (let i = 0; i < n; i++) out[i] = this.fixedAt(type, this.pos + i * size);
      this.pos += n * size;
    } else if (type === GGUFType.STRING) {
      return this.strings(n, what);
    } else {
      for (let i = 0; i < n; i++) out[i] = this.array(`${what}[${i}]`, depth + 1);
    }
    return out;
  }
}

/** A 64-bit integer as a number when exact, else kept as bigint. */
function safeNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(v)
    : v;
}
