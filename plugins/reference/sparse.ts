/**
 * The reference backend's sparse FFN and MoE ops (`core/backend.ts`, SPARSE_OPS): the plain
 * definition every native sparse kernel is checked against. Same numerics as the dense ops:
 * dot products accumulate in doubles and round to f32 on store.
 *
 * @module
 */

import type { Buf, Glu, IndexBuf, Unary, Weight } from "../../core/backend.ts";
import { buf, count, fits, relu, silu, weightOf } from "./_check.ts";
import { RefIndex, type RefWeight } from "./_types.ts";

const f32 = Math.fround;

/** The RefIndex behind an IndexBuf; throws when it came from another backend. */
export function indexOf(op: string, idx: IndexBuf): RefIndex {
  if (!(idx instanceof RefIndex)) throw new Error(`reference ${op}: idx is not a reference index`);
  return idx;
}

/** Set `dst` to `ids`; throws when they overflow it or are not ascending non-negative ids. */
export function writeIndex(dst: IndexBuf, ids: Int32Array): void {
  const d = indexOf("writeIndex", dst);
  if (ids.length > d.capacity) {
    throw new Error(`reference writeIndex: ${ids.length} ids exceed the capacity ${d.capacity}`);
  }
  for (let k = 0; k < ids.length; k++) {
    if (ids[k] < 0 || (k > 0 && ids[k] <= ids[k - 1])) {
      throw new Error(`reference writeIndex: ids must ascend from 0, got ${ids[k]} at ${k}`);
    }
  }
  d.ids.set(ids);
  d.count = ids.length;
}

/** The valid ids of `src`, copied. */
export function readIndex(src: IndexBuf): Int32Array {
  const s = indexOf("readIndex", src);
  return s.ids.slice(0, s.count);
}

/** `out[i] = op(x[i])`. */
export function unary(out: Buf, x: Buf, n: number, op: Unary): void {
  const o = buf("unary", "out", out);
  const xs = buf("unary", "x", x);
  count("unary", "n", n);
  fits("unary", "out", o, n);
  fits("unary", "x", xs, n);
  switch (op) {
    case "relu":
      for (let i = 0; i < n; i++) o[i] = relu(xs[i]);
      return;
    case "abs_silu":
      for (let i = 0; i < n; i++) o[i] = Math.abs(silu(xs[i]));
      return;
    case "nonzero":
      for (let i = 0; i < n; i++) o[i] = xs[i] !== 0 ? 1 : 0;
      return;
    default:
      throw new Error(`reference unary: unknown op "${op}", expected relu, abs_silu or nonzero`);
  }
}

/** `idx` = every i < n with `score[offset + i] ≥ threshold`, ascending. */
export function select(
  idx: IndexBuf,
  score: Buf,
  offset: number,
  n: number,
  threshold: number,
): void {
  const d = indexOf("select", idx);
  const s = buf("select", "score", score);
  count("select", "offset", offset);
  count("select", "n", n);
  fits("select", "score", s, offset + n);
  if (n > d.capacity) throw new Error(`reference select: n ${n} exceeds capacity ${d.capacity}`);
  const t = f32(threshold); // compared as the f32 a native kernel receives
  let k = 0;
  for (let i = 0; i < n; i++) if (s[offset + i] >= t) d.ids[k++] = i;
  d.count = k;
}

/** The activation of one neuron from its f32 gate and up values. */
export function act1(g: number, u: number, kind: Glu): number {
  switch (kind) {
    case "swiglu":
      return silu(g) * u;
    case "reglu":
      return relu(g) * u;
    case "drelu":
      return relu(g) * relu(u);
    default:
      throw new Error(`reference: unknown glu kind "${kind}", expected swiglu, reglu or drelu`);
  }
}

/** `w[row, :] · x[xOffset .. xOffset + cols]`, in doubles, using `wr` as row scratch. */
function dotRow(w: RefWeight, row: number, xs: Float32Array, xOffset: number, wr: Float32Array) {
  w.row(row, wr);
  let sum = 0;
  for (let c = 0; c < w.cols; c++) sum += wr[c] * xs[xOffset + c];
  return sum;
}

/** Checks shared by the gathered ops: the ids fit the weight and the output. */
function checkRows(op: string, d: RefIndex, rows: number, out: Float32Array): void {
  fits(op, "act", out, d.count);
  if (d.count > 0 && d.ids[d.count - 1] >= rows) {
    throw new Error(`reference ${op}: neuron ${d.ids[d.count - 1]} is outside [0, ${rows})`);
  }
}

/** `act[k] = glu(gate[i]·x, up[i]·x)` with i = idx[k], packed. */
export function gluSparse(
  act: Buf,
  gate: Weight,
  up: Weight,
  x: Buf,
  xOffset: number,
  idx: IndexBuf,
  kind: Glu,
): void {
  const a = buf("gluSparse", "act", act);
  const xs = buf("gluSparse", "x", x);
  const g = weightOf("gluSparse", gate);
  const u = weightOf("gluSparse", up);
  const d = indexOf("gluSparse", idx);
  count("gluSparse", "xOffset", xOffset);
  if (g.rows !== u.rows || g.cols !== u.cols) {
    throw new Error(`reference gluSparse: ${g.name} and ${u.name} differ in shape`);
  }
  fits("gluSparse", "x", xs, xOffset + g.cols);
  checkRows("gluSparse", d, g.rows, a);
  if (a === xs) throw new Error("reference gluSparse: act must not alias x");
  const wr = new Float32Array(g.cols);
  for (let k = 0; k < d.count; k++) {
    const i = d.ids[k];
    const gv = f32(dotRow(g, i, xs, xOffset, wr));
    const uv = f32(dotRow(u, i, xs, xOffset, wr));
    a[k] = act1(gv, uv, kind);
  }
}

