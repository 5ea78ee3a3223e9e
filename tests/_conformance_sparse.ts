/**
 * Conformance cases of the sparse FFN and MoE ops (`SPARSE_OPS` of `core/backend.ts`): run on
 * every backend that has them, compared with the reference like every other case.
 *
 * Tolerances: `unary`, `axpy` as `glu`; `select` and the index lists exact; `gluSparse` and
 * `downSparse` as `matmul` of the weight type (the same dot products), `gluSparse` twice that
 * (the product of two such dot products).
 *
 * @module
 */

import type { Backend, Glu, IndexBuf, SparseBackend, Unary } from "../core/backend.ts";
import { sparseOps } from "../core/backend.ts";
import { DType, dtypeName } from "../core/dtype.ts";
import {
  type ConformanceCase,
  GUARD,
  GUARD_VALUE,
  normals,
  output,
  result,
  seedOf,
  upload,
  weightOf,
} from "./_conformance_util.ts";

const MATMUL_TOL: Record<string, number> = {
  F32: 1e-5,
  F16: 2e-3,
  BF16: 1e-2,
  Q8_0: 3e-2,
  Q4_0: 3e-2,
};
const TYPES = [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0];

/** A case that needs the sparse ops. */
function sparseCase(
  name: string,
  tolerance: number,
  minScale: number | undefined,
  op: (b: SparseBackend) => Float32Array,
): ConformanceCase {
  return { name, tolerance, minScale, sparse: true, op: (b: Backend) => op(sparseOps(b)) };
}

/** An index list holding every `step`-th id below n, from `first`. */
function ids(b: SparseBackend, n: number, step: number, first: number): IndexBuf {
  const list = [];
  for (let i = first; i < n; i += step) list.push(i);
  const idx = b.allocIndex(n);
  b.writeIndex(idx, Int32Array.from(list));
  return idx;
}

function unaryCase(op: Unary, n: number): ConformanceCase {
  const name = `unary ${op} n=${n}`;
  return sparseCase(name, 1e-5, 1, (b) => {
    const x = normals(n, seedOf(name), 4);
    for (let i = 0; i < n; i += 7) x[i] = 0; // exact zeros: `nonzero` must see them
    const xb = upload(b, x);
    const out = output(b, n);
    b.unary(out, xb, n, op);
    return result(b, out, n, name);
  });
}

function selectCase(n: number, threshold: number): ConformanceCase {
  const name = `select/readIndex n=${n} threshold=${threshold}`;
  return sparseCase(name, 0, undefined, (b) => {
    const offset = 5;
    const s = normals(offset + n, seedOf(name));
    for (let i = offset; i < offset + n; i += 11) s[i] = threshold; // ties count as active
    s[offset + 3] = NaN; // never active
    const idx = b.allocIndex(n);
    b.select(idx, upload(b, s), offset, n, threshold);
    return Float32Array.from(b.readIndex(idx));
  });
}

function gluSparseCase(type: DType, kind: Glu, nFF: number, nEmbd: number): ConformanceCase {
  const name = `gluSparse ${dtypeName(type)} ${kind} [${nFF}, ${nEmbd}]`;
  const seed = seedOf(name);
  return sparseCase(name, 2 * MATMUL_TOL[dtypeName(type)], nEmbd, (b) => {
    const gate = weightOf(b, type, [nFF, nEmbd], normals(nFF * nEmbd, seed));
    const up = weightOf(b, type, [nFF, nEmbd], normals(nFF * nEmbd, seed + 1));
    const x = upload(b, normals(2 * nEmbd, seed + 2)); // the second row is the token
    const idx = ids(b, nFF, 3, 1);
    const count = b.readIndex(idx).length;
    const act = output(b, count);
    b.gluSparse(act, gate, up, x, nEmbd, idx, kind);
    return result(b, act, count, name);
  });
}

function gluSparseGatedCase(type: DType, kind: Glu, nFF: number, nEmbd: number): ConformanceCase {
  const name = `gluSparseGated ${dtypeName(type)} ${kind} [${nFF}, ${nEmbd}]`;
  const seed = seedOf(name);
  return sparseCase(name, 2 * MATMUL_TOL[dtypeName(type)], nEmbd, (b) => {
    const up = weightOf(b, type, [nFF, nEmbd], normals(nFF * nEmbd, seed));
    const gateOut = upload(b, normals(3 + nFF, seed + 1, Math.sqrt(nEmbd)));
    const x = upload(b, normals(nEmbd, seed + 2));
    const idx = ids(b, nFF, 2, 0);
    const count = b.readIndex(idx).length;
    const act = output(b, count);
    b.gluSparseGated(act, gateOut, 3, up, x, 0, idx, kind);
    return result(b, act, count, name);
  });
}

