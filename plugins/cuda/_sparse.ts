/**
 * The CUDA backend's sparse FFN and MoE ops (core/backend.ts SPARSE_OPS, kernels/cuda/sparse.cu):
 * index lists, the predictor's unary, threshold → index list, gathered gate/up rows with the
 * activation, sparse down over down_t rows, axpy. The backend delegates to these; each flushes
 * the held-back ops first, so effects keep the order of the calls.
 *
 * @module
 */

import type { Buf, Glu, IndexBuf, Unary, Weight } from "../../core/backend.ts";
import { DType } from "../../core/dtype.ts";
import type { Ctx } from "./_args.ts";
import { at, CudaIndex, type CudaWeight } from "./_buffers.ts";

type P = Deno.PointerObject;
type SparseFns = {
  glu: (...a: [P, P | null, P | null, P, P, P, number, number, number, number]) => number;
  down: (...a: [P, P, P, P, number, number, P | null, P | null]) => number;
};

/** Codes of kernels/cuda/sparse.cu. */
const UNARY: Record<Unary, number> = { relu: 0, abs_silu: 1, nonzero: 2 };
const GLU_KIND: Record<Glu, number> = { swiglu: 0, reglu: 1, drelu: 2 };

/** The sparse ops of one CudaBackend. */
export class SparseOps {
  readonly #c: Ctx;
  readonly #fns: Record<number, SparseFns>;

