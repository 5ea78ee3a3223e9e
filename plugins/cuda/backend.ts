/**
 * The CUDA Backend: buffers and weights live in device memory (cudaMalloc, never managed
 * memory); a Buf is a device pointer and a length. Ops queue kernels on one stream and return
 * at once; `read` waits for them and copies back. Argument checks mirror `plugins/reference`
 * so bad input fails the same way on every backend.
 *
 * @module
 */

import type { AttnParams, Backend, Buf, Glu, RopeParams, Weight } from "../../core/backend.ts";
import { DType, dtypeName } from "../../core/dtype.ts";
import { dequantize } from "../../core/quant.ts";
import { numel, type Tensor, tensorBytes } from "../../core/tensor.ts";
import type { CudaLib } from "./_ffi.ts";

/** An f32 activation buffer in device memory. */
export class CudaBuf implements Buf {
  constructor(readonly ptr: Deno.PointerObject, readonly length: number) {}
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
) => number;

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
  /** Every allocation of this backend, freed by close(). */
  readonly #owned = new Set<Deno.PointerObject>();
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
  }

  weight(t: Tensor): Weight {
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
    if (tokens.length > 0) {
      this.#check("embed", this.#embed[w.type](o.ptr, w.ptr, tokens, tokens.length, w.cols));
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
    if (nTok > 0 && m.rows > 0) {
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
    if (nTok > 0 && n > 0) {
      this.#check("rmsnorm", this.#lib.symbols.ts_rmsnorm_f32(o.ptr, xs.ptr, nw.f32, nTok, n, eps));
    }
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
      this.#check(
        "rope",
        this.#lib.symbols.ts_rope_f32(xs.ptr, nTok, nHead, headDim, pos0, p.dim, p.base),
      );
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
    if (nTok * nHead * headDim > 0) {
      const s = this.#lib.symbols;
      this.#check(
        "attention",
        s.ts_attention_f32(o.ptr, qs.ptr, ks.ptr, vs.ptr, nTok, pos0, nHead, nKV, headDim, scale),
      );
    }
  }

  add(out: Buf, a: Buf, b: Buf, n: number): void {
    const [o, as, bs] = this.#three("add", ["out", "a", "b"], [out, a, b], n);
    if (n > 0) this.#check("add", this.#lib.symbols.ts_add_f32(o.ptr, as.ptr, bs.ptr, n));
  }

  glu(out: Buf, gate: Buf, up: Buf, n: number, kind: Glu): void {
    const [o, g, u] = this.#three("glu", ["out", "gate", "up"], [out, gate, up], n);
    const fn = this.#glu[kind];
    if (!fn) throw new Error(`cuda glu: unknown kind "${kind}", expected swiglu, reglu or drelu`);
    if (n > 0) this.#check("glu", fn(o.ptr, g.ptr, u.ptr, n));
  }

  /** Free every buffer and weight of this backend (the library stays loaded). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
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
