/**
 * The CUDA backend's held-back ops: a matmul, add, rope or KV-row store waits here until the
 * next op shows whether it merges (one launch for Q, K and V; the glu or relu in the matvec's
 * epilogue; add then rmsnorm as one kernel; two ropes in one launch; both KV rows in one).
 * For one token on F16/BF16/Q8_0/Q4_0 weights the matvec also absorbs its neighbours
 * (kernels/cuda/matvec_xreg.cu): an rmsnorm whose output is the matvec's x (prologue), the
 * residual add of its output, and a select of its output (epilogues). When the kernel has no
 * fused form for the shapes, the plain ops run instead, in order.
 * Only one kind is held at a time, and every other op flushes first, so effects keep the
 * order of the calls. Callers have checked the arguments.
 *
 * @module
 */

import type { Glu } from "../../core/backend.ts";
import type { CudaLib } from "./_ffi.ts";
import type { CudaBuf } from "./_buffers.ts";
import {
  type Add,
  batchOf,
  type Down,
  type Dyn,
  EPI,
  type Fused,
  fusedOf,
  jobArgs,
  type Matmul,
  type Norm,
  type P,
  type Rope,
  type Store,
} from "./_held.ts";

type Check = (op: string, rc: number) => void;

/** The held-back ops of one CudaBackend. */
export class OpQueue {
  #mm: Matmul[] = [];
  #add: Add | null = null;
  #rope: Rope[] = [];
  #stores: Store[] = [];
  #norm: Norm | null = null;
  #down: Down | null = null;
  #fused: Fused = { norm: null, res: null, sel: null };
  /** Bench switch: false launches the plain ops (norm, add, select) beside the matvec. */
  fuse = true;
  /**
   * Select in the matvec's epilogue (the predictor's fc2): on by default since it won by
   * 0.2–2% in five paired runs on an H200 (BENCHMARKS.md); false: select as its own launch.
   */
  fuseSelect = true;
  /**
   * The fused select leaves its survivors in per-block lists and the gathered glu that follows
   * places them in the index list (kernels/cuda/sparse.cu, from_select): the matvec's last
   * block no longer scans and places every list. False: the select epilogue completes the list.
   */
  selectInGlu = true;
  /** True when the last fused launch left its select in per-block lists. */
  #localSel = false;
  /**
   * A decode step's rope and KV-cache store inside its attention launch (kernels/cuda/
   * attention.cu, ts_attention_f32 with kNew); false: their own launch before it.
   */
  fuseRope = true;
  /** The step being run or captured; its kernels read pos and token from the device. */
  dyn: Dyn | null = null;

  constructor(readonly lib: CudaLib, readonly check: Check) {}

  /** Queue `out = w · x`; matmuls sharing x, type and width merge (three at most). */
  matmul(m: Matmul): void {
    const head = this.#mm[0], f = this.#fused;
    const joins = head !== undefined && this.#mm.length < 3 && head.x === m.x &&
      head.nTok === m.nTok && head.w.type === m.w.type && head.w.cols === m.w.cols &&
      this.#mm.every((p) => p.out !== m.out && p.out !== m.x) && !f.res && !f.sel &&
      (!f.norm || m.out !== f.norm.x);
    if (joins) {
      this.#mm.push(m);
      return;
    }
    // A held norm of this x becomes the prologue (x is then the norm's input).
    const norm = this.#norm;
    const fits = norm !== null && m.nTok === 1 && norm.n === m.w.cols &&
      fusedOf(this.lib, m.w.type) !== null;
    const takes = fits && norm.out === m.x && m.out !== norm.x;
    // a matvec of the norm's input (the predictor's fc1 beside the FFN norm): side output
    const side = fits && !takes && norm.x === m.x && m.out !== norm.out && m.out !== norm.x;
    if (takes || side) this.#norm = null;
    this.flush();
    this.#mm.push(m);
    if (takes || side) this.#fused.norm = { ...norm!, side };
  }

