/**
 * The CUDA backend's held-back ops: a matmul, add, rope or KV-row store waits here until the
 * next op shows whether it merges (one launch for Q, K and V; the glu or relu in the matvec's
 * epilogue; add then rmsnorm as one kernel; two ropes in one launch; both KV rows in one).
 * Only one kind is held at a time, and every other op flushes first, so effects keep the
 * order of the calls. Callers have checked the arguments.
 *
 * @module
 */

import { DType } from "../../core/dtype.ts";
import type { Glu } from "../../core/backend.ts";
import type { CudaLib } from "./_ffi.ts";
import type { CudaBuf, CudaWeight } from "./backend.ts";

/** The position and token of a decode step being run or captured, and where they live. */
export interface Dyn {
  readonly pos: number;
  readonly token: number;
  /** Device pointer to int32 `[pos, token]`. */
  readonly ptr: Deno.PointerObject;
}

interface Matmul {
  out: CudaBuf;
  w: CudaWeight;
  x: CudaBuf;
  nTok: number;
}
interface Rope {
  x: CudaBuf;
  nTok: number;
  nHead: number;
  headDim: number;
  pos0: number;
  dim: number;
  base: number;
}
interface Add {
  out: CudaBuf;
  a: CudaBuf;
  b: CudaBuf;
  n: number;
}
interface Store {
  dst: Deno.PointerObject;
  src: Deno.PointerObject;
  n: number;
}

/** Matvec epilogue codes of kernels/cuda/matvec.cu. */
const EPI: Record<Glu | "none" | "relu", number> = {
  none: 0,
  relu: 1,
  swiglu: 2,
  reglu: 3,
  drelu: 4,
};

type Check = (op: string, rc: number) => void;

/** The held-back ops of one CudaBackend. */
export class OpQueue {
  #mm: Matmul[] = [];
  #add: Add | null = null;
  #rope: Rope[] = [];
  #stores: Store[] = [];
  /** The step being run or captured; its kernels read pos and token from the device. */
  dyn: Dyn | null = null;

  constructor(readonly lib: CudaLib, readonly check: Check) {}

  /** Queue `out = w · x`; matmuls sharing x, type and width merge (three at most). */
  matmul(m: Matmul): void {
    const head = this.#mm[0];
    const joins = head !== undefined && this.#mm.length < 3 && head.x === m.x &&
      head.nTok === m.nTok && head.w.type === m.w.type && head.w.cols === m.w.cols &&
      this.#mm.every((p) => p.out !== m.out && p.out !== m.x);
    if (!joins) this.flush();
    this.#mm.push(m);
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

  /** Hold `out = a + b` for a following rmsnorm of out. */
  add(a: Add): void {
    this.flush();
    this.#add = a;
  }

  /** True when `rmsnorm(out, x, w)` was fused with the held add producing x (and ran). */
  rmsnorm(out: CudaBuf, x: CudaBuf, w: Deno.PointerObject, nTok: number, n: number, eps: number) {
    const a = this.#add;
    if (!a || a.out !== x || a.n !== nTok * n || out === a.a || out === a.b) return false;
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

  /** Hold the store of one row at the step's position (pos read on the device); two share a launch. */
  store(s: Store): void {
    const p = this.#stores[0];
    if (!(p !== undefined && this.#stores.length === 1 && p.n === s.n)) this.flush();
    this.#stores.push(s);
  }

  /** Launch whatever is held. */
  flush(): void {
    const s = this.lib.symbols;
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
    const [a, b, c] = mm;
    const rc = batchOf(this.lib, a.w.type)(
      a.out.ptr,
      a.w.ptr,
      a.w.rows,
      b?.out.ptr ?? null,
      b?.w.ptr ?? null,
      b?.w.rows ?? 0,
      c?.out.ptr ?? null,
      c?.w.ptr ?? null,
      c?.w.rows ?? 0,
      mm.length,
      epi,
      a.x.ptr,
      a.w.cols,
      a.nTok,
    );
    this.check("matmul", rc);
  }
}

/** The batched matvec of a weight type. */
function batchOf(lib: CudaLib, type: DType) {
  const s = lib.symbols;
  switch (type) {
    case DType.F32:
      return s.ts_matvec_batch_f32;
    case DType.BF16:
      return s.ts_matvec_batch_bf16;
    case DType.Q8_0:
      return s.ts_matvec_batch_q8_0;
    case DType.Q4_0:
      return s.ts_matvec_batch_q4_0;
    default:
      return s.ts_matvec_batch_f16;
  }
}
