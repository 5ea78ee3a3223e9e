/**
 * Helpers of the backend conformance suite: the case type, seeded inputs, and outputs with
 * NaN pre-fill and guard elements.
 *
 * @module
 */

import type { Backend, Buf, Weight } from "../core/backend.ts";
import { type DType, dtypeName } from "../core/dtype.ts";
import { quantize } from "../core/quant.ts";

export interface ConformanceCase {
  readonly name: string;
  /** Allowed error relative to the reference output's max magnitude. */
  readonly tolerance: number;
  /**
   * A floor under that magnitude: the typical output size for these random inputs, so that one
   * output which happens to cancel to near zero does not inflate the relative error.
   */
  readonly minScale?: number;
  /** Set for the sparse FFN and MoE ops, which a backend may lack for now (SPARSE_OPS). */
  readonly sparse?: boolean;
  op(b: Backend): Float32Array;
}

/** Guard elements after every output; an op that writes them fails. */
export const GUARD = 8;
export const GUARD_VALUE = 7.25;

/** Deterministic standard-normal values (mulberry32 + Box-Muller), times `scale`. */
export function normals(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - next(); // (0, 1], so log() stays finite
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return out;
}

/** FNV-1a of the case name: each case gets its own inputs, the same on every run. */
export function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function upload(b: Backend, values: Float32Array): Buf {
  const buf = b.alloc(values.length);
  b.write(buf, values);
  return buf;
}

/** An output of `n` elements pre-filled with NaN, followed by guard elements. */
export function output(b: Backend, n: number): Buf {
  const buf = b.alloc(n + GUARD);
  const init = new Float32Array(n + GUARD).fill(NaN);
  init.fill(GUARD_VALUE, n);
  b.write(buf, init);
  return buf;
}

/** The first `n` elements of `buf`; throws when the op wrote into the guard. */
export function result(b: Backend, buf: Buf, n: number, op: string): Float32Array {
  const all = b.read(buf, 0, n + GUARD);
  for (let i = n; i < n + GUARD; i++) {
    if (all[i] !== GUARD_VALUE) throw new Error(`${op} wrote past its output (element ${i})`);
  }
  return all.slice(0, n);
}

export function weightOf(b: Backend, type: DType, shape: number[], values: Float32Array): Weight {
  return b.weight({ name: `w.${dtypeName(type)}`, type, shape, data: quantize(type, values) });
}
