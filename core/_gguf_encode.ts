/**
 * Byte-level encoding for the GGUF writer: a growing little-endian buffer and the checked
 * encoding of each metadata value type (values out of range throw naming the key).
 *
 * @module
 */

import { FIXED_SIZE, GGUFType } from "./_gguf_cursor.ts";
import type { GGUFValue } from "./gguf.ts";

/** Little-endian byte builder that grows as needed. */
export class Bytes {
  buf = new Uint8Array(1024);
  dv = new DataView(this.buf.buffer);
  len = 0;
  private readonly encoder = new TextEncoder();

  /** Reserve `n` bytes and return their offset. */
  take(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  /** Reserve `n` bytes, then return a view positioned on them (take() may grow the buffer). */
  private at(n: number): { dv: DataView; p: number } {
    const p = this.take(n);
    return { dv: this.dv, p };
  }

  raw(b: Uint8Array): void {
    const p = this.take(b.length);
    this.buf.set(b, p);
  }

  u32(v: number): void {
    const { dv, p } = this.at(4);
    dv.setUint32(p, v, true);
  }

  u64(v: number | bigint): void {
    const { dv, p } = this.at(8);
    dv.setBigUint64(p, BigInt(v), true);
  }

  /** A fixed-size numeric value of GGUF type `type` (caller checked its range). */
  num(type: number, v: number | bigint): void {
    const { dv, p } = this.at(FIXED_SIZE[type]);
    switch (type) {
      case GGUFType.UINT8:
        dv.setUint8(p, v as number);
        return;
      case GGUFType.INT8:
        dv.setInt8(p, v as number);
        return;
      case GGUFType.UINT16:
        dv.setUint16(p, v as number, true);
        return;
      case GGUFType.INT16:
        dv.setInt16(p, v as number, true);
        return;
      case GGUFType.UINT32:
        dv.setUint32(p, v as number, true);
        return;
      case GGUFType.INT32:
        dv.setInt32(p, v as number, true);
        return;
      case GGUFType.FLOAT32:
        dv.setFloat32(p, v as number, true);
        return;
      case GGUFType.FLOAT64:
        dv.setFloat64(p, v as number, true);
        return;
      case GGUFType.BOOL:
        dv.setUint8(p, v as number);
        return;
      case GGUFType.UINT64:
        dv.setBigUint64(p, v as bigint, true);
        return;
      case GGUFType.INT64:
        dv.setBigInt64(p, v as bigint, true);
        return;
    }
  }

  str(s: string): void {
    const b = this.encoder.encode(s);
    this.u64(b.length);
    this.raw(b);
  }

  done(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

const INT_RANGE: Record<number, [number, number]> = {
  [GGUFType.UINT8]: [0, 0xff],
  [GGUFType.INT8]: [-0x80, 0x7f],
  [GGUFType.UINT16]: [0, 0xffff],
  [GGUFType.INT16]: [-0x8000, 0x7fff],
  [GGUFType.UINT32]: [0, 0xffffffff],
  [GGUFType.INT32]: [-0x80000000, 0x7fffffff],
};

/** Append one value of `type`; `types` lists element types for the nested levels below it. */
export function putValue(
  b: Bytes,
  what: string,
  type: number,
  v: GGUFValue,
  types: readonly number[],
) {
  const bad = (expected: string) =>
    new Error(`metadata ${what}: expected ${expected}, got ${typeof v} ${String(v).slice(0, 40)}`);
  const range = INT_RANGE[type];
  if (range) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1]) {
      throw bad(`an integer in ${range[0]}..${range[1]}`);
    }
    b.num(type, v);
    return;
  }
  switch (type) {
    case GGUFType.FLOAT32:
    case GGUFType.FLOAT64:
      if (typeof v !== "number") throw bad("a number");
      b.num(type, v);
      return;
    case GGUFType.BOOL:
      if (typeof v !== "boolean") throw bad("a boolean");
      b.num(type, v ? 1 : 0);
      return;
    case GGUFType.STRING:
      if (typeof v !== "string") throw bad("a string");
      b.str(v);
      return;
    case GGUFType.UINT64:
    case GGUFType.INT64: {
      const unsigned = type === GGUFType.UINT64;
      if (typeof v !== "bigint" && !(typeof v === "number" && Number.isSafeInteger(v))) {
        throw bad("a safe integer or bigint");
      }
      const big = BigInt(v);
      const lo = unsigned ? 0n : -(2n ** 63n);
      const hi = unsigned ? 2n ** 64n - 1n : 2n ** 63n - 1n;
      if (big < lo || big > hi) throw bad(`a ${unsigned ? "u64" : "i64"}`);
      b.num(type, big);
      return;
    }
    case GGUFType.ARRAY: {
      if (!Array.isArray(v)) throw bad("an array");
      const [elem, ...rest] = types;
      if (elem === undefined || elem < 0 || elem > GGUFType.FLOAT64) {
        throw new Error(`metadata ${what}: array element type ${elem} is not a GGUF type (0..12)`);
      }
      b.u32(elem);
      b.u64(v.length);
      for (let i = 0; i < v.length; i++) putValue(b, `${what}[${i}]`, elem, v[i], rest);
      return;
    }
  }
  throw new Error(`metadata ${what}: unknown value type ${type} (expected 0..12)`);
}
