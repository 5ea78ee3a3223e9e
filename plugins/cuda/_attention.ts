/**
 * The CUDA backend's rope and attention (kernels/cuda/ops.cu, attention.cu). In a captured
 * decode step the held rope of q and k and the two KV-cache row stores (`_queue.ts`) run inside
 * the attention launch: its kernel rotates q and the step's K row and stores both rows itself.
 *
 * @module
 */

import type { AttnParams, Buf, RopeParams } from "../../core/backend.ts";
import type { Ctx } from "./_args.ts";

/** The rope and attention ops of one CudaBackend. */
export class AttentionOps {
  readonly #c: Ctx;

  constructor(ctx: Ctx) {
    this.#c = ctx;
  }

  rope(x: Buf, nTok: number, nHead: number, headDim: number, pos0: number, p: RopeParams): void {
    const { args } = this.#c;
    const xs = args.buf("rope", "x", x);
    args.count("rope", "nTok", nTok);
    args.count("rope", "nHead", nHead);
    args.count("rope", "headDim", headDim);
    args.count("rope", "pos0", pos0);
    if (p.dim % 2 !== 0 || p.dim < 0 || p.dim > headDim) {
      throw new Error(`cuda rope: dim ${p.dim} must be even and at most headDim ${headDim}`);
    }
    args.fits("rope", "x", xs, nTok * nHead * headDim);
    if (nTok * nHead * p.dim > 0) {
      this.#c.q.rope({ x: xs, nTok, nHead, headDim, pos0, dim: p.dim, base: p.base });
    }
  }

  attention(out: Buf, q: Buf, k: Buf, v: Buf, a: AttnParams): void {
    const { args, lib, check } = this.#c, queue = this.#c.q;
    const o = args.buf("attention", "out", out);
    const qs = args.buf("attention", "q", q);
    const ks = args.buf("attention", "k", k);
    const vs = args.buf("attention", "v", v);
    const { nTok, pos0, nHead, nKV, headDim, scale } = a;
    args.count("attention", "nTok", nTok);
    args.count("attention", "pos0", pos0);
    args.count("attention", "headDim", headDim);
    if (!(nKV > 0 && Number.isInteger(nKV) && nHead % nKV === 0)) {
      throw new Error(`cuda attention: nHead ${nHead} must be a multiple of nKV ${nKV}`);
    }
    if (headDim > 256) throw new Error(`cuda attention: headDim ${headDim} is over 256`);
    const nPos = pos0 + nTok;
    args.fits("attention", "q", qs, nTok * nHead * headDim);
    args.fits("attention", "out", o, nTok * nHead * headDim);
    args.fits("attention", "k", ks, nPos * nKV * headDim);
    args.fits("attention", "v", vs, nPos * nKV * headDim);
    const dyn = queue.dyn, nCtx = Math.min(ks.length, vs.length) / (nKV * headDim);
    const dpos = dyn && dyn.pos === pos0 && nTok === 1 ? dyn.ptr : null;
    // One token of a captured step: its rope and cache stores run inside the attention launch
    // (the decode kernel's shapes: head_dim 64, 128 or 256, 1, 2, 4 or 8 heads per KV head).
    const fits = dpos !== null && [64, 128, 256].includes(headDim) &&
      [1, 2, 4, 8].includes(nHead / nKV);
    const rope = fits ? queue.takeRopeStore(qs.ptr, ks.ptr, vs.ptr) : null;
    queue.flush();
    if (nTok * nHead * headDim === 0) return;
    check(
      "attention",
      lib.symbols.ts_attention_f32(
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
        rope?.kNew ?? null,
        rope?.vNew ?? null,
        rope?.dim ?? 0,
        rope?.base ?? 0,
      ),
    );
  }
}
