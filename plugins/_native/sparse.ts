/**
 * The sparse FFN and MoE ops of the native backends (SPARSE_OPS of `core/backend.ts`) over
 * `kernels/c/sparse.c`. An index list is an Int32Array `[count, id0, id1, …]`, so `select`
 * leaves the count native-side. Argument checks mirror `plugins/reference/sparse.ts`.
 *
 * Row-column bundling (`prepareSparseFFN`, off by default: see BENCHMARKS.md): with `bundle`
 * set, each neuron's gate, up and down_t rows are copied next to each other at load, and the
 * kernels read rows `3 ×` a row apart. The originals stay (the oracle and cats predictors run
 * dense matmuls on gate and up), so those three tensors take twice the memory.
 *
 * A list of every neuron (the dense predictor) runs gate and up as the backend's dense matvecs
 * (Q8_0/Q4_0 through its repacked copy: a gather of every row in the unpacked layout is up to
 * 1.4x slower in Q4_0; see BENCHMARKS.md), then the activation;
 * the down projection still reads only the rows with a ≠ 0.
 *
 * @module
 */

import type { Glu, IndexBuf, Unary } from "../../core/backend.ts";
import { DType, rowBytes } from "../../core/dtype.ts";
import type { NativeWeight } from "./_types.ts";
import type { NativeLib } from "./symbols.ts";

/** An index list in host memory: `data[0]` is the count, `data[1 ..]` the ascending ids. */
export class NativeIndex implements IndexBuf {
  readonly data: Int32Array;
  constructor(capacity: number) {
    this.data = new Int32Array(capacity + 1);
  }
  get capacity(): number {
    return this.data.length - 1;
  }
}

/** Where a matrix's neuron rows are read: its own bytes, or its place in a bundle. */
interface Rows {
  readonly data: Uint8Array;
  /** Bytes from one neuron's row to the next. */
  readonly stride: number;
}

type GluFn = (
  act: Float32Array,
  gate: Uint8Array | Float32Array,
  up: Uint8Array,
  x: Float32Array,
  idx: Int32Array,
  stride: number,
  cols: number,
  kind: number,
) => void;
type DownFn = (
  out: Float32Array,
  downT: Uint8Array,
  act: Float32Array,
  idx: Int32Array,
  stride: number,
  cols: number,
) => void;

/** The backend's matvec `out = w · x` (one token; Q8_0/Q4_0 through its repacked copy). */
export type Matvec = (out: Float32Array, w: NativeWeight, x: Float32Array) => void;

type DownBatchFn = (
  out: Float32Array,
  downT: Uint8Array,
  act: Float32Array,
  score: Float32Array | null,
  threshold: number,
  nTok: number,
  rows: number,
  stride: number,
  cols: number,
) => void;

const GLU_KIND: Record<Glu, number> = { swiglu: 0, reglu: 1, drelu: 2 };

/** The sparse ops of one native backend; its methods take already-resolved buffers. */
export class NativeSparse {
  /** Bundle each sparse FFN's rows at load (`prepareSparseFFN`). */
  bundle = false;
  readonly #name: string;
  readonly #lib: NativeLib;
  readonly #rows = new WeakMap<NativeWeight, Rows>();
  readonly #glu: Record<number, GluFn>;
  readonly #gated: Record<number, GluFn>;
  readonly #down: Record<number, DownFn>;
  readonly #downBatch: Record<number, DownBatchFn>;
  readonly #matvec: Matvec;
  /** Gate and up of every neuron, for the whole-list path. */
  #all = { gate: new Float32Array(0), up: new Float32Array(0) };