  /** Hold a sparse down projection: a residual add of its output may join its last kernel. */
  down(d: Down): void {
    this.flush();
    this.#down = d;
  }

  /** True when `out = a + b`, b the one held matvec's output, became its epilogue. */
  addAfter(a: Add): boolean {
    const [m] = this.#mm, f = this.#fused;
    if (
      !this.fuse || this.#mm.length !== 1 || m.nTok !== 1 || a.b !== m.out || a.n !== m.w.rows ||
      f.res || f.sel || a.out === m.out || a.out === m.x || a.a === m.out ||
      (f.norm && (a.out === f.norm.x || a.out === f.norm.out || a.a === f.norm.out)) ||
      fusedOf(this.lib, m.w.type) === null
    ) return false;
    f.res = { out: a.out, a: a.a };
    return true;
  }

  /**
   * True when select of the one held matvec's whole output became its epilogue: launched now,
   * or (`selectInGlu`) held until the next op, which may be the gathered glu that places it.
   */
  selectAfter(score: Deno.PointerObject, n: number, idx: Deno.PointerObject, thr: number): boolean {
    const [m] = this.#mm, f = this.#fused;
    if (
      !this.fuse || !this.fuseSelect || this.#mm.length !== 1 || m.nTok !== 1 || n !== m.w.rows ||
      f.res || f.sel ||
      !Deno.UnsafePointer.equals(score, m.out.ptr) ||
      fusedOf(this.lib, m.w.type) === null
    ) return false;
    f.sel = { idx, thr };
    if (!this.selectInGlu) this.flush(); // else held: a gathered glu of idx may place the lists
    return true;
  }

  /**
   * True when the held matvec's select of `idx` ran leaving per-block lists, for the gathered
   * glu about to launch to place (its `fromSelect`); false when nothing of idx is held (it was
   * launched complete, or is launched complete now).
   */
  gluFromSelect(idx: Deno.PointerObject): boolean {
    const f = this.#fused;
    const takes = this.selectInGlu && this.#mm.length === 1 && f.sel !== null &&
      Deno.UnsafePointer.equals(f.sel.idx, idx);
    if (takes) f.sel!.local = true;
    this.#localSel = false;
    this.flush();
    return takes && this.#localSel;
  }

  /** True when `glu(gate, gate, up)` was fused into the two held matmuls (and ran). */
  glu(gate: CudaBuf, up: CudaBuf, n: number, kind: Glu): boolean {
    const [g, u] = this.#mm;
    if (
      this.#mm.length !== 2 || g.out !== gate || u.out !== up || g.w.rows !== u.w.rows ||
      n !== g.w.rows * g.nTok
    ) return false;
    this.#mm = [];
    this.#launch([g, u], EPI[kind]);
    return true;
  }