  constructor(ctx: Ctx) {
    this.#c = ctx;
    const s = ctx.lib.symbols;
    this.#fns = {
      [DType.F32]: { glu: s.ts_glu_sparse_f32, down: s.ts_down_sparse_f32 },
      [DType.F16]: { glu: s.ts_glu_sparse_f16, down: s.ts_down_sparse_f16 },
      [DType.BF16]: { glu: s.ts_glu_sparse_bf16, down: s.ts_down_sparse_bf16 },
      [DType.Q8_0]: { glu: s.ts_glu_sparse_q8_0, down: s.ts_down_sparse_q8_0 },
      [DType.Q4_0]: { glu: s.ts_glu_sparse_q4_0, down: s.ts_down_sparse_q4_0 },
    };
  }

  allocIndex(capacity: number): IndexBuf {
    this.#c.args.count("allocIndex", "capacity", capacity);
    return new CudaIndex(this.#c.malloc("allocIndex", (capacity + 1) * 4), capacity);
  }

  writeIndex(dst: IndexBuf, ids: Int32Array): void {
    const { args, lib, q } = this.#c;
    const d = args.index("writeIndex", dst);
    if (ids.length > d.capacity) {
      throw new Error(`cuda writeIndex: ${ids.length} ids exceed the capacity ${d.capacity}`);
    }
    for (let k = 0; k < ids.length; k++) {
      if (ids[k] < 0 || (k > 0 && ids[k] <= ids[k - 1])) {
        throw new Error(`cuda writeIndex: ids must ascend from 0, got ${ids[k]} at ${k}`);
      }
    }
    const host = new Int32Array(ids.length + 1);
    host[0] = ids.length;
    host.set(ids, 1);
    q.flush();
    this.#c.check(
      "writeIndex",
      lib.symbols.ts_cuda_upload(d.ptr, 0n, host, BigInt(host.byteLength)),
    );
  }

  readIndex(src: IndexBuf): Int32Array {
    const { args, lib, q } = this.#c;
    const s = args.index("readIndex", src);
    const n = new Int32Array(1);
    q.flush();
    this.#c.check("readIndex", lib.symbols.ts_cuda_download(n, s.ptr, 0n, 4n));
    const ids = new Int32Array(n[0]);
    if (n[0] > 0) {
      this.#c.check(
        "readIndex",
        lib.symbols.ts_cuda_download(ids, s.ptr, 4n, BigInt(n[0] * 4)),
      );
    }
    return ids;
  }

  unary(out: Buf, x: Buf, n: number, op: Unary): void {
    const { args, lib, q } = this.#c;
    const [o, xs] = args.three("unary", ["out", "x"], [out, x], n);
    if (!(op in UNARY)) {
      throw new Error(`cuda unary: unknown op "${op}", expected relu, abs_silu or nonzero`);
    }
    if (n === 0 || (op === "relu" && o === xs && q.relu(xs, n))) return;
    q.flush();
    this.#c.check("unary", lib.symbols.ts_unary_f32(o.ptr, xs.ptr, n, UNARY[op]));
  }

  select(idx: IndexBuf, score: Buf, offset: number, n: number, threshold: number): void {
    const { args, lib, q } = this.#c;
    const d = args.index("select", idx);
    const s = args.buf("select", "score", score);
    args.count("select", "offset", offset);
    args.count("select", "n", n);
    args.fits("select", "score", s, offset + n);
    if (n > d.capacity) throw new Error(`cuda select: n ${n} exceeds capacity ${d.capacity}`);
    if (q.selectAfter(at(s.ptr, offset * 4), n, d.ptr, threshold)) return;
    q.flush();
    this.#c.check("select", lib.symbols.ts_select_f32(d.ptr, at(s.ptr, offset * 4), n, threshold));
  }

  gluSparse(act: Buf, gate: Weight, up: Weight, x: Buf, xOffset: number, idx: IndexBuf, kind: Glu) {
    const g = this.#c.args.weight("gluSparse", gate);
    const u = this.#c.args.weight("gluSparse", up);
    if (g.type !== u.type || g.rows !== u.rows || g.cols !== u.cols) {
      throw new Error(`cuda gluSparse: ${g.name} and ${u.name} differ in type or shape`);
    }
    this.#gathered("gluSparse", act, g.ptr, null, u, x, xOffset, idx, kind);
  }

  gluSparseGated(
    act: Buf,
    gateOut: Buf,
    gateOffset: number,
    up: Weight,
    x: Buf,
    xOffset: number,
    idx: IndexBuf,
    kind: Glu,
  ): void {
    const { args } = this.#c;
    const gs = args.buf("gluSparseGated", "gateOut", gateOut);
    const u = args.weight("gluSparseGated", up);
    args.count("gluSparseGated", "gateOffset", gateOffset);
    args.fits("gluSparseGated", "gateOut", gs, gateOffset + u.rows);
    if (gs === act) throw new Error("cuda gluSparseGated: act must not alias gateOut");
    const gp = at(gs.ptr, gateOffset * 4);
    this.#gathered("gluSparseGated", act, null, gp, u, x, xOffset, idx, kind);
  }

  /** The gathered gate/up rows of `idx` (gate weight, or the gate projection gateOut). */
  #gathered(
    op: string,
    act: Buf,
    gate: P | null,
    gateOut: P | null,
    u: CudaWeight,
    x: Buf,
    xOffset: number,
    idx: IndexBuf,
    kind: Glu,
  ): void {
    const { args, q } = this.#c;
    const a = args.buf(op, "act", act);
    const xs = args.buf(op, "x", x);
    const d = args.index(op, idx);
    args.count(op, "xOffset", xOffset);
    args.fits(op, "x", xs, xOffset + u.cols);
    if (a === xs) throw new Error(`cuda ${op}: act must not alias x`);
    if (!(kind in GLU_KIND)) throw new Error(`cuda ${op}: unknown glu kind "${kind}"`);
    // The count lives on the device, unchecked here: act must hold that many values.
    const fromSelect = q.gluFromSelect(d.ptr); // flushes; true: this launch completes idx
    const xp = at(xs.ptr, xOffset * 4);
    const fn = this.#fns[u.type].glu;
    const rc = fn(
      a.ptr,
      gate,
      gateOut,
      u.ptr,
      xp,
      d.ptr,
      d.capacity,
      u.cols,
      GLU_KIND[kind],
      fromSelect ? 1 : 0,
    );
    this.#c.check(op, rc);
  }

  downSparse(out: Buf, outOffset: number, downT: Weight, act: Buf, idx: IndexBuf): void {
    const { args, q } = this.#c;
    const o = args.buf("downSparse", "out", out);
    const a = args.buf("downSparse", "act", act);
    const w = args.weight("downSparse", downT);
    const d = args.index("downSparse", idx);
    args.count("downSparse", "outOffset", outOffset);
    args.fits("downSparse", "out", o, outOffset + w.cols);
    if (o === a) throw new Error("cuda downSparse: out must not alias act");
    // held: a residual add of out that follows runs in its last kernel (_queue.ts)
    const fn = this.#fns[w.type].down;
    q.down({
      fn,
      out: o,
      offset: outOffset,
      w: w.ptr,
      act: a.ptr,
      idx: d.ptr,
      // the kernel may read act and ids up to here before it knows the count
      capacity: Math.min(d.capacity, a.length),
      cols: w.cols,
    });
  }

  axpy(out: Buf, outOffset: number, x: Buf, xOffset: number, n: number, alpha: number): void {
    const { args, lib, q } = this.#c;
    const o = args.buf("axpy", "out", out);
    const xs = args.buf("axpy", "x", x);
    args.count("axpy", "n", n);
    args.count("axpy", "outOffset", outOffset);
    args.count("axpy", "xOffset", xOffset);
    args.fits("axpy", "out", o, outOffset + n);
    args.fits("axpy", "x", xs, xOffset + n);
    q.flush();
    if (n > 0) {
      const rc = lib.symbols.ts_axpy_f32(
        at(o.ptr, outOffset * 4),
        at(xs.ptr, xOffset * 4),
        n,
        alpha,
      );
      this.#c.check("axpy", rc);
    }
  }
}
