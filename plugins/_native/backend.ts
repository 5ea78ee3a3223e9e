/**
 * A Backend over a loaded libts_* library: buffers are Float32Arrays passed to C as FFI
 * `buffer` arguments (never copied), weights are views of the model file's bytes. Argument
 * checks mirror `plugins/reference` so bad input fails the same way on every backend.
 *
 * @module
 */

import type {
  AttnParams,
  Backend,
  Buf,
  Glu,
  IndexBuf,
  RopeParams,
  Unary,
  Weight,
} from "../../core/backend.ts";
import { DType } from "../../core/dtype.ts";
import { numel, type Tensor } from "../../core/tensor.ts";
import { NativeBuf, NativeWeight } from "./_types.ts";
import type { NativeLib } from "./symbols.ts";
import { NativeIndex, NativeSparse } from "./sparse.ts";

type MatmulFn = (
  o: Float32Array,
  w: Uint8Array,
  x: Float32Array,
  r: number,
  c: number,
  n: number,
) => void;

type PackFn = (dst: Uint8Array | null, src: Uint8Array, r: number, c: number) => number | bigint;

export { NativeBuf, NativeWeight } from "./_types.ts";

/** The Backend of one opened native library. */
export class NativeBackend implements Backend {
  readonly name: string;
  readonly #lib: NativeLib;
  readonly #release: () => void;
  readonly #matmul: Record<number, MatmulFn>;
  readonly #packed: Record<number, [PackFn, MatmulFn]>;
  /** This library's repacked copy of a weight (null: it multiplies the file layout). */
  readonly #packedData = new WeakMap<NativeWeight, Uint8Array | null>();
  readonly #embed: Record<
    number,
    MatmulFn | ((o: Float32Array, w: Uint8Array, t: Int32Array, n: number, c: number) => void)
  >;
  #closed = false;
  /** The sparse FFN ops; `sparse.bundle` turns on row-column bundling for later loads. */
  readonly sparse: NativeSparse;

