/**
 * Test doubles for the conformance suite: the reference backend with one op changed.
 * `LlamaLikeBackend` computes the way a native backend legitimately may (f32 sums, activations
 * rounded or quantised before the dot product) and must pass; every other double has a real
 * bug and must fail exactly the cases of the op it breaks.
 *
 * @module
 */

import type { AttnParams, Buf, Glu, RopeParams, Weight } from "../core/backend.ts";
import { bf16ToF32, DType, f16ToF32, f32ToBF16, QK } from "../core/dtype.ts";
import { dequantize, quantize } from "../core/quant.ts";
import { RefBuf, ReferenceBackend, RefWeight } from "../plugins/reference/mod.ts";

const f32 = Math.fround;

/** Activations as a native kernel sees them: rounded to the weight's vec-dot type. */
function roundActivations(type: DType, x: Float32Array): Float32Array {
  switch (type) {
    case DType.F16:
      return Float32Array.from(new Float16Array(x));
    case DType.BF16:
      return x.map((v) => bf16ToF32(f32ToBF16(v)));
    case DType.Q8_0:
    case DType.Q4_0: {
      // ggml quantises activations to Q8_0 blocks for quantised weights
      const out = new Float32Array(x.length);
      dequantize(DType.Q8_0, quantize(DType.Q8_0, x), 0, x.length, out);
      return out;
    }
    default:
      return x;
  }
}

/** Legitimate native numerics: f32 sums, rounded activations, llama.cpp's f32 rope angles. */
export class LlamaLikeBackend extends ReferenceBackend {
  override matmul(out: Buf, w: Weight, x: Buf, nTok: number): void {
    const o = (out as RefBuf).data;
    const m = w as RefWeight;
    const xs = roundActivations(m.type, (x as RefBuf).data.slice(0, nTok * m.cols));
    const wr = new Float32Array(m.cols);
    for (let r = 0; r < m.rows; r++) {
      m.row(r, wr);
      for (let t = 0; t < nTok; t++) {
        let sum = 0;
        for (let c = 0; c < m.cols; c++) sum = f32(sum + f32(wr[c] * xs[t * m.cols + c]));
        o[t * m.rows + r] = sum;
      }
    }
  }

  override rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams) {
    const xs = (x as RefBuf).data;
    const thetaScale = f32(Math.pow(p.base, -2 / p.dim));
    for (let t = 0; t < nTok; t++) {
      for (let h = 0; h < nHead; h++) {
        const o = (t * nHead + h) * headDim;
        let theta = f32(pos0 + t); // ggml: theta *= theta_scale per pair, in f32
        for (let i = 0; 2 * i < p.dim; i++) {
          const [cos, sin] = [f32(Math.cos(theta)), f32(Math.sin(theta))];
          const [x0, x1] = [xs[o + 2 * i], xs[o + 2 * i + 1]];
          xs[o + 2 * i] = f32(x0 * cos) - f32(x1 * sin);
          xs[o + 2 * i + 1] = f32(x0 * sin) + f32(x1 * cos);
          theta = f32(theta * thetaScale);
        }
      }
    }
  }
}

/** Bug: NeoX pairing (i, i + dim/2) instead of adjacent pairs. */
export class NeoxRopeBackend extends ReferenceBackend {
  override rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams) {
    const xs = (x as RefBuf).data;
    const half = p.dim / 2;
    for (let t = 0; t < nTok; t++) {
      for (let h = 0; h < nHead; h++) {
        const o = (t * nHead + h) * headDim;
        for (let i = 0; i < half; i++) {
          const theta = (pos0 + t) * Math.pow(p.base, (-2 * i) / p.dim);
          const [x0, x1] = [xs[o + i], xs[o + i + half]];
          xs[o + i] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
          xs[o + i + half] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
        }
      }
    }
  }
}

/** Bug: Q4_0 nibbles read without their -8 offset. */
export class Q4NoOffsetBackend extends ReferenceBackend {
  override matmul(out: Buf, w: Weight, x: Buf, nTok: number): void {
    const m = w as RefWeight;
    if (m.type !== DType.Q4_0) return super.matmul(out, w, x, nTok);
    // The bug decodes d·nibble, which is d·(nibble - 8) + 8·d; multiply that as F32.
    const values = new Float32Array(m.rows * m.cols);
    dequantize(DType.Q4_0, m.data, 0, values.length, values);
    const dv = new DataView(m.data.buffer, m.data.byteOffset);
    for (let b = 0; b < values.length / QK; b++) {
      const d = f16ToF32(dv.getUint16(b * (2 + QK / 2), true));
      for (let j = 0; j < QK; j++) values[b * QK + j] += 8 * d;
    }
    const plain = new RefWeight({
      name: m.name,
      type: DType.F32,
      shape: m.shape,
      data: f32Bytes(values),
    });
    super.matmul(out, plain, x, nTok);
  }
}

/** Bug: every token of a batch multiplies token 0's activations. */
export class BatchBugBackend extends ReferenceBackend {
  override matmul(out: Buf, w: Weight, x: Buf, nTok: number): void {
    const m = w as RefWeight;
    super.matmul(out, w, x, 1);
    const o = (out as RefBuf).data;
    for (let t = 1; t < nTok; t++) o.copyWithin(t * m.rows, 0, m.rows);
  }
}

/** Bug: every query of a prefill batch sees the whole batch (no causal mask). */
export class NonCausalBackend extends ReferenceBackend {
  override attention(out: Buf, q: Buf, k: Buf, v: Buf, a: AttnParams): void {
    const row = a.nHead * a.headDim;
    const one = { ...a, nTok: 1, pos0: a.pos0 + a.nTok - 1 };
    for (let t = 0; t < a.nTok; t++) {
      const qt = new RefBuf(row);
      qt.data.set((q as RefBuf).data.subarray(t * row, (t + 1) * row));
      const ot = new RefBuf(row);
      super.attention(ot, qt, k, v, one);
      (out as RefBuf).data.set(ot.data, t * row);
    }
  }
}

/** Bug: query head h reads KV head `h % nKV` instead of `floor(h / group)`. */
export class WrongGroupBackend extends ReferenceBackend {
  override attention(out: Buf, q: Buf, k: Buf, v: Buf, a: AttnParams): void {
    const nPos = a.pos0 + a.nTok;
    // Expand the cache to one KV head per query head, using the wrong mapping.
    const expand = (c: Buf) => {
      const e = new RefBuf(nPos * a.nHead * a.headDim);
      for (let p = 0; p < nPos; p++) {
        for (let h = 0; h < a.nHead; h++) {
          const src = (p * a.nKV + (h % a.nKV)) * a.headDim;
          const seg = (c as RefBuf).data.subarray(src, src + a.headDim);
          e.data.set(seg, (p * a.nHead + h) * a.headDim);
        }
      }
      return e;
    };
    super.attention(out, q, expand(k), expand(v), { ...a, nKV: a.nHead });
  }
}

/** Bug: dReLU forgets to clamp the up projection (computes reglu). */
export class DreluNoClampBackend extends ReferenceBackend {
  override glu(out: Buf, gate: Buf, up: Buf, n: number, kind: Glu): void {
    super.glu(out, gate, up, n, kind === "drelu" ? "reglu" : kind);
  }
}

function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
