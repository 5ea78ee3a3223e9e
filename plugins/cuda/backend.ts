/**
 * The CUDA Backend: buffers and weights live in device memory (cudaMalloc, never managed
 * memory); a Buf is a device pointer and a length. Ops queue kernels on one stream and return
 * at once; `read` waits for them and copies back. Argument checks mirror `plugins/reference`
 * so bad input fails the same way on every backend.
 *
 * Fusion: a few ops are held back until the next op shows whether they merge (`_queue.ts`):
 * matmuls sharing x run in one launch (Q, K, V), a gate/up pair followed by `glu` runs with
 * the activation in its epilogue, relu after a matmul likewise, `add` then `rmsnorm` of the
 * sum is one kernel, and two ropes are one launch. Any other op flushes what is held first,
 * so the order of effects is the contract's. Decode steps are captured as CUDA graphs (`step`).
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
import { DType, dtypeName } from "../../core/dtype.ts";
import { dequantize } from "../../core/quant.ts";
import { numel, type Tensor, tensorBytes } from "../../core/tensor.ts";
import type { CudaLib } from "./_ffi.ts";
import { OpQueue } from "./_queue.ts";

/** An f32 activation buffer in device memory. */
export class CudaBuf implements Buf {
  constructor(readonly ptr: Deno.PointerObject, readonly length: number) {}
}

/** An index list in device memory: int32 `[count, id 0, id 1, ...]`, the count on the device. */
export class CudaIndex implements IndexBuf {
  constructor(readonly ptr: Deno.PointerObject, readonly capacity: number) {}
}

/** `p` advanced by `bytes`. */
export function at(p: Deno.PointerObject, bytes: number): Deno.PointerObject {
  return Deno.UnsafePointer.offset(p, bytes)!;
}

/** A captured decode step: its graph, and the scratch epoch it was captured in. */
interface Graph {
  exec: Deno.PointerObject | null;
  epoch: number;
}

/** A weight uploaded once; 1-D weights (norms) also keep an f32 copy for rmsnorm. */
export class CudaWeight implements Weight {
  constructor(
    readonly name: string,
    readonly type: DType,
    readonly shape: readonly number[],
    readonly ptr: Deno.PointerObject,
    readonly bytes: number,
    readonly f32: Deno.PointerObject | null,
  ) {}
  get cols(): number {
    return this.shape.length === 0 ? 1 : this.shape[this.shape.length - 1];
  }
  get rows(): number {
    return this.cols === 0 ? 0 : numel(this.shape) / this.cols;
  }
}

type MatmulFn = (
  o: Deno.PointerObject,
  w: Deno.PointerObject,
  x: Deno.PointerObject,
  r: number,
  c: number,
  n: number,
) => number;
type EmbedFn = (
  o: Deno.PointerObject,
  w: Deno.PointerObject,
  t: Int32Array,
  n: number,
  c: number,
  dtok: Deno.PointerObject | null,
) => number;
type SparseFns = {
  glu: (
    ...a: [
      Deno.PointerObject,
      Deno.PointerObject | null,
      Deno.PointerObject | null,
      Deno.PointerObject,
      Deno.PointerObject,
      Deno.PointerObject,
      number,
      number,
      number,
    ]
  ) => number;
  down: (
    ...a: [Deno.PointerObject, Deno.PointerObject, Deno.PointerObject, Deno.PointerObject, number]
  ) => number;
};

/** Codes of kernels/cuda/sparse.cu. */
const UNARY: Record<Unary, number> = { relu: 0, abs_silu: 1, nonzero: 2 };
const GLU_KIND: Record<Glu, number> = { swiglu: 0, reglu: 1, drelu: 2 };

/** The weight types with kernels. */
const TYPES: readonly DType[] = [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0];