/** `act[k] = glu(gateOut[gateOffset + i], up[i]·x)` with i = idx[k], packed. */
export function gluSparseGated(
  act: Buf,
  gateOut: Buf,
  gateOffset: number,
  up: Weight,
  x: Buf,
  xOffset: number,
  idx: IndexBuf,
  kind: Glu,
): void {
  const a = buf("gluSparseGated", "act", act);
  const gs = buf("gluSparseGated", "gateOut", gateOut);
  const xs = buf("gluSparseGated", "x", x);
  const u = weightOf("gluSparseGated", up);
  const d = indexOf("gluSparseGated", idx);
  count("gluSparseGated", "gateOffset", gateOffset);
  count("gluSparseGated", "xOffset", xOffset);
  fits("gluSparseGated", "x", xs, xOffset + u.cols);
  fits("gluSparseGated", "gateOut", gs, gateOffset + u.rows);
  checkRows("gluSparseGated", d, u.rows, a);
  if (a === xs || a === gs) throw new Error("reference gluSparseGated: act must not alias inputs");
  const wr = new Float32Array(u.cols);
  for (let k = 0; k < d.count; k++) {
    const i = d.ids[k];
    a[k] = act1(gs[gateOffset + i], f32(dotRow(u, i, xs, xOffset, wr)), kind);
  }
}

/** `out[outOffset + j] = Σ_k act[k] · downT[idx[k], j]` over act[k] ≠ 0. */
export function downSparse(
  out: Buf,
  outOffset: number,
  downT: Weight,
  act: Buf,
  idx: IndexBuf,
): void {
  const o = buf("downSparse", "out", out);
  const a = buf("downSparse", "act", act);
  const w = weightOf("downSparse", downT);
  const d = indexOf("downSparse", idx);
  count("downSparse", "outOffset", outOffset);
  fits("downSparse", "out", o, outOffset + w.cols);
  checkRows("downSparse", d, w.rows, a);
  if (o === a) throw new Error("reference downSparse: out must not alias act");
  const acc = new Float64Array(w.cols);
  const wr = new Float32Array(w.cols);
  for (let k = 0; k < d.count; k++) {
    const ak = a[k];
    if (ak === 0) continue; // an inactive neuron: its down row is never read
    w.row(d.ids[k], wr);
    for (let j = 0; j < w.cols; j++) acc[j] += ak * wr[j];
  }
  for (let j = 0; j < w.cols; j++) o[outOffset + j] = acc[j];
}

/** Per token t: `out[t, j] = Σ_i act[t, i] · downT[i, j]` over selected i with act ≠ 0. */
export function downSparseBatch(
  out: Buf,
  downT: Weight,
  act: Buf,
  score: Buf | null,
  threshold: number,
  nTok: number,
): void {
  const op = "downSparseBatch";
  const o = buf(op, "out", out);
  const a = buf(op, "act", act);
  const s = score === null ? null : buf(op, "score", score);
  const w = weightOf(op, downT);
  count(op, "nTok", nTok);
  fits(op, "out", o, nTok * w.cols);
  fits(op, "act", a, nTok * w.rows);
  if (s) fits(op, "score", s, nTok * w.rows);
  if (o === a) throw new Error(`reference ${op}: out must not alias act`);
  const t32 = f32(threshold); // compared as select compares
  const wr = new Float32Array(w.cols);
  const acc = new Float64Array(w.cols);
  for (let t = 0; t < nTok; t++) {
    acc.fill(0);
    for (let i = 0; i < w.rows; i++) {
      const ai = a[t * w.rows + i];
      if (ai === 0 || (s && !(s[t * w.rows + i] >= t32))) continue;
      w.row(i, wr);
      for (let j = 0; j < w.cols; j++) acc[j] += ai * wr[j];
    }
    for (let j = 0; j < w.cols; j++) o[t * w.cols + j] = acc[j];
  }
}

/** `out[outOffset + i] += alpha · x[xOffset + i]` for i < n. */
export function axpy(
  out: Buf,
  outOffset: number,
  x: Buf,
  xOffset: number,
  n: number,
  alpha: number,
): void {
  const o = buf("axpy", "out", out);
  const xs = buf("axpy", "x", x);
  count("axpy", "n", n);
  count("axpy", "outOffset", outOffset);
  count("axpy", "xOffset", xOffset);
  fits("axpy", "out", o, outOffset + n);
  fits("axpy", "x", xs, xOffset + n);
  const al = f32(alpha);
  for (let i = 0; i < n; i++) o[outOffset + i] = o[outOffset + i] + al * xs[xOffset + i];
}