  /** `release` is called once by close() (the loader refcounts the library). */
  constructor(name: string, lib: NativeLib, release: () => void) {
    this.name = name;
    this.#lib = lib;
    this.#release = release;
    this.sparse = new NativeSparse(name, lib, (o, w, x) => this.#multiply(o, w, x, 1));
    const s = lib.symbols;
    this.#matmul = {
      [DType.F32]: s.ts_matmul_f32,
      [DType.F16]: s.ts_matmul_f16,
      [DType.BF16]: s.ts_matmul_bf16,
      [DType.Q8_0]: s.ts_matmul_q8_0,
      [DType.Q4_0]: s.ts_matmul_q4_0,
    };
    this.#packed = {
      [DType.Q8_0]: [s.ts_pack_q8_0, s.ts_matmul_q8_0_packed],
      [DType.Q4_0]: [s.ts_pack_q4_0, s.ts_matmul_q4_0_packed],
    };
    this.#embed = {
      [DType.F32]: s.ts_embed_f32,
      [DType.F16]: s.ts_embed_f16,
      [DType.BF16]: s.ts_embed_bf16,
      [DType.Q8_0]: s.ts_embed_q8_0,
      [DType.Q4_0]: s.ts_embed_q4_0,
    };
  }

  /** Pool threads the library runs with. */
  get threads(): number {
    return this.#lib.symbols.ts_get_threads();
  }

  /** Kernel variant the library chose ("scalar", "avx2", "neon", "neon_dot"). */
  get variant(): string {
    const p = this.#lib.symbols.ts_matmul_variant();
    return p ? Deno.UnsafePointerView.getCString(p) : "";
  }

  weight(t: Tensor): Weight {
    return new NativeWeight(t, this.name);
  }

  alloc(n: number): Buf {
    this.#count("alloc", "n", n);
    return new NativeBuf(n);
  }

  write(dst: Buf, src: Float32Array, offset = 0): void {
    const d = this.#buf("write", "dst", dst);
    this.#count("write", "offset", offset);
    this.#fits("write", "dst", d, offset + src.length);
    d.set(src, offset);
  }

  read(src: Buf, offset = 0, n?: number): Float32Array {
    const s = this.#buf("read", "src", src);
    this.#count("read", "offset", offset);
    const len = n ?? s.length - offset;
    this.#count("read", "n", len);
    this.#fits("read", "src", s, offset + len);
    return s.slice(offset, offset + len);
  }

  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, n: number): void {
    const d = this.#buf("copy", "dst", dst);
    const s = this.#buf("copy", "src", src);
    this.#count("copy", "n", n);
    this.#count("copy", "dstOffset", dstOffset);
    this.#count("copy", "srcOffset", srcOffset);
    this.#fits("copy", "dst", d, dstOffset + n);
    this.#fits("copy", "src", s, srcOffset + n);
    if (n > 0) this.#lib.symbols.ts_copy_f32(d.subarray(dstOffset), s.subarray(srcOffset), n);
  }

  embed(out: Buf, table: Weight, tokens: Int32Array): void {
    const o = this.#buf("embed", "out", out);
    const w = this.#weight("embed", table);
    if (w.type === DType.I32) throw new Error(`${this.name} embed: ${w.name} is I32, not a table`);
    this.#fits("embed", "out", o, tokens.length * w.cols);
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t];
      if (id < 0 || id >= w.rows) {
        throw new Error(
          `${this.name} embed: token ${id} at ${t} is outside [0, ${w.rows}) of ${w.name}`,
        );
      }
    }
    const fn = this.#embed[w.type] as (
      o: Float32Array,
      w: Uint8Array,
      t: Int32Array,
      n: number,
      c: number,
    ) => void;
    if (tokens.length > 0) fn(o, w.data, tokens, tokens.length, w.cols);
  }

  matmul(out: Buf, w: Weight, x: Buf, nTok: number): void {
    const o = this.#buf("matmul", "out", out);
    const xs = this.#buf("matmul", "x", x);
    const m = this.#weight("matmul", w);
    if (m.type === DType.I32) {
      throw new Error(`${this.name} matmul: ${m.name} is I32, not a weight`);
    }
    if (o.buffer === xs.buffer) throw new Error(`${this.name} matmul: out must not alias x`);
    this.#count("matmul", "nTok", nTok);
    this.#fits("matmul", "x", xs, nTok * m.cols);
    this.#fits("matmul", "out", o, nTok * m.rows);
    if (nTok > 0 && m.rows > 0) this.#multiply(o, m, xs, nTok);
  }

  /** `o = m · x` for nTok tokens, arguments checked: the packed copy when the library has one. */
  #multiply(o: Float32Array, m: NativeWeight, xs: Float32Array, nTok: number): void {
    const packed = this.#pack(m);
    if (packed) this.#packed[m.type][1](o, packed, xs, m.rows, m.cols, nTok);
    else this.#matmul[m.type](o, m.data, xs, m.rows, m.cols, nTok);
  }

  rmsnorm(out: Buf, x: Buf, w: Weight, nTok: number, eps: number): void {
    const o = this.#buf("rmsnorm", "out", out);
    const xs = this.#buf("rmsnorm", "x", x);
    const nw = this.#weight("rmsnorm", w);
    this.#count("rmsnorm", "nTok", nTok);
    const n = numel(nw.shape);
    this.#fits("rmsnorm", "x", xs, nTok * n);
    this.#fits("rmsnorm", "out", o, nTok * n);
    if (nTok > 0 && n > 0) this.#lib.symbols.ts_rmsnorm_f32(o, xs, nw.f32(), nTok, n, eps);
  }

  rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams): void {
    const xs = this.#buf("rope", "x", x);
    this.#count("rope", "nTok", nTok);
    this.#count("rope", "nHead", nHead);
    this.#count("rope", "headDim", headDim);
    this.#count("rope", "pos0", pos0);
    if (p.dim % 2 !== 0 || p.dim < 0 || p.dim > headDim) {
      throw new Error(
        `${this.name} rope: dim ${p.dim} must be even and at most headDim ${headDim}`,
      );
    }
    this.#fits("rope", "x", xs, nTok * nHead * headDim);
    if (nTok * nHead * headDim > 0) {
      this.#lib.symbols.ts_rope_f32(xs, nTok, nHead, headDim, pos0, p.dim, p.base);
    }
  }

  attention(out: Buf, q: Buf, k: Buf, v: Buf, a: AttnParams): void {
    const o = this.#buf("attention", "out", out);
    const qs = this.#buf("attention", "q", q);
    const ks = this.#buf("attention", "k", k);
    const vs = this.#buf("attention", "v", v);
    const { nTok, pos0, nHead, nKV, headDim, scale } = a;
    this.#count("attention", "nTok", nTok);
    this.#count("attention", "pos0", pos0);
    this.#count("attention", "headDim", headDim);
    if (!(nKV > 0 && Number.isInteger(nKV) && nHead % nKV === 0)) {
      throw new Error(`${this.name} attention: nHead ${nHead} must be a multiple of nKV ${nKV}`);
    }
    const nPos = pos0 + nTok;
    this.#fits("attention", "q", qs, nTok * nHead * headDim);
    this.#fits("attention", "out", o, nTok * nHead * headDim);
    this.#fits("attention", "k", ks, nPos * nKV * headDim);
    this.#fits("attention", "v", vs, nPos * nKV * headDim);
    if (nTok * nHead * headDim > 0) {
      this.#lib.symbols.ts_attention_f32(o, qs, ks, vs, nTok, pos0, nHead, nKV, headDim, scale);
    }
  }

  add(out: Buf, a: Buf, b: Buf, n: number): void {
    const [o, as, bs] = this.#three("add", out, a, b, n);
    if (n > 0) this.#lib.symbols.ts_add_f32(o, as, bs, n);
  }

  glu(out: Buf, gate: Buf, up: Buf, n: number, kind: Glu): void {
    const [o, g, u] = this.#three("glu", out, gate, up, n);
    const s = this.#lib.symbols;
    const fn = kind === "swiglu"
      ? s.ts_glu_f32_swiglu
      : kind === "reglu"
      ? s.ts_glu_f32_reglu
      : kind === "drelu"
      ? s.ts_glu_f32_drelu
      : null;
    if (!fn) {
      throw new Error(`${this.name} glu: unknown kind "${kind}", expected swiglu, reglu or drelu`);
    }
    if (n > 0) fn(o, g, u, n);
  }

  // --- Sparse FFN and MoE ops: checks here and in sparse.ts, kernels in kernels/c/sparse.c.

  allocIndex(capacity: number): IndexBuf {
    this.#count("allocIndex", "capacity", capacity);
    return new NativeIndex(capacity);
  }

  writeIndex(dst: IndexBuf, ids: Int32Array): void {
    this.sparse.writeIndex(this.sparse.index("writeIndex", dst), ids);
  }

  readIndex(src: IndexBuf): Int32Array {
    const d = this.sparse.index("readIndex", src).data;
    return d.slice(1, 1 + d[0]);
  }

  unary(out: Buf, x: Buf, n: number, op: Unary): void {
    this.#count("unary", "n", n);
    this.sparse.unary(this.#buf("unary", "out", out), this.#buf("unary", "x", x), n, op);
  }

  select(idx: IndexBuf, score: Buf, offset: number, n: number, threshold: number): void {
    const s = this.#buf("select", "score", score);
    this.#count("select", "offset", offset);
    this.#count("select", "n", n);
    this.sparse.select(this.sparse.index("select", idx), s, offset, n, threshold);
  }

  gluSparse(
    act: Buf,
    gate: Weight,
    up: Weight,
    x: Buf,
    xOffset: number,
    idx: IndexBuf,
    kind: Glu,
  ): void {
    const op = "gluSparse";
    this.#count(op, "xOffset", xOffset);
    this.sparse.gluSparse(
      this.#buf(op, "act", act),
      this.#weight(op, gate),
      this.#weight(op, up),
      this.#buf(op, "x", x),
      xOffset,
      this.sparse.index(op, idx),
      kind,
    );
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
    const op = "gluSparseGated";
    this.#count(op, "gateOffset", gateOffset);
    this.#count(op, "xOffset", xOffset);
    this.sparse.gluSparseGated(
      this.#buf(op, "act", act),
      this.#buf(op, "gateOut", gateOut),
      gateOffset,
      this.#weight(op, up),
      this.#buf(op, "x", x),
      xOffset,
      this.sparse.index(op, idx),
      kind,
    );
  }

  downSparse(out: Buf, outOffset: number, downT: Weight, act: Buf, idx: IndexBuf): void {
    const op = "downSparse";
    this.#count(op, "outOffset", outOffset);
    const o = this.#buf(op, "out", out), a = this.#buf(op, "act", act);
    const w = this.#weight(op, downT);
    this.sparse.downSparse(o, outOffset, w, a, this.sparse.index(op, idx));
  }

  downSparseBatch(
    out: Buf,
    downT: Weight,
    act: Buf,
    score: Buf | null,
    threshold: number,
    nTok: number,
  ): void {
    const op = "downSparseBatch";
    this.#count(op, "nTok", nTok);
    const o = this.#buf(op, "out", out), a = this.#buf(op, "act", act);
    const s = score === null ? null : this.#buf(op, "score", score);
    this.sparse.downSparseBatch(o, this.#weight(op, downT), a, s, threshold, nTok);
  }

  axpy(out: Buf, outOffset: number, x: Buf, xOffset: number, n: number, alpha: number): void {
    this.#count("axpy", "n", n);
    this.#count("axpy", "outOffset", outOffset);
    this.#count("axpy", "xOffset", xOffset);
    this.sparse.axpy(
      this.#buf("axpy", "out", out),
      outOffset,
      this.#buf("axpy", "x", x),
      xOffset,
      n,
      alpha,
    );
  }

  prepareSparseFFN(gate: Weight, up: Weight, downT: Weight): void {
    const op = "prepareSparseFFN";
    this.sparse.prepare(this.#weight(op, gate), this.#weight(op, up), this.#weight(op, downT));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
  }

  /**
   * The library's own layout of a Q8_0/Q4_0 matrix (x86: 8 rows interleaved), made into a new
   * buffer on the weight's first matmul, so matrices only the sparse kernels read cost nothing;
   * the file view stays for embed and those kernels. Null: multiply the file layout.
   */
  #pack(w: NativeWeight): Uint8Array | null {
    let p = this.#packedData.get(w);
    if (p === undefined) {
      p = null;
      const pack = (this.#packed[w.type] as [PackFn, MatmulFn] | undefined)?.[0];
      const n = pack && w.shape.length === 2 ? Number(pack(null, w.data, w.rows, w.cols)) : 0;
      if (pack && n > 0) {
        p = new Uint8Array(n);
        pack(p, w.data, w.rows, w.cols);
      }
      this.#packedData.set(w, p);
    }
    return p;
  }

  #three(op: string, out: Buf, a: Buf, b: Buf, n: number): Float32Array[] {
    const names = op === "add" ? ["out", "a", "b"] : ["out", "gate", "up"];
    const arr = [out, a, b].map((x, i) => this.#buf(op, names[i], x));
    this.#count(op, "n", n);
    arr.forEach((x, i) => this.#fits(op, names[i], x, n));
    return arr;
  }

  #buf(op: string, arg: string, b: Buf): Float32Array {
    if (this.#closed) throw new Error(`${this.name} ${op}: backend is closed`);
    if (!(b instanceof NativeBuf)) {
      throw new Error(`${this.name} ${op}: ${arg} is not a ${this.name} buffer`);
    }
    return b.data;
  }

  #weight(op: string, w: Weight): NativeWeight {
    if (!(w instanceof NativeWeight)) {
      throw new Error(`${this.name} ${op}: weight ${w.name} was not prepared by ${this.name}`);
    }
    return w;
  }

  #count(op: string, arg: string, v: number): void {
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`${this.name} ${op}: ${arg} must be a non-negative integer, got ${v}`);
    }
  }

  #fits(op: string, arg: string, a: Float32Array, need: number): void {
    if (a.length < need) {
      throw new Error(`${this.name} ${op}: ${arg} has ${a.length} elements, needs ${need}`);
    }
  }
}