/** The Backend of the opened libts_cuda. */
export class CudaBackend implements Backend {
  readonly name = "cuda";
  readonly #lib: CudaLib;
  readonly #matmul: Record<number, MatmulFn>;
  readonly #embed: Record<number, EmbedFn>;
  readonly #glu: Record<
    Glu,
    (o: Deno.PointerObject, g: Deno.PointerObject, u: Deno.PointerObject, n: number) => number
  >;
  readonly #sparse: Record<number, SparseFns>;
  /** Every allocation of this backend, freed by close(). */
  readonly #owned = new Set<Deno.PointerObject>();
  readonly #q: OpQueue;
  /** Captured decode steps by key, and every graph for close(). */
  readonly #graphs = new WeakMap<object, Graph>();
  readonly #execs = new Set<Deno.PointerObject>();
  #capturing = false;
  #closed = false;

  constructor(lib: CudaLib, readonly device: string) {
    this.#lib = lib;
    const s = lib.symbols;
    this.#matmul = {
      [DType.F32]: s.ts_matmul_f32,
      [DType.F16]: s.ts_matmul_f16,
      [DType.BF16]: s.ts_matmul_bf16,
      [DType.Q8_0]: s.ts_matmul_q8_0,
      [DType.Q4_0]: s.ts_matmul_q4_0,
    };
    this.#embed = {
      [DType.F32]: s.ts_embed_f32,
      [DType.F16]: s.ts_embed_f16,
      [DType.BF16]: s.ts_embed_bf16,
      [DType.Q8_0]: s.ts_embed_q8_0,
      [DType.Q4_0]: s.ts_embed_q4_0,
    };
    this.#glu = {
      swiglu: s.ts_glu_f32_swiglu,
      reglu: s.ts_glu_f32_reglu,
      drelu: s.ts_glu_f32_drelu,
    };
    this.#sparse = {
      [DType.F32]: { glu: s.ts_glu_sparse_f32, down: s.ts_down_sparse_f32 },
      [DType.F16]: { glu: s.ts_glu_sparse_f16, down: s.ts_down_sparse_f16 },
      [DType.BF16]: { glu: s.ts_glu_sparse_bf16, down: s.ts_down_sparse_bf16 },
      [DType.Q8_0]: { glu: s.ts_glu_sparse_q8_0, down: s.ts_down_sparse_q8_0 },
      [DType.Q4_0]: { glu: s.ts_glu_sparse_q4_0, down: s.ts_down_sparse_q4_0 },
    };
    this.#q = new OpQueue(lib, (op, rc) => this.#check(op, rc));
  }

  weight(t: Tensor): Weight {
    this.#q.flush();
    if (!TYPES.includes(t.type)) {
      throw new Error(
        `cuda weight ${t.name}: type ${dtypeName(t.type)} has no CUDA kernels ` +
          `(supported: ${TYPES.map(dtypeName).join(", ")})`,
      );
    }
    const bytes = tensorBytes(t.type, t.shape);
    if (t.data.byteLength < bytes) {
      throw new Error(
        `cuda weight ${t.name}: ${dtypeName(t.type)} [${t.shape.join(", ")}] needs ${bytes} ` +
          `bytes, got ${t.data.byteLength}`,
      );
    }
    const ptr = this.#malloc(`weight ${t.name}`, bytes);
    this.#check(
      "weight",
      this.#lib.symbols.ts_cuda_upload(ptr, 0n, t.data.subarray(0, bytes), BigInt(bytes)),
    );
    let f32: Deno.PointerObject | null = null;
    if (t.shape.length <= 1) {
      const n = numel(t.shape), host = new Float32Array(n);
      dequantize(t.type, t.data, 0, n, host);
      f32 = this.#malloc(`weight ${t.name}`, n * 4);
      this.#check("weight", this.#lib.symbols.ts_cuda_upload(f32, 0n, host, BigInt(n * 4)));
    }
    return new CudaWeight(t.name, t.type, [...t.shape], ptr, bytes, f32);
  }

  /**
   * Bench only: a weight of random values made on the device (no host copy), each element
   * `bias + scale · U(-1, 1)`. F32, F16 and BF16.
   */
  randomWeight(
    name: string,
    type: DType,
    shape: number[],
    seed: number,
    scale: number,
    bias = 0,
  ): CudaWeight {
    const n = numel(shape), bytes = tensorBytes(type, shape);
    const ptr = this.#malloc(`weight ${name}`, bytes);
    this.#check(
      "randomWeight",
      this.#lib.symbols.ts_cuda_fill_random(ptr, type, BigInt(n), seed, scale, bias),
    );
    let f32: Deno.PointerObject | null = null;
    if (shape.length <= 1) {
      f32 = this.#malloc(`weight ${name}`, n * 4);
      this.#check(
        "randomWeight",
        this.#lib.symbols.ts_cuda_fill_random(f32, DType.F32, BigInt(n), seed, scale, bias),
      );
    }
    return new CudaWeight(name, type, shape, ptr, bytes, f32);
  }

  /** Bench only: read bandwidth (GB/s) of a streaming kernel over `bytes` of device memory. */
  readBandwidth(bytes: number, iters: number): number {
    const p = this.#malloc("readBandwidth", bytes);
    try {
      return this.#lib.symbols.ts_cuda_read_bandwidth(p, BigInt(bytes), iters);
    } finally {
      this.#free(p);
    }
  }

  /** Wait for every queued op. */
  sync(): void {
    this.#q.flush();
    this.#check("sync", this.#lib.symbols.ts_cuda_sync());
  }

  alloc(n: number): Buf {
    this.#count("alloc", "n", n);
    return new CudaBuf(this.#malloc("alloc", Math.max(n, 1) * 4), n);
  }

  write(dst: Buf, src: Float32Array, offset = 0): void {
    const d = this.#buf("write", "dst", dst);
    this.#count("write", "offset", offset);
    this.#fits("write", "dst", d, offset + src.length);
    this.#q.flush();
    if (src.length) {
      this.#check(
        "write",
        this.#lib.symbols.ts_cuda_upload(d.ptr, BigInt(offset * 4), src, BigInt(src.byteLength)),
      );
    }
  }

  read(src: Buf, offset = 0, n?: number): Float32Array {
    const s = this.#buf("read", "src", src);
    this.#count("read", "offset", offset);
    const len = n ?? s.length - offset;
    this.#count("read", "n", len);
    this.#fits("read", "src", s, offset + len);
    if (this.#capturing) throw new Error("cuda read: a captured decode step must not read back");
    this.#q.flush();
    const out = new Float32Array(len);
    // A zero-length read still waits, so errors of queued kernels surface here.
    this.#check(
      "read",
      this.#lib.symbols.ts_cuda_download(out, s.ptr, BigInt(offset * 4), BigInt(len * 4)),
    );
    return out;
  }

  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, n: number): void {
    const d = this.#buf("copy", "dst", dst);
    const s = this.#buf("copy", "src", src);
    this.#count("copy", "n", n);
    this.#count("copy", "dstOffset", dstOffset);
    this.#count("copy", "srcOffset", srcOffset);
    this.#fits("copy", "dst", d, dstOffset + n);
    this.#fits("copy", "src", s, srcOffset + n);
    const dyn = this.#q.dyn;
    if (dyn && n > 0 && srcOffset === 0 && dstOffset === dyn.pos * n) {
      this.#q.store({ dst: d.ptr, src: s.ptr, n }); // a KV-cache row at the step's position
      return;
    }
    this.#q.flush();
    if (n > 0) {
      this.#check(
        "copy",
        this.#lib.symbols.ts_copy_f32(
          d.ptr,
          BigInt(dstOffset),
          s.ptr,
          BigInt(srcOffset),
          BigInt(n),
        ),
      );
    }
  }

  embed(out: Buf, table: Weight, tokens: Int32Array): void {
    const o = this.#buf("embed", "out", out);
    const w = this.#weight("embed", table);
    this.#fits("embed", "out", o, tokens.length * w.cols);
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t];
      if (id < 0 || id >= w.rows) {
        throw new Error(`cuda embed: token ${id} at ${t} is outside [0, ${w.rows}) of ${w.name}`);
      }
    }
    this.#q.flush();
    const dyn = this.#q.dyn;
    const dtok = dyn && tokens.length === 1 && tokens[0] === dyn.token ? at(dyn.ptr, 4) : null;
    if (tokens.length > 0) {
      this.#check("embed", this.#embed[w.type](o.ptr, w.ptr, tokens, tokens.length, w.cols, dtok));
    }
  }

  matmul(out: Buf, w: Weight, x: Buf, nTok: number): void {
    const o = this.#buf("matmul", "out", out);
    const xs = this.#buf("matmul", "x", x);
    const m = this.#weight("matmul", w);
    if (o === xs) throw new Error("cuda matmul: out must not alias x");
    this.#count("matmul", "nTok", nTok);
    this.#fits("matmul", "x", xs, nTok * m.cols);
    this.#fits("matmul", "out", o, nTok * m.rows);
    if (nTok > 0 && m.rows > 0 && nTok <= 8) {
      this.#q.matmul({ out: o, w: m, x: xs, nTok });
    } else if (nTok > 0 && m.rows > 0) {
      this.#q.flush();
      this.#check("matmul", this.#matmul[m.type](o.ptr, m.ptr, xs.ptr, m.rows, m.cols, nTok));
    }
  }

  rmsnorm(out: Buf, x: Buf, w: Weight, nTok: number, eps: number): void {
    const o = this.#buf("rmsnorm", "out", out);
    const xs = this.#buf("rmsnorm", "x", x);
    const nw = this.#weight("rmsnorm", w);
    this.#count("rmsnorm", "nTok", nTok);
    const n = numel(nw.shape);
    this.#fits("rmsnorm", "x", xs, nTok * n);
    this.#fits("rmsnorm", "out", o, nTok * n);
    if (!nw.f32) throw new Error(`cuda rmsnorm: ${nw.name} is not a vector`);
    if (nTok === 0 || n === 0) return;
    if (this.#q.rmsnorm(o, xs, nw.f32, nTok, n, eps)) return;
    this.#q.flush();
    this.#check("rmsnorm", this.#lib.symbols.ts_rmsnorm_f32(o.ptr, xs.ptr, nw.f32, nTok, n, eps));
  }

  rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams): void {
    const xs = this.#buf("rope", "x", x);
    this.#count("rope", "nTok", nTok);
    this.#count("rope", "nHead", nHead);
    this.#count("rope", "headDim", headDim);
    this.#count("rope", "pos0", pos0);
    if (p.dim % 2 !== 0 || p.dim < 0 || p.dim > headDim) {
      throw new Error(`cuda rope: dim ${p.dim} must be even and at most headDim ${headDim}`);
    }
    this.#fits("rope", "x", xs, nTok * nHead * headDim);
    if (nTok * nHead * p.dim > 0) {
      this.#q.rope({ x: xs, nTok, nHead, headDim, pos0, dim: p.dim, base: p.base });
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
      throw new Error(`cuda attention: nHead ${nHead} must be a multiple of nKV ${nKV}`);
    }
    if (headDim > 256) throw new Error(`cuda attention: headDim ${headDim} is over 256`);
    const nPos = pos0 + nTok;
    this.#fits("attention", "q", qs, nTok * nHead * headDim);
    this.#fits("attention", "out", o, nTok * nHead * headDim);
    this.#fits("attention", "k", ks, nPos * nKV * headDim);
    this.#fits("attention", "v", vs, nPos * nKV * headDim);
    this.#q.flush();
    if (nTok * nHead * headDim > 0) {
      const s = this.#lib.symbols;
      const dyn = this.#q.dyn, nCtx = Math.min(ks.length, vs.length) / (nKV * headDim);
      const dpos = dyn && dyn.pos === pos0 && nTok === 1 ? dyn.ptr : null;
      this.#check(
        "attention",
        s.ts_attention_f32(
          o.ptr,
          qs.ptr,
          ks.ptr,
          vs.ptr,
          nTok,
          pos0,
          nHead,
          nKV,
          headDim,
          scale,
          dpos,
          Math.floor(nCtx),
        ),
      );
    }
  }

  add(out: Buf, a: Buf, b: Buf, n: number): void {
    const [o, as, bs] = this.#three("add", ["out", "a", "b"], [out, a, b], n);
    if (n > 0) this.#q.add({ out: o, a: as, b: bs, n });
  }

  glu(out: Buf, gate: Buf, up: Buf, n: number, kind: Glu): void {
    const [o, g, u] = this.#three("glu", ["out", "gate", "up"], [out, gate, up], n);
    const fn = this.#glu[kind];
    if (!fn) throw new Error(`cuda glu: unknown kind "${kind}", expected swiglu, reglu or drelu`);
    if (n === 0 || (o === g && this.#q.glu(g, u, n, kind))) return;
    this.#q.flush();
    this.#check("glu", fn(o.ptr, g.ptr, u.ptr, n));
  }

  // ---- sparse FFN ops (kernels/cuda/sparse.cu) ----

  allocIndex(capacity: number): IndexBuf {
    this.#count("allocIndex", "capacity", capacity);
    return new CudaIndex(this.#malloc("allocIndex", (capacity + 1) * 4), capacity);
  }

  writeIndex(dst: IndexBuf, ids: Int32Array): void {
    const d = this.#index("writeIndex", dst);
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
    this.#q.flush();
    this.#check(
      "writeIndex",
      this.#lib.symbols.ts_cuda_upload(d.ptr, 0n, host, BigInt(host.byteLength)),
    );
  }

  readIndex(src: IndexBuf): Int32Array {
    const s = this.#index("readIndex", src);
    const n = new Int32Array(1);
    this.#q.flush();
    this.#check("readIndex", this.#lib.symbols.ts_cuda_download(n, s.ptr, 0n, 4n));
    const ids = new Int32Array(n[0]);
    if (n[0] > 0) {
      this.#check(
        "readIndex",
        this.#lib.symbols.ts_cuda_download(ids, s.ptr, 4n, BigInt(n[0] * 4)),
      );
    }
    return ids;
  }

  unary(out: Buf, x: Buf, n: number, op: Unary): void {
    const [o, xs] = this.#three("unary", ["out", "x"], [out, x], n);
    if (!(op in UNARY)) {
      throw new Error(`cuda unary: unknown op "${op}", expected relu, abs_silu or nonzero`);
    }
    if (n === 0 || (op === "relu" && o === xs && this.#q.relu(xs, n))) return;
    this.#q.flush();
    this.#check("unary", this.#lib.symbols.ts_unary_f32(o.ptr, xs.ptr, n, UNARY[op]));
  }

  select(idx: IndexBuf, score: Buf, offset: number, n: number, threshold: number): void {
    const d = this.#index("select", idx);
    const s = this.#buf("select", "score", score);
    this.#count("select", "offset", offset);
    this.#count("select", "n", n);
    this.#fits("select", "score", s, offset + n);
    if (n > d.capacity) throw new Error(`cuda select: n ${n} exceeds capacity ${d.capacity}`);
    this.#q.flush();
    this.#check(
      "select",
      this.#lib.symbols.ts_select_f32(d.ptr, at(s.ptr, offset * 4), n, threshold),
    );
  }

  gluSparse(act: Buf, gate: Weight, up: Weight, x: Buf, xOffset: number, idx: IndexBuf, kind: Glu) {
    const g = this.#weight("gluSparse", gate);
    const u = this.#weight("gluSparse", up);
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
    const gs = this.#buf("gluSparseGated", "gateOut", gateOut);
    const u = this.#weight("gluSparseGated", up);
    this.#count("gluSparseGated", "gateOffset", gateOffset);
    this.#fits("gluSparseGated", "gateOut", gs, gateOffset + u.rows);
    if (gs === act) throw new Error("cuda gluSparseGated: act must not alias gateOut");
    this.#gathered(
      "gluSparseGated",
      act,
      null,
      at(gs.ptr, gateOffset * 4),
      u,
      x,
      xOffset,
      idx,
      kind,
    );
  }

  /** The gathered gate/up rows of `idx` (gate weight, or the gate projection gateOut). */
  #gathered(
    op: string,
    act: Buf,
    gate: Deno.PointerObject | null,
    gateOut: Deno.PointerObject | null,
    u: CudaWeight,
    x: Buf,
    xOffset: number,
    idx: IndexBuf,
    kind: Glu,
  ): void {
    const a = this.#buf(op, "act", act);
    const xs = this.#buf(op, "x", x);
    const d = this.#index(op, idx);
    this.#count(op, "xOffset", xOffset);
    this.#fits(op, "x", xs, xOffset + u.cols);
    if (a === xs) throw new Error(`cuda ${op}: act must not alias x`);
    if (!(kind in GLU_KIND)) throw new Error(`cuda ${op}: unknown glu kind "${kind}"`);
    // The count lives on the device, unchecked here: act must hold that many values.
    this.#q.flush();
    const fn = this.#sparse[u.type].glu;
    const rc = fn(
      a.ptr,
      gate,
      gateOut,
      u.ptr,
      at(xs.ptr, xOffset * 4),
      d.ptr,
      d.capacity,
      u.cols,
      GLU_KIND[kind],
    );
    this.#check(op, rc);
  }

  downSparse(out: Buf, outOffset: number, downT: Weight, act: Buf, idx: IndexBuf): void {
    const o = this.#buf("downSparse", "out", out);
    const a = this.#buf("downSparse", "act", act);
    const w = this.#weight("downSparse", downT);
    const d = this.#index("downSparse", idx);
    this.#count("downSparse", "outOffset", outOffset);
    this.#fits("downSparse", "out", o, outOffset + w.cols);
    if (o === a) throw new Error("cuda downSparse: out must not alias act");
    this.#q.flush();
    const fn = this.#sparse[w.type].down;
    this.#check("downSparse", fn(at(o.ptr, outOffset * 4), w.ptr, a.ptr, d.ptr, w.cols));
  }

  axpy(out: Buf, outOffset: number, x: Buf, xOffset: number, n: number, alpha: number): void {
    const o = this.#buf("axpy", "out", out);
    const xs = this.#buf("axpy", "x", x);
    this.#count("axpy", "n", n);
    this.#count("axpy", "outOffset", outOffset);
    this.#count("axpy", "xOffset", xOffset);
    this.#fits("axpy", "out", o, outOffset + n);
    this.#fits("axpy", "x", xs, xOffset + n);
    this.#q.flush();
    if (n > 0) {
      const rc = this.#lib.symbols.ts_axpy_f32(
        at(o.ptr, outOffset * 4),
        at(xs.ptr, xOffset * 4),
        n,
        alpha,
      );
      this.#check("axpy", rc);
    }
  }

  // ---- decode-step graphs (kernels/cuda/graph.cu) ----

  /**
   * Run a decode step: the first call with `key` runs `record` op by op (scratch areas reach
   * their size), the second captures it into a CUDA graph, later ones replay that graph after
   * writing pos and token to the device. A graph whose scratch areas moved is captured again.
   */
  step(key: object, pos: number, tokens: Int32Array, record: () => void): void {
    const s = this.#lib.symbols;
    this.#q.flush();
    const ptr = s.ts_step_ptr();
    if (!ptr || tokens.length !== 1) {
      record();
      return;
    }
    this.#check("step", s.ts_step_set(pos, tokens[0]));
    const g = this.#graphs.get(key);
    if (g?.exec && g.epoch === s.ts_scratch_epoch()) {
      this.#check("step", s.ts_graph_launch(g.exec));
      return;
    }
    this.#q.dyn = { pos, token: tokens[0], ptr };
    try {
      if (!g) {
        this.#graphs.set(key, { exec: null, epoch: -1 });
        record();
        this.#q.flush();
        return;
      }
      if (g.exec) this.#freeGraph(g);
      this.#capture(g, record);
    } finally {
      this.#q.dyn = null;
    }
    this.#check("step", s.ts_graph_launch(g.exec!));
  }

  #capture(g: Graph, record: () => void): void {
    const s = this.#lib.symbols;
    this.#check("step", s.ts_graph_begin());
    this.#capturing = true;
    const handle = new BigUint64Array(1);
    let rc = 0;
    try {
      record();
      this.#q.flush();
    } finally {
      this.#capturing = false;
      rc = s.ts_graph_end(handle);
    }
    this.#check("step capture", rc);
    g.exec = Deno.UnsafePointer.create(handle[0]);
    g.epoch = s.ts_scratch_epoch();
    this.#execs.add(g.exec!);
  }

  #freeGraph(g: Graph): void {
    this.#execs.delete(g.exec!);
    this.#lib.symbols.ts_graph_free(g.exec);
    g.exec = null;
  }

  /** Free every buffer and weight of this backend (the library stays loaded). */
  close(): void {
    if (this.#closed) return;
    this.#q.flush();
    this.#closed = true;
    for (const e of this.#execs) this.#lib.symbols.ts_graph_free(e);
    this.#execs.clear();
    this.#lib.symbols.ts_cuda_sync();
    for (const p of this.#owned) this.#lib.symbols.ts_cuda_free(p);
    this.#owned.clear();
  }

  #malloc(what: string, bytes: number): Deno.PointerObject {
    if (this.#closed) throw new Error(`cuda ${what}: backend is closed`);
    const p = this.#lib.symbols.ts_cuda_malloc(BigInt(bytes));
    if (!p) throw new Error(`cuda ${what}: cudaMalloc of ${bytes} bytes failed`);
    this.#owned.add(p);
    return p;
  }

  #free(p: Deno.PointerObject): void {
    this.#owned.delete(p);
    this.#lib.symbols.ts_cuda_free(p);
  }

  #check(op: string, rc: number): void {
    if (rc === 0) return;
    const p = this.#lib.symbols.ts_cuda_error_string(rc);
    const msg = p ? Deno.UnsafePointerView.getCString(p) : `error ${rc}`;
    throw new Error(`cuda ${op}: ${msg} (cudaError ${rc})`);
  }

  #three(op: string, names: string[], bufs: Buf[], n: number): CudaBuf[] {
    const arr = bufs.map((x, i) => this.#buf(op, names[i], x));
    this.#count(op, "n", n);
    arr.forEach((x, i) => this.#fits(op, names[i], x, n));
    return arr;
  }

  #buf(op: string, arg: string, b: Buf): CudaBuf {
    if (this.#closed) throw new Error(`cuda ${op}: backend is closed`);
    if (!(b instanceof CudaBuf)) throw new Error(`cuda ${op}: ${arg} is not a cuda buffer`);
    return b;
  }

  #index(op: string, i: IndexBuf): CudaIndex {
    if (this.#closed) throw new Error(`cuda ${op}: backend is closed`);
    if (!(i instanceof CudaIndex)) throw new Error(`cuda ${op}: idx is not a cuda index list`);
    return i;
  }

  #weight(op: string, w: Weight): CudaWeight {
    if (!(w instanceof CudaWeight)) {
      throw new Error(`cuda ${op}: weight ${w.name} was not prepared by cuda`);
    }
    return w;
  }

  #count(op: string, arg: string, v: number): void {
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`cuda ${op}: ${arg} must be a non-negative integer, got ${v}`);
    }
  }

  #fits(op: string, arg: string, b: CudaBuf, need: number): void {
    if (b.length < need) {
      throw new Error(`cuda ${op}: ${arg} has ${b.length} elements, needs ${need}`);
    }
  }
}
