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
 * Split by concept: handles in `_buffers.ts`, argument checks in `_args.ts`, rope and attention
 * in `_attention.ts`, sparse ops in `_sparse.ts`, held-back ops in `_queue.ts` (their shapes
 * and the matvec's launch arguments in `_held.ts`), step capture in `_graph.ts`, bench helpers
 * in `_bench.ts`, bench and test switches between fast and plain paths in `_switches.ts`.
 *
 * @module
 */

import type {
  AttnParams,
  Backend,
  Buf,
  Glu,
  GreedySteps,
  IndexBuf,
  RopeParams,
  Unary,
  Weight,
} from "../../core/backend.ts";
import { DType, dtypeName } from "../../core/dtype.ts";
import { dequantize } from "../../core/quant.ts";
import { numel, type Tensor, tensorBytes } from "../../core/tensor.ts";
import { Args, type Ctx } from "./_args.ts";
import { AttentionOps } from "./_attention.ts";
import { at, CudaBuf, CudaWeight } from "./_buffers.ts";
import type { CudaLib } from "./_ffi.ts";
import { StepGraphs } from "./_graph.ts";
import { type KernelTrace, randomWeight, readBandwidth, traceKernels } from "./_bench.ts";
import { rowsCols, toDevice } from "./_layout.ts";
import { OpQueue } from "./_queue.ts";
import { SparseOps } from "./_sparse.ts";
import { CudaSwitches } from "./_switches.ts";

export { at, CudaBuf, CudaIndex, CudaWeight } from "./_buffers.ts";
export type { KernelTrace } from "./_bench.ts";

type P = Deno.PointerObject;
type MatmulFn = (o: P, w: P, x: P, r: number, c: number, n: number) => number;
type EmbedFn = (o: P, w: P, t: Int32Array, n: number, c: number, dtok: P | null) => number;

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
  readonly #q: OpQueue;
  readonly #a = new Args(() => this.#closed);
  readonly #sparse: SparseOps;
  readonly #attn: AttentionOps;
  /** Bench and tests: switches between the fast paths and the plainer ones (`_switches.ts`). */
  readonly switches: CudaSwitches;
  readonly #graphs: StepGraphs;
  readonly #ctx: Ctx;
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
    this.#q = new OpQueue(lib, (op, rc) => this.#check(op, rc));
    const ctx: Ctx = this.#ctx = {
      lib,
      q: this.#q,
      args: this.#a,
      check: (op, rc) => this.#check(op, rc),
      malloc: (what, bytes) => this.#malloc(what, bytes),
    };
    this.#sparse = new SparseOps(ctx);
    this.#attn = new AttentionOps(ctx);
    this.#graphs = new StepGraphs(ctx);
    this.switches = new CudaSwitches(ctx);
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
    // Q8_0 and Q4_0 rows are regrouped into aligned groups on the device (_layout.ts)
    const data = toDevice(t.type, t.data, ...rowsCols(t.shape));
    const ptr = this.#malloc(`weight ${t.name}`, data.byteLength);
    this.#check(
      "weight",
      this.#lib.symbols.ts_cuda_upload(ptr, 0n, data, BigInt(data.byteLength)),
    );
    let f32: Deno.PointerObject | null = null;
    if (t.shape.length <= 1) {
      const n = numel(t.shape), host = new Float32Array(n);
      dequantize(t.type, t.data, 0, n, host);
      f32 = this.#malloc(`weight ${t.name}`, n * 4);
      this.#check("weight", this.#lib.symbols.ts_cuda_upload(f32, 0n, host, BigInt(n * 4)));
    }
    return new CudaWeight(t.name, t.type, [...t.shape], ptr, data.byteLength, f32);
  }

  /**
   * Bench only: a weight of random values made on the device (no host copy), each element
   * `bias + scale · U(-1, 1)`. F32, F16 and BF16.
   */
  randomWeight(name: string, type: DType, shape: number[], seed: number, scale: number, bias = 0) {
    return randomWeight(this.#ctx, name, type, shape, seed, scale, bias);
  }

  /** Bench only: read bandwidth (GB/s) of a streaming kernel over `bytes` of device memory. */
  readBandwidth(bytes: number, iters: number): number {
    return readBandwidth(this.#ctx, bytes, iters, (p) => this.#free(p));
  }

  /** Wait for every queued op. */
  sync(): void {
    this.#q.flush();
    this.#check("sync", this.#lib.symbols.ts_cuda_sync());
  }

  alloc(n: number): Buf {
    this.#a.count("alloc", "n", n);
    return new CudaBuf(this.#malloc("alloc", Math.max(n, 1) * 4), n);
  }

  write(dst: Buf, src: Float32Array, offset = 0): void {
    const d = this.#a.buf("write", "dst", dst);
    this.#a.count("write", "offset", offset);
    this.#a.fits("write", "dst", d, offset + src.length);
    this.#q.flush();
    if (src.length) {
      this.#check(
        "write",
        this.#lib.symbols.ts_cuda_upload(d.ptr, BigInt(offset * 4), src, BigInt(src.byteLength)),
      );
    }
  }

  read(src: Buf, offset = 0, n?: number): Float32Array {
    const s = this.#a.buf("read", "src", src);
    this.#a.count("read", "offset", offset);
    const len = n ?? s.length - offset;
    this.#a.count("read", "n", len);
    this.#a.fits("read", "src", s, offset + len);
    if (this.#graphs.capturing) {
      throw new Error("cuda read: a captured decode step must not read back");
    }
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
    const d = this.#a.buf("copy", "dst", dst);
    const s = this.#a.buf("copy", "src", src);
    this.#a.count("copy", "n", n);
    this.#a.count("copy", "dstOffset", dstOffset);
    this.#a.count("copy", "srcOffset", srcOffset);
    this.#a.fits("copy", "dst", d, dstOffset + n);
    this.#a.fits("copy", "src", s, srcOffset + n);
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
    const o = this.#a.buf("embed", "out", out);
    const w = this.#a.weight("embed", table);
    this.#a.fits("embed", "out", o, tokens.length * w.cols);
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
    const o = this.#a.buf("matmul", "out", out);
    const xs = this.#a.buf("matmul", "x", x);
    const m = this.#a.weight("matmul", w);
    if (o === xs) throw new Error("cuda matmul: out must not alias x");
    this.#a.count("matmul", "nTok", nTok);
    this.#a.fits("matmul", "x", xs, nTok * m.cols);
    this.#a.fits("matmul", "out", o, nTok * m.rows);
    if (nTok > 0 && m.rows > 0 && nTok <= 8) {
      this.#q.matmul({ out: o, w: m, x: xs, nTok });
    } else if (nTok > 0 && m.rows > 0) {
      this.#q.flush();
      this.#check("matmul", this.#matmul[m.type](o.ptr, m.ptr, xs.ptr, m.rows, m.cols, nTok));
    }
  }

  rmsnorm(out: Buf, x: Buf, w: Weight, nTok: number, eps: number): void {
    const o = this.#a.buf("rmsnorm", "out", out);
    const xs = this.#a.buf("rmsnorm", "x", x);
    const nw = this.#a.weight("rmsnorm", w);
    this.#a.count("rmsnorm", "nTok", nTok);
    const n = numel(nw.shape);
    this.#a.fits("rmsnorm", "x", xs, nTok * n);
    this.#a.fits("rmsnorm", "out", o, nTok * n);
    if (!nw.f32) throw new Error(`cuda rmsnorm: ${nw.name} is not a vector`);
    if (nTok === 0 || n === 0) return;
    if (this.#q.rmsnorm(o, xs, nw.f32, nTok, n, eps)) return;
    this.#q.flush();
    this.#check("rmsnorm", this.#lib.symbols.ts_rmsnorm_f32(o.ptr, xs.ptr, nw.f32, nTok, n, eps));
  }

  // ---- rope and attention (kernels/cuda/ops.cu, attention.cu; _attention.ts) ----

  rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams): void {
    this.#attn.rope(x, nTok, nHead, headDim, pos0, p);
  }
  attention(out: Buf, q: Buf, k: Buf, v: Buf, a: AttnParams): void {
    this.#attn.attention(out, q, k, v, a);
  }

  add(out: Buf, a: Buf, b: Buf, n: number): void {
    const [o, as, bs] = this.#a.three("add", ["out", "a", "b"], [out, a, b], n);
    if (n > 0) this.#q.add({ out: o, a: as, b: bs, n });
  }

  glu(out: Buf, gate: Buf, up: Buf, n: number, kind: Glu): void {
    const [o, g, u] = this.#a.three("glu", ["out", "gate", "up"], [out, gate, up], n);
    const fn = this.#glu[kind];
    if (!fn) throw new Error(`cuda glu: unknown kind "${kind}", expected swiglu, reglu or drelu`);
    if (n === 0 || (o === g && this.#q.glu(g, u, n, kind))) return;
    this.#q.flush();
    this.#check("glu", fn(o.ptr, g.ptr, u.ptr, n));
  }

  // ---- sparse FFN ops (kernels/cuda/sparse.cu, _sparse.ts) ----

  allocIndex(capacity: number): IndexBuf {
    return this.#sparse.allocIndex(capacity);
  }
  writeIndex(dst: IndexBuf, ids: Int32Array): void {
    this.#sparse.writeIndex(dst, ids);
  }
  readIndex(src: IndexBuf): Int32Array {
    return this.#sparse.readIndex(src);
  }
  unary(out: Buf, x: Buf, n: number, op: Unary): void {
    this.#sparse.unary(out, x, n, op);
  }
  select(idx: IndexBuf, score: Buf, offset: number, n: number, threshold: number): void {
    this.#sparse.select(idx, score, offset, n, threshold);
  }
  gluSparse(act: Buf, gate: Weight, up: Weight, x: Buf, xOffset: number, idx: IndexBuf, kind: Glu) {
    this.#sparse.gluSparse(act, gate, up, x, xOffset, idx, kind);
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
    this.#sparse.gluSparseGated(act, gateOut, gateOffset, up, x, xOffset, idx, kind);
  }
  downSparse(out: Buf, outOffset: number, downT: Weight, act: Buf, idx: IndexBuf): void {
    this.#sparse.downSparse(out, outOffset, downT, act, idx);
  }
  axpy(out: Buf, outOffset: number, x: Buf, xOffset: number, n: number, alpha: number): void {
    this.#sparse.axpy(out, outOffset, x, xOffset, n, alpha);
  }

  // ---- decode-step graphs (kernels/cuda/graph.cu, _graph.ts) ----

  /**
   * Run a decode step: the first call with `key` runs `record` op by op (scratch areas reach
   * their size), the second captures it into a CUDA graph, later ones replay that graph after
   * writing pos and token to the device. A graph whose scratch areas moved is captured again.
   */
  step(key: object, pos: number, tokens: Int32Array, record: () => void): void {
    this.#graphs.step(key, pos, tokens, record);
  }

  /**
   * Greedy decoding on the device: `n` steps (at most 4096) of `key` from `pos`, fed `token`
   * first. Each step ends with the argmax of `logits[0 .. nVocab)` picked on the device and
   * fed to the next step there, so the captured steps replay back to back and the host waits
   * once, for all `n` tokens.
   */
  stepGreedy(r: GreedySteps): Int32Array {
    const l = this.#a.buf("stepGreedy", "logits", r.logits);
    this.#a.count("stepGreedy", "nVocab", r.nVocab);
    this.#a.fits("stepGreedy", "logits", l, r.nVocab);
    if (!Number.isInteger(r.n) || r.n < 1 || r.n > 4096) {
      throw new Error(`cuda stepGreedy: n must be an integer in 1..4096, got ${r.n}`);
    }
    const argmax = () =>
      this.#check("stepGreedy", this.#lib.symbols.ts_step_argmax(l.ptr, r.nVocab));
    return this.#graphs.greedy(r, argmax);
  }

  /**
   * Bench only: the kernels `run` launches (at most `cap`), in order, with block 0's device
   * clock before and after its PDL wait (graph replays included).
   */
  traceKernels(run: () => void, cap = 1 << 16): KernelTrace[] {
    return traceKernels(this.#ctx, run, cap, (p) => this.#free(p));
  }

  /** Bench only: ms per replay (median of `reps`) of the ops `record` queues, as one graph. */
  timeGraph(record: () => void, reps: number): number {
    return this.#graphs.time(record, reps);
  }

  /** Free every buffer and weight of this backend (the library stays loaded). */
  close(): void {
    if (this.#closed) return;
    this.#q.flush();
    this.#closed = true;
    this.#graphs.close();
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
}
