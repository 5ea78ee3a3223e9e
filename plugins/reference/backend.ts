/**
 * The reference backend: every op of `core/backend.ts` in plain TypeScript, written for
 * reading, not speed. Its results define what the other backends must compute.
 *
 * Numerics: activations are stored as f32; sums (dot products, sums of squares, softmax
 * denominators) accumulate in JS doubles and round to f32 once, on store. Weights are
 * dequantised one row at a time with `core/quant.ts`, so `weight()` stays a cheap view.
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
import { dequantize } from "../../core/quant.ts";
import { numel, type Tensor } from "../../core/tensor.ts";
import { buf, count, fits, relu, silu, weightOf } from "./_check.ts";
import { RefBuf, RefIndex, RefWeight } from "./_types.ts";
import * as sparse from "./sparse.ts";

export { RefBuf, RefIndex, RefWeight } from "./_types.ts";

/** The pure-TypeScript backend; see the module comment for its numerics. */
export class ReferenceBackend implements Backend {
  readonly name: string = "reference";

  weight(t: Tensor): Weight {
    return new RefWeight(t);
  }

  alloc(n: number): Buf {
    count("alloc", "n", n);
    return new RefBuf(n);
  }

  write(dst: Buf, src: Float32Array, offset = 0): void {
    const d = buf("write", "dst", dst);
    count("write", "offset", offset);
    fits("write", "dst", d, offset + src.length);
    d.set(src, offset);
  }