  constructor(name: string, lib: NativeLib, matvec: Matvec) {
    this.#name = name;
    this.#lib = lib;
    this.#matvec = matvec;
    const s = lib.symbols;
    this.#glu = {
      [DType.F32]: s.ts_glu_sparse_f32,
      [DType.F16]: s.ts_glu_sparse_f16,
      [DType.BF16]: s.ts_glu_sparse_bf16,
      [DType.Q8_0]: s.ts_glu_sparse_q8_0,
      [DType.Q4_0]: s.ts_glu_sparse_q4_0,
    };
    this.#gated = {
      [DType.F32]: s.ts_glu_sparse_gated_f32,
      [DType.F16]: s.ts_glu_sparse_gated_f16,
      [DType.BF16]: s.ts_glu_sparse_gated_bf16,
      [DType.Q8_0]: s.ts_glu_sparse_gated_q8_0,
      [DType.Q4_0]: s.ts_glu_sparse_gated_q4_0,
    };
    this.#down = {
      [DType.F32]: s.ts_down_sparse_f32,
      [DType.F16]: s.ts_down_sparse_f16,
      [DType.BF16]: s.ts_down_sparse_bf16,
      [DType.Q8_0]: s.ts_down_sparse_q8_0,
      [DType.Q4_0]: s.ts_down_sparse_q4_0,
    };
    this.#downBatch = {
      [DType.F32]: s.ts_down_sparse_batch_f32,
      [DType.F16]: s.ts_down_sparse_batch_f16,
      [DType.BF16]: s.ts_down_sparse_batch_bf16,
      [DType.Q8_0]: s.ts_down_sparse_batch_q8_0,
      [DType.Q4_0]: s.ts_down_sparse_batch_q4_0,
    };
  }

  index(op: string, idx: IndexBuf): NativeIndex {
    if (!(idx instanceof NativeIndex)) {
      throw new Error(`${this.#name} ${op}: idx is not a ${this.#name} index`);
    }
    return idx;
  }

  writeIndex(d: NativeIndex, ids: Int32Array): void {
    if (ids.length > d.capacity) {
      throw new Error(
        `${this.#name} writeIndex: ${ids.length} ids exceed the capacity ${d.capacity}`,
      );
    }
    for (let k = 0; k < ids.length; k++) {
      if (ids[k] < 0 || (k > 0 && ids[k] <= ids[k - 1])) {
        throw new Error(`${this.#name} writeIndex: ids must ascend from 0, got ${ids[k]} at ${k}`);
      }
    }
    d.data.set(ids, 1);
    d.data[0] = ids.length;
  }

  unary(o: Float32Array, xs: Float32Array, n: number, op: Unary): void {
    const s = this.#lib.symbols;
    const fn = op === "relu"
      ? s.ts_unary_f32_relu
      : op === "abs_silu"
      ? s.ts_unary_f32_abs_silu
      : op === "nonzero"
      ? s.ts_unary_f32_nonzero
      : null;
    if (!fn) {
      throw new Error(
        `${this.#name} unary: unknown op "${op}", expected relu, abs_silu or nonzero`,
      );
    }
    this.#fits("unary", "out", o, n);
    this.#fits("unary", "x", xs, n);
    if (n > 0) fn(o, xs, n);
  }

  select(d: NativeIndex, s: Float32Array, offset: number, n: number, threshold: number): void {
    this.#fits("select", "score", s, offset + n);
    if (n > d.capacity) {
      throw new Error(`${this.#name} select: n ${n} exceeds capacity ${d.capacity}`);
    }
    this.#lib.symbols.ts_select_f32(d.data, s.subarray(offset), n, threshold);
  }

  gluSparse(
    a: Float32Array,
    g: NativeWeight,
    u: NativeWeight,
    xs: Float32Array,
    xOffset: number,
    d: NativeIndex,
    kind: Glu,
  ): void {
    if (g.rows !== u.rows || g.cols !== u.cols || g.type !== u.type) {
      throw new Error(`${this.#name} gluSparse: ${g.name} and ${u.name} differ in shape or type`);
    }
    this.#gather("gluSparse", a, u, xs, xOffset, d, kind);
    if (d.data[0] === u.rows) return this.#gluAll(a, g, u, xs.subarray(xOffset), kind);
    const gr = this.rows(g), ur = this.rows(u);
    if (gr.stride !== ur.stride) {
      throw new Error(`${this.#name} gluSparse: ${g.name} and ${u.name} are laid out apart`);
    }
    this.#glu[g.type](
      a,
      gr.data,
      ur.data,
      xs.subarray(xOffset),
      d.data,
      ur.stride,
      u.cols,
      GLU_KIND[kind],
    );
  }

  gluSparseGated(
    a: Float32Array,
    gs: Float32Array,
    gateOffset: number,
    u: NativeWeight,
    xs: Float32Array,
    xOffset: number,
    d: NativeIndex,
    kind: Glu,
  ): void {
    this.#fits("gluSparseGated", "gateOut", gs, gateOffset + u.rows);
    if (a.buffer === gs.buffer) {
      throw new Error(`${this.#name} gluSparseGated: act must not alias gateOut`);
    }
    this.#gather("gluSparseGated", a, u, xs, xOffset, d, kind);
    const ur = this.rows(u);
    this.#gated[u.type](
      a,
      gs.subarray(gateOffset),
      ur.data,
      xs.subarray(xOffset),
      d.data,
      ur.stride,
      u.cols,
      GLU_KIND[kind],
    );
  }

  downSparse(o: Float32Array, outOffset: number, w: NativeWeight, a: Float32Array, d: NativeIndex) {
    this.#type("downSparse", w);
    this.#fits("downSparse", "out", o, outOffset + w.cols);
    this.#ids("downSparse", d, w, a);
    if (o.buffer === a.buffer) throw new Error(`${this.#name} downSparse: out must not alias act`);
    const r = this.rows(w);
    this.#down[w.type](o.subarray(outOffset), r.data, a, d.data, r.stride, w.cols);
  }

  downSparseBatch(
    o: Float32Array,
    w: NativeWeight,
    a: Float32Array,
    sc: Float32Array | null,
    threshold: number,
    nTok: number,
  ): void {
    const op = "downSparseBatch";
    this.#type(op, w);
    this.#fits(op, "out", o, nTok * w.cols);
    this.#fits(op, "act", a, nTok * w.rows);
    if (sc) this.#fits(op, "score", sc, nTok * w.rows);
    if (o.buffer === a.buffer) throw new Error(`${this.#name} ${op}: out must not alias act`);
    const r = this.rows(w);
    this.#downBatch[w.type](o, r.data, a, sc, threshold, nTok, w.rows, r.stride, w.cols);
  }

  axpy(
    o: Float32Array,
    outOffset: number,
    xs: Float32Array,
    xOffset: number,
    n: number,
    alpha: number,
  ) {
    this.#fits("axpy", "out", o, outOffset + n);
    this.#fits("axpy", "x", xs, xOffset + n);
    if (n > 0) this.#lib.symbols.ts_axpy_f32(o.subarray(outOffset), xs.subarray(xOffset), n, alpha);
  }

  /** Bundle one FFN's rows when `bundle` is set and the three matrices share type and shape. */
  prepare(gate: NativeWeight, up: NativeWeight, downT: NativeWeight): void {
    if (!this.bundle) return;
    const same = [up, downT].every((w) =>
      w.type === gate.type && w.rows === gate.rows && w.cols === gate.cols
    );
    if (!same || gate.type === DType.I32) return;
    const rb = rowBytes(gate.type, gate.cols);
    const data = new Uint8Array(3 * rb * gate.rows); // [n_ff, 3, row]
    for (let i = 0; i < gate.rows; i++) {
      data.set(gate.data.subarray(i * rb, (i + 1) * rb), 3 * i * rb);
      data.set(up.data.subarray(i * rb, (i + 1) * rb), (3 * i + 1) * rb);
      data.set(downT.data.subarray(i * rb, (i + 1) * rb), (3 * i + 2) * rb);
    }
    [gate, up, downT].forEach((w, j) =>
      this.#rows.set(w, { data: data.subarray(j * rb), stride: 3 * rb })
    );
  }

  /** `a = glu(g · x, u · x)` for the list 0 .. rows - 1 (ascending, full): two dense matvecs. */
  #gluAll(a: Float32Array, g: NativeWeight, u: NativeWeight, x: Float32Array, kind: Glu): void {
    if (this.#all.gate.length < u.rows) {
      this.#all = { gate: new Float32Array(u.rows), up: new Float32Array(u.rows) };
    }
    const { gate, up } = this.#all;
    this.#matvec(gate, g, x);
    this.#matvec(up, u, x);
    const s = this.#lib.symbols;
    const fn = kind === "swiglu"
      ? s.ts_glu_f32_swiglu
      : kind === "reglu"
      ? s.ts_glu_f32_reglu
      : s.ts_glu_f32_drelu;
    fn(a, gate, up, u.rows);
  }

  /** Where `w`'s neuron rows are read. */
  rows(w: NativeWeight): Rows {
    return this.#rows.get(w) ?? { data: w.data, stride: rowBytes(w.type, w.cols) };
  }

  /** Checks shared by the gathered ops. */
  #gather(
    op: string,
    a: Float32Array,
    u: NativeWeight,
    xs: Float32Array,
    xOffset: number,
    d: NativeIndex,
    kind: Glu,
  ): void {
    this.#type(op, u);
    if (GLU_KIND[kind] === undefined) {
      throw new Error(
        `${this.#name} ${op}: unknown glu kind "${kind}", expected swiglu, reglu or drelu`,
      );
    }
    this.#fits(op, "x", xs, xOffset + u.cols);
    this.#ids(op, d, u, a);
    if (a.buffer === xs.buffer) throw new Error(`${this.#name} ${op}: act must not alias x`);
  }

  #type(op: string, w: NativeWeight): void {
    if (this.#down[w.type] === undefined) {
      throw new Error(`${this.#name} ${op}: ${w.name} has no sparse kernel for its type`);
    }
  }

  #ids(op: string, d: NativeIndex, w: NativeWeight, a: Float32Array): void {
    const count = d.data[0];
    this.#fits(op, "act", a, count);
    if (count > 0 && d.data[count] >= w.rows) {
      throw new Error(`${this.#name} ${op}: neuron ${d.data[count]} is outside [0, ${w.rows})`);
    }
  }

  #fits(op: string, arg: string, a: Float32Array, need: number): void {
    if (a.length < need) {
      throw new Error(`${this.#name} ${op}: ${arg} has ${a.length} elements, needs ${need}`);
    }
  }
}
