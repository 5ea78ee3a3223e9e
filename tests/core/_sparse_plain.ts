/**
 * Plain host re-implementations of the sparse FFN algorithms, straight from their definition,
 * for tests: dequantised matrices, dot products summed in doubles and rounded to f32 where the
 * backend stores an activation.
 *
 * @module
 */

import { dequantize } from "../../core/quant.ts";
import type { GGUFFile } from "../../core/gguf.ts";
import { normals } from "../conformance.ts";

const f32 = Math.fround;

/** A dequantised matrix `[rows, cols]`. */
export interface Mat {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/** Tensor `name` of `file` dequantised (3-D tensors: expert `expert`'s matrix). */
export function mat(file: GGUFFile, name: string, expert = -1): Mat {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  const [rows, cols] = t.shape.slice(-2);
  const all = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  dequantize(t.type, t.data, 0, all.length, all);
  const e = Math.max(expert, 0);
  return { rows, cols, data: all.slice(e * rows * cols, (e + 1) * rows * cols) };
}

/** `m · x` with each output rounded to f32. */
export function matvec(m: Mat, x: ArrayLike<number>): Float32Array {
  const out = new Float32Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let s = 0;
    for (let c = 0; c < m.cols; c++) s += m.data[r * m.cols + c] * x[c];
    out[r] = s;
  }
  return out;
}

const relu = (v: number) => (v > 0 ? v : 0);
const silu = (v: number) => v / (1 + Math.exp(-v));

/** The activation of one neuron. */
export function glu(g: number, u: number, kind: string): number {
  if (kind === "swiglu") return silu(g) * u;
  if (kind === "reglu") return relu(g) * u;
  return relu(g) * relu(u);
}

/** PowerInfer's predictor: ids i with `(fc2 · relu(fc1 · h))_i ≥ threshold`. */
export function lowRankActive(fc1: Mat, fc2: Mat, h: ArrayLike<number>, threshold: number) {
  const z = matvec(fc1, h).map(relu);
  const score = matvec(fc2, z);
  const ids: number[] = [];
  for (let i = 0; i < score.length; i++) if (score[i] >= f32(threshold)) ids.push(i);
  return ids;
}

/** `Σ_{i ∈ active} a_i · downT[i, :]` with `a_i = glu(gate[i]·x, up[i]·x)`. */
export function sparseFFN(
  gate: Mat,
  up: Mat,
  downT: Mat,
  x: ArrayLike<number>,
  active: readonly number[],
  kind: string,
): Float64Array {
  const g = matvec(gate, x), u = matvec(up, x);
  const out = new Float64Array(downT.cols);
  for (const i of active) {
    const a = f32(glu(g[i], u[i], kind));
    for (let j = 0; j < downT.cols; j++) out[j] += a * downT.data[i * downT.cols + j];
  }
  return out;
}

/** `down · glu(gate · x, up · x)` with down `[n_embd, n_ff]`. */
export function denseFFN(gate: Mat, up: Mat, down: Mat, x: ArrayLike<number>, kind: string) {
  const g = matvec(gate, x), u = matvec(up, x);
  const a = g.map((gv, i) => glu(gv, u[i], kind));
  return Float64Array.from(matvec(down, a));
}

/** Seeded unit-normal rows `[n, width]`. */
export function rows(n: number, width: number, seed: number): Float32Array {
  return normals(n * width, seed);
}

/** Max |a - b| over max |b|. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / (scale || 1);
}