  read(src: Buf, offset = 0, n?: number): Float32Array {
    const s = buf("read", "src", src);
    count("read", "offset", offset);
    const len = n ?? s.length - offset;
    count("read", "n", len);
    fits("read", "src", s, offset + len);
    return s.slice(offset, offset + len);
  }

  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, n: number): void {
    const d = buf("copy", "dst", dst);
    const s = buf("copy", "src", src);
    count("copy", "n", n);
    count("copy", "dstOffset", dstOffset);
    count("copy", "srcOffset", srcOffset);
    fits("copy", "dst", d, dstOffset + n);
    fits("copy", "src", s, srcOffset + n);
    // TypedArray.set copies through a temporary when both views share a buffer (memmove).
    d.set(s.subarray(srcOffset, srcOffset + n), dstOffset);
  }

  embed(out: Buf, table: Weight, tokens: Int32Array): void {
    const o = buf("embed", "out", out);
    const w = weightOf("embed", table);
    fits("embed", "out", o, tokens.length * w.cols);
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= w.rows) {
        throw new Error(
          `reference embed: token ${id} at ${t} is outside [0, ${w.rows}) of ${w.name}`,
        );
      }
      w.row(id, o, t * w.cols);
    }
  }

  matmul(out: Buf, w: Weight, x: Buf, nTok: number): void {
    const o = buf("matmul", "out", out);
    const xs = buf("matmul", "x", x);
    const m = weightOf("matmul", w);
    if (m.type === DType.I32) throw new Error(`reference matmul: ${m.name} is I32, not a weight`);
    if (o === xs) throw new Error("reference matmul: out must not alias x");
    count("matmul", "nTok", nTok);
    const { rows, cols } = m;
    fits("matmul", "x", xs, nTok * cols);
    fits("matmul", "out", o, nTok * rows);
    // Each weight row is dequantised once and applied to every token of the batch.
    const wr = new Float32Array(cols);
    for (let r = 0; r < rows; r++) {
      m.row(r, wr);
      for (let t = 0; t < nTok; t++) {
        const xo = t * cols;
        let sum = 0;
        for (let c = 0; c < cols; c++) sum += wr[c] * xs[xo + c];
        o[t * rows + r] = sum;
      }
    }
  }

  rmsnorm(out: Buf, x: Buf, w: Weight, nTok: number, eps: number): void {
    const o = buf("rmsnorm", "out", out);
    const xs = buf("rmsnorm", "x", x);
    const nw = weightOf("rmsnorm", w);
    count("rmsnorm", "nTok", nTok);
    const n = numel(nw.shape);
    fits("rmsnorm", "x", xs, nTok * n);
    fits("rmsnorm", "out", o, nTok * n);
    const g = new Float32Array(n);
    dequantize(nw.type, nw.data, 0, n, g);
    for (let t = 0; t < nTok; t++) {
      const base = t * n;
      let ss = 0;
      for (let i = 0; i < n; i++) ss += xs[base + i] * xs[base + i];
      const inv = 1 / Math.sqrt(ss / n + eps);
      // Reading x[i] before writing out[i] keeps out === x safe.
      for (let i = 0; i < n; i++) o[base + i] = xs[base + i] * inv * g[i];
    }
  }

  rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams): void {
    const xs = buf("rope", "x", x);
    count("rope", "nTok", nTok);
    count("rope", "nHead", nHead);
    count("rope", "headDim", headDim);
    count("rope", "pos0", pos0);
    if (p.dim % 2 !== 0 || p.dim < 0 || p.dim > headDim) {
      throw new Error(`reference rope: dim ${p.dim} must be even and at most headDim ${headDim}`);
    }
    fits("rope", "x", xs, nTok * nHead * headDim);
    for (let t = 0; t < nTok; t++) {
      const pos = pos0 + t;
      for (let h = 0; h < nHead; h++) {
        const o = (t * nHead + h) * headDim;
        // llama.cpp "normal" mode: adjacent pairs (2i, 2i+1); angle in radians.
        for (let i = 0; 2 * i < p.dim; i++) {
          const theta = pos * Math.pow(p.base, (-2 * i) / p.dim);
          const cos = Math.cos(theta);
          const sin = Math.sin(theta);
          const x0 = xs[o + 2 * i];
          const x1 = xs[o + 2 * i + 1];
          xs[o + 2 * i] = x0 * cos - x1 * sin;
          xs[o + 2 * i + 1] = x0 * sin + x1 * cos;
        }
      }
    }
  }

  attention(out: Buf, q: Buf, k: Buf, v: Buf, a: AttnParams): void {
    const o = buf("attention", "out", out);
    const qs = buf("attention", "q", q);
    const ks = buf("attention", "k", k);
    const vs = buf("attention", "v", v);
    const { nTok, pos0, nHead, nKV, headDim, scale } = a;
    count("attention", "nTok", nTok);
    count("attention", "pos0", pos0);
    count("attention", "headDim", headDim);
    if (!(nKV > 0 && Number.isInteger(nKV) && nHead % nKV === 0)) {
      throw new Error(`reference attention: nHead ${nHead} must be a multiple of nKV ${nKV}`);
    }
    const nPos = pos0 + nTok; // positions the cache must already hold
    fits("attention", "q", qs, nTok * nHead * headDim);
    fits("attention", "out", o, nTok * nHead * headDim);
    fits("attention", "k", ks, nPos * nKV * headDim);
    fits("attention", "v", vs, nPos * nKV * headDim);
    const group = nHead / nKV; // query heads per KV head
    const scores = new Float64Array(nPos);
    const acc = new Float64Array(headDim);
    for (let t = 0; t < nTok; t++) {
      const last = pos0 + t; // causal: query t sees cache positions 0 .. last
      for (let h = 0; h < nHead; h++) {
        const qo = (t * nHead + h) * headDim;
        const kvh = Math.floor(h / group);
        let max = -Infinity;
        for (let p = 0; p <= last; p++) {
          const ko = (p * nKV + kvh) * headDim;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += qs[qo + d] * ks[ko + d];
          scores[p] = dot * scale;
          if (scores[p] > max) max = scores[p];
        }
        // Subtracting the max keeps exp() finite for any logit size.
        let sum = 0;
        for (let p = 0; p <= last; p++) {
          scores[p] = Math.exp(scores[p] - max);
          sum += scores[p];
        }
        acc.fill(0);
        for (let p = 0; p <= last; p++) {
          const vo = (p * nKV + kvh) * headDim;
          const wgt = scores[p] / sum;
          for (let d = 0; d < headDim; d++) acc[d] += wgt * vs[vo + d];
        }
        // q is fully read before out is written, so out === q is safe.
        for (let d = 0; d < headDim; d++) o[qo + d] = acc[d];
      }
    }
  }

  add(out: Buf, a: Buf, b: Buf, n: number): void {
    const o = buf("add", "out", out);
    const as = buf("add", "a", a);
    const bs = buf("add", "b", b);
    count("add", "n", n);
    fits("add", "out", o, n);
    fits("add", "a", as, n);
    fits("add", "b", bs, n);
    for (let i = 0; i < n; i++) o[i] = as[i] + bs[i];
  }

  glu(out: Buf, gate: Buf, up: Buf, n: number, kind: Glu): void {
    const o = buf("glu", "out", out);
    const g = buf("glu", "gate", gate);
    const u = buf("glu", "up", up);
    count("glu", "n", n);
    fits("glu", "out", o, n);
    fits("glu", "gate", g, n);
    fits("glu", "up", u, n);
    switch (kind) {
      case "swiglu":
        for (let i = 0; i < n; i++) o[i] = silu(g[i]) * u[i];
        return;
      case "reglu":
        for (let i = 0; i < n; i++) o[i] = relu(g[i]) * u[i];
        return;
      case "drelu":
        for (let i = 0; i < n; i++) o[i] = relu(g[i]) * relu(u[i]);
        return;
      default:
        throw new Error(`reference glu: unknown kind "${kind}", expected swiglu, reglu or drelu`);
    }
  }

  // Sparse FFN and MoE ops: defined in ./sparse.ts.

  allocIndex(capacity: number): IndexBuf {
    count("allocIndex", "capacity", capacity);
    return new RefIndex(capacity);
  }

  writeIndex(dst: IndexBuf, ids: Int32Array): void {
    sparse.writeIndex(dst, ids);
  }

  readIndex(src: IndexBuf): Int32Array {
    return sparse.readIndex(src);
  }

  unary(out: Buf, x: Buf, n: number, op: Unary): void {
    sparse.unary(out, x, n, op);
  }

  select(idx: IndexBuf, score: Buf, offset: number, n: number, threshold: number): void {
    sparse.select(idx, score, offset, n, threshold);
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
    sparse.gluSparse(act, gate, up, x, xOffset, idx, kind);
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
    sparse.gluSparseGated(act, gateOut, gateOffset, up, x, xOffset, idx, kind);
  }

  downSparse(out: Buf, outOffset: number, downT: Weight, act: Buf, idx: IndexBuf): void {
    sparse.downSparse(out, outOffset, downT, act, idx);
  }

  downSparseBatch(
    out: Buf,
    downT: Weight,
    act: Buf,
    score: Buf | null,
    threshold: number,
    nTok: number,
  ): void {
    sparse.downSparseBatch(out, downT, act, score, threshold, nTok);
  }

  axpy(out: Buf, outOffset: number, x: Buf, xOffset: number, n: number, alpha: number): void {
    sparse.axpy(out, outOffset, x, xOffset, n, alpha);
  }
}