  /** True when `relu(x)` in place was fused into the one held matmul writing x (and ran). */
  relu(x: CudaBuf, n: number): boolean {
    const [m] = this.#mm;
    if (this.#mm.length !== 1 || m.out !== x || n !== m.w.rows * m.nTok) return false;
    this.#mm = [];
    this.#launch([m], EPI.relu);
    return true;
  }

  /** Hold `out = a + b` for a following rmsnorm of out, or fuse it into the held matvec. */
  add(a: Add): void {
    const d = this.#down;
    if (
      d && this.fuse && a.b === d.out && d.offset === 0 && a.n === d.cols && a.out !== d.out &&
      a.a !== d.out
    ) {
      this.#down = null;
      const rc = d.fn(d.out.ptr, d.w, d.act, d.idx, d.capacity, d.cols, a.out.ptr, a.a.ptr);
      this.check("downSparse", rc);
      return;
    }
    if (this.addAfter(a)) return;
    this.flush();
    this.#add = a;
  }

  /** True when `rmsnorm(out, x, w)` was fused with the held add producing x (and ran). */
  rmsnorm(out: CudaBuf, x: CudaBuf, w: Deno.PointerObject, nTok: number, n: number, eps: number) {
    const a = this.#add;
    if (!a || a.out !== x || a.n !== nTok * n || out === a.a || out === a.b) {
      if (!this.fuse || nTok !== 1 || out === x) return false;
      this.flush(); // hold it: a following matvec of out takes it as its prologue
      this.#norm = { out, x, w, n, eps };
      return true;
    }
    this.#add = null;
    this.check(
      "rmsnorm",
      this.lib.symbols.ts_add_rmsnorm_f32(out.ptr, a.out.ptr, a.a.ptr, a.b.ptr, w, nTok, n, eps),
    );
    return true;
  }

  /** Hold a rope; a second one with the same tokens, position and frequencies shares its launch. */
  rope(r: Rope): void {
    const p = this.#rope[0];
    const joins = p !== undefined && this.#rope.length === 1 && p.x !== r.x && p.nTok === r.nTok &&
      p.headDim === r.headDim && p.pos0 === r.pos0 && p.dim === r.dim && p.base === r.base;
    if (!joins) this.flush();
    this.#rope.push(r);
  }

  /**
   * Hold the store of one row at the step's position (pos read on the device); two share a
   * launch, and with the held ropes of q and k of one token (k the first row stored), the
   * rope's launch too.
   */
  store(s: Store): void {
    const p = this.#stores[0], [, rk] = this.#rope;
    const joins = p !== undefined && this.#stores.length === 1 && p.n === s.n;
    const afterRope = p === undefined && rk !== undefined && rk.nTok === 1 && this.fuse &&
      Deno.UnsafePointer.equals(rk.x.ptr, s.src) && s.n === rk.nHead * rk.headDim &&
      this.dyn?.pos === rk.pos0 && !this.#mm.length && !this.#add && !this.#norm;
    if (!joins && !afterRope) this.flush();
    this.#stores.push(s);
  }

  /**
   * Take out the held ropes of q and k of one decode token and their two cache-row stores when
   * they are all that is held and match the attention about to run (its `q` and its caches `k`
   * and `v`), for an attention launch that rotates and stores them itself; null otherwise
   * (nothing taken).
   */
  takeRopeStore(q: P, k: P, v: P): { kNew: P; vNew: P; dim: number; base: number } | null {
    const [rq, rk] = this.#rope, [sk, sv] = this.#stores, eq = Deno.UnsafePointer.equals;
    if (!this.fuse || !this.fuseRope || !rq || !rk || !sk || !sv) return null;
    if (this.#rope.length !== 2 || this.#stores.length !== 2) return null;
    if (this.#mm.length || this.#add || this.#norm || this.#down) return null;
    if (
      rq.nTok !== 1 || this.dyn?.pos !== rq.pos0 || !eq(rq.x.ptr, q) || !eq(sk.dst, k) ||
      !eq(sv.dst, v) || !eq(sk.src, rk.x.ptr)
    ) return null;
    this.#rope = [], this.#stores = [];
    return { kNew: rk.x.ptr, vNew: sv.src, dim: rq.dim, base: rq.base };
  }

  /** Launch whatever is held. */
  flush(): void {
    const s = this.lib.symbols;
    if (this.#down) {
      const d = this.#down;
      this.#down = null;
      const out = d.offset ? Deno.UnsafePointer.offset(d.out.ptr, d.offset * 4)! : d.out.ptr;
      this.check("downSparse", d.fn(out, d.w, d.act, d.idx, d.capacity, d.cols, null, null));
    }
    if (this.#norm) {
      const { out, x, w, n, eps } = this.#norm;
      this.#norm = null;
      this.check("rmsnorm", s.ts_rmsnorm_f32(out.ptr, x.ptr, w, 1, n, eps));
    }
    if (this.#mm.length) {
      const mm = this.#mm;
      this.#mm = [];
      this.#launch(mm, EPI.none);
    }
    if (this.#add) {
      const { out, a, b, n } = this.#add;
      this.#add = null;
      this.check("add", s.ts_add_f32(out.ptr, a.ptr, b.ptr, n));
    }
    if (this.#rope.length === 2 && this.#stores.length === 2) {
      // rope of q and k, then the rotated k row and the v row into the cache: one launch
      const [rq, rk] = this.#rope, [sk, sv] = this.#stores;
      this.#rope = [], this.#stores = [];
      this.check(
        "rope",
        s.ts_rope_store_f32(
          rq.x.ptr,
          rq.nHead,
          rk.x.ptr,
          rk.nHead,
          rq.headDim,
          this.dyn!.ptr,
          rq.dim,
          rq.base,
          sk.dst,
          sv.dst,
          sv.src,
        ),
      );
    }
    if (this.#rope.length) {
      const [r, r2] = this.#rope;
      this.#rope = [];
      const dpos = this.dyn && this.dyn.pos === r.pos0 ? this.dyn.ptr : null;
      this.check(
        "rope",
        s.ts_rope_f32(
          r.x.ptr,
          r.nTok,
          r.nHead,
          r2?.x.ptr ?? null,
          r2?.nHead ?? 0,
          r.headDim,
          r.pos0,
          dpos,
          r.dim,
          r.base,
        ),
      );
    }
    if (this.#stores.length) {
      const [a, b] = this.#stores;
      this.#stores = [];
      this.check(
        "copy",
        s.ts_store_rows_f32(a.dst, a.src, b?.dst ?? null, b?.src ?? null, a.n, this.dyn!.ptr),
      );
    }
  }

  /** One matvec launch over `mm` (shared x): a batch, or a gate/up pair with an activation. */
  #launch(mm: Matmul[], epi: number): void {
    const f = this.#fused;
    this.#fused = { norm: null, res: null, sel: null };
    if ((f.norm || f.res || f.sel) && this.#launchFused(mm, epi, f)) return;
    const s = this.lib.symbols;
    if (f.norm) {
      const { out, x, w, n, eps } = f.norm;
      this.check("rmsnorm", s.ts_rmsnorm_f32(out.ptr, x.ptr, w, 1, n, eps));
    }
    this.#launchBatch(mm, epi);
    if (f.res) {
      this.check("add", s.ts_add_f32(f.res.out.ptr, f.res.a.ptr, mm[0].out.ptr, mm[0].w.rows));
    }
    if (f.sel) {
      this.check("select", s.ts_select_f32(f.sel.idx, mm[0].out.ptr, mm[0].w.rows, f.sel.thr));
    }
  }

  /** The fused kernel for `mm` and `f`; false when it has none for these shapes (no launch). */
  #launchFused(mm: Matmul[], epi: number, f: Fused): boolean {
    const fn = fusedOf(this.lib, mm[0].w.type);
    if (!fn) return false;
    const x = f.norm ? f.norm.x : mm[0].x;
    const rc = fn(
      ...jobArgs(mm, epi, x),
      f.norm?.w ?? null,
      f.norm?.out.ptr ?? null,
      f.norm?.eps ?? 0,
      f.norm?.side ? 1 : 0,
      f.res?.out.ptr ?? null,
      f.res?.a.ptr ?? null,
      f.sel?.idx ?? null,
      f.sel?.thr ?? 0,
      f.sel?.local ? 1 : 0,
    );
    if (rc === -1) return false;
    this.check("matmul", rc);
    this.#localSel = f.sel?.local === true;
    return true;
  }

  /** The plain batched matvec launch. */
  #launchBatch(mm: Matmul[], epi: number): void {
    const rc = batchOf(this.lib, mm[0].w.type)(...jobArgs(mm, epi, mm[0].x), mm[0].nTok);
    this.check("matmul", rc);
  }
}