function downSparseCase(type: DType, nFF: number, nEmbd: number): ConformanceCase {
  const name = `downSparse ${dtypeName(type)} [${nFF}, ${nEmbd}]`;
  const seed = seedOf(name);
  const outOffset = 16;
  return sparseCase(name, MATMUL_TOL[dtypeName(type)], Math.sqrt(nFF / 2), (b) => {
    const downT = weightOf(b, type, [nFF, nEmbd], normals(nFF * nEmbd, seed));
    const idx = ids(b, nFF, 2, 1);
    const count = b.readIndex(idx).length;
    const a = normals(count, seed + 1);
    for (let k = 0; k < count; k += 4) a[k] = 0; // inactive neurons: rows never read
    const out = b.alloc(outOffset + nEmbd + GUARD);
    const init = new Float32Array(outOffset + nEmbd + GUARD).fill(GUARD_VALUE);
    init.fill(NaN, outOffset, outOffset + nEmbd); // must be written; the head must survive
    b.write(out, init);
    b.downSparse(out, outOffset, downT, upload(b, a), idx);
    return result(b, out, outOffset + nEmbd, name);
  });
}

/**
 * `downSparseBatch` of 5 tokens with and without scores; a backend without the optional op
 * runs what the forward pass then runs (per token `select` and `downSparse`), so the case
 * also checks that the batch equals its tokens one at a time.
 */
function downSparseBatchCase(type: DType, nFF: number, nEmbd: number, scored: boolean) {
  const name = `downSparseBatch ${dtypeName(type)} [${nFF}, ${nEmbd}]${scored ? " scored" : ""}`;
  const seed = seedOf(name);
  const nTok = 5, threshold = 0.25;
  return sparseCase(name, MATMUL_TOL[dtypeName(type)], Math.sqrt(nFF / 4), (b) => {
    const downT = weightOf(b, type, [nFF, nEmbd], normals(nFF * nEmbd, seed));
    const a = normals(nTok * nFF, seed + 1);
    for (let i = 0; i < a.length; i += 3) a[i] = 0; // dReLU zeros: rows never read
    const s = normals(nTok * nFF, seed + 2);
    for (let i = 0; i < s.length; i += 13) s[i] = threshold; // ties count as active
    const act = upload(b, a), score = scored ? upload(b, s) : null;
    const out = output(b, nTok * nEmbd);
    if (b.downSparseBatch) {
      b.downSparseBatch(out, downT, act, score, threshold, nTok);
      return result(b, out, nTok * nEmbd, name);
    }
    const idx = b.allocIndex(nFF), packed = output(b, nFF);
    for (let t = 0; t < nTok; t++) {
      if (score) b.select(idx, score, t * nFF, nFF, threshold);
      else b.writeIndex(idx, Int32Array.from({ length: nFF }, (_, i) => i));
      const ids = b.readIndex(idx);
      b.write(packed, Float32Array.from(ids, (i) => a[t * nFF + i]));
      b.downSparse(out, t * nEmbd, downT, packed, idx);
    }
    return result(b, out, nTok * nEmbd, name);
  });
}

function axpyCase(n: number, alpha: number): ConformanceCase {
  const name = `axpy n=${n} alpha=${alpha}`;
  const seed = seedOf(name);
  return sparseCase(name, 1e-6, 1, (b) => {
    const out = b.alloc(4 + n + GUARD);
    const init = new Float32Array(4 + n + GUARD).fill(GUARD_VALUE);
    init.set(normals(n, seed), 4);
    b.write(out, init);
    b.axpy(out, 4, upload(b, normals(9 + n, seed + 1)), 9, n, alpha);
    return result(b, out, 4 + n, name);
  });
}

/** Every sparse case, in a fixed order. */
export function sparseCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const op of ["relu", "abs_silu", "nonzero"] as const) cases.push(unaryCase(op, 1000));
  cases.push(selectCase(1000, 0.3), selectCase(4096, -0.5), selectCase(7, 10));
  for (const type of TYPES) {
    cases.push(gluSparseCase(type, "drelu", 96, 256), downSparseCase(type, 96, 256));
    cases.push(downSparseBatchCase(type, 96, 256, true));
  }
  cases.push(downSparseBatchCase(DType.F16, 70, 96, false));
  cases.push(
    gluSparseCase(DType.F32, "swiglu", 50, 64),
    gluSparseCase(DType.F16, "reglu", 64, 128),
  );
  for (const kind of ["swiglu", "reglu", "drelu"] as const) {
    cases.push(gluSparseGatedCase(DType.Q8_0, kind, 96, 256));
  }
  cases.push(gluSparseGatedCase(DType.F32, "swiglu", 33, 64));
  cases.push(axpyCase(1000, 0.37), axpyCase(5, -2));
  return cases;
}
