/**
 * Argument checks and activations shared by the reference backend's ops.
 *
 * @module
 */

import type { Buf, Weight } from "../../core/backend.ts";
import { RefBuf, RefWeight } from "./_types.ts";

/** `x · sigmoid(x)`; for very negative x, exp(-x) is Infinity and the result is -0. */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function relu(x: number): number {
  return x > 0 ? x : 0;
}

/** The Float32Array behind a Buf; throws when the Buf came from another backend. */
export function buf(op: string, arg: string, b: Buf): Float32Array {
  if (!(b instanceof RefBuf)) {
    throw new Error(`reference ${op}: ${arg} is not a reference buffer`);
  }
  return b.data;
}

export function weightOf(op: string, w: Weight): RefWeight {
  if (!(w instanceof RefWeight)) {
    throw new Error(`reference ${op}: weight ${w.name} was not prepared by the reference backend`);
  }
  return w;
}

/** Throws unless `v` is a non-negative integer. */
export function count(op: string, arg: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new Error(`reference ${op}: ${arg} must be a non-negative integer, got ${v}`);
  }
}

/** Throws unless the buffer holds at least `need` elements. */
export function fits(op: string, arg: string, a: Float32Array, need: number): void {
  if (a.length < need) {
    throw new Error(`reference ${op}: ${arg} has ${a.length} elements, needs ${need}`);
  }
}
