/**
 * The backend conformance suite: every op of `core/backend.ts` on seeded random inputs,
 * compared with the reference backend. `conformance(name)` registers it for one registered
 * backend; `conformanceCases()` and `runCase()` let a test run it against any Backend object.
 *
 * Error metric: max |backend - reference| over the output, divided by max |reference| (or by
 * the case's `minScale` when that is larger).
 * Outputs are pre-filled with NaN (an op must write every element) and followed by guard
 * elements (an op must not write past its output).
 *
 * @module
 */

import { type Backend, type Glu, hasSparseOps } from "../core/backend.ts";
import { DType, dtypeName } from "../core/dtype.ts";
import { plugin as referencePlugin } from "../plugins/reference/mod.ts";
import { chooseBackend, probeAll } from "../plugins/registry.ts";
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
import { sparseCases } from "./_conformance_sparse.ts";

export { type ConformanceCase, normals } from "./_conformance_util.ts";

/**
 * Allowed error per op, relative to the output's max magnitude.
 *
 * - copy, embed, add: exact. Dequantising is exact in f32 (an f16 scale times an int8 fits
 *   in 24 bits) and a single f32 add rounds the same everywhere.
 * - rmsnorm, glu, attention: 1e-5, f32 accumulation order and fast exp() on GPUs.
 * - rope: 1e-4, because llama.cpp builds θ in f32 (powf, repeated multiplies); at position
 *   ~1000 an f32 angle is off by ~1e-4 rad where the reference uses doubles.
 * - matmul F32: 1e-5 (f32 accumulation over up to 4096 terms).
 * - matmul F16 / BF16: native backends round activations to the weight type before the dot
 *   product, as ggml does (its vec_dot_type), so half of F16's 2^-11 or BF16's 2^-8 step.
 * - matmul Q8_0 / Q4_0: 3e-2, because native backends quantise activations to Q8_0 blocks for
 *   an integer dot product, as ggml does (up to 1/254 of each block's max per element). A
 *   double doing exactly that (`tests/_conformance_doubles.ts`) measures up to 8.4e-3 here.
 *
 * Measured for that double: F32 ≤ 1.7e-6, F16 ≤ 2.7e-4, BF16 ≤ 4.5e-3, rope ≤ 2.1e-5.
 */
export const TOLERANCE = {
  copy: 0,
  embed: 0,
  add: 0,
  rmsnorm: 1e-5,
  glu: 1e-5,
  attention: 1e-5,
  rope: 1e-4,
  matmul: { F32: 1e-5, F16: 2e-3, BF16: 1e-2, Q8_0: 3e-2, Q4_0: 3e-2 } as Record<string, number>,
} as const;

/** The weight types every backend must multiply and embed. */
export const WEIGHT_TYPES: readonly DType[] = [
  DType.F32,
  DType.F16,
  DType.BF16,
  DType.Q8_0,
  DType.Q4_0,
];

/** One check: `op` runs on a backend and returns its output, compared with the reference. */

function matmulCase(type: DType, rows: number, cols: number, nTok: number): ConformanceCase {
  const name = `matmul ${dtypeName(type)} [${rows}, ${cols}] nTok=${nTok}`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.matmul[dtypeName(type)],
    minScale: Math.sqrt(cols), // unit-normal weights and inputs: outputs have σ = √cols
    op(b) {
      const w = weightOf(b, type, [rows, cols], normals(rows * cols, seed));
      const x = upload(b, normals(nTok * cols, seed + 1));
      const out = output(b, nTok * rows);
      b.matmul(out, w, x, nTok);
      return result(b, out, nTok * rows, name);
    },
  };
}

function embedCase(type: DType, vocab: number, width: number): ConformanceCase {
  const name = `embed ${dtypeName(type)} [${vocab}, ${width}]`;
  const tokens = Int32Array.from([0, vocab - 1, 5, 5, 17 % vocab]);
  return {
    name,
    tolerance: TOLERANCE.embed,
    op(b) {
      const table = weightOf(b, type, [vocab, width], normals(vocab * width, seedOf(name)));
      const out = output(b, tokens.length * width);
      b.embed(out, table, tokens);
      return result(b, out, tokens.length * width, name);
    },
  };
}

function rmsnormCase(width: number, nTok: number, eps: number): ConformanceCase {
  const name = `rmsnorm width=${width} nTok=${nTok} eps=${eps}`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.rmsnorm,
    op(b) {
      const w = weightOf(b, DType.F32, [width], normals(width, seed));
      const x = upload(b, normals(nTok * width, seed + 1, 3));
      const out = output(b, nTok * width);
      b.rmsnorm(out, x, w, nTok, eps);
      return result(b, out, nTok * width, name);
    },
  };
}

function ropeCase(
  headDim: number,
  dim: number,
  nHead: number,
  nTok: number,
  pos0: number,
  base: number,
): ConformanceCase {
  const name = `rope headDim=${headDim} dim=${dim} nHead=${nHead} nTok=${nTok} pos0=${pos0} ` +
    `base=${base}`;
  const n = nTok * nHead * headDim;
  return {
    name,
    tolerance: TOLERANCE.rope,
    op(b) {
      const x = b.alloc(n + GUARD);
      const init = new Float32Array(n + GUARD).fill(GUARD_VALUE);
      init.set(normals(n, seedOf(name)));
      b.write(x, init);
      b.rope(x, nTok, nHead, headDim, pos0, { dim, base });
      return result(b, x, n, name);
    },
  };
}

function attentionCase(
  nTok: number,
  pos0: number,
  nHead: number,
  nKV: number,
  headDim: number,
): ConformanceCase {
  const kind = nKV === nHead ? "MHA" : "GQA";
  const name = `attention ${kind} nTok=${nTok} pos0=${pos0} nHead=${nHead} nKV=${nKV} ` +
    `headDim=${headDim}`;
  const seed = seedOf(name);
  const nCtx = pos0 + nTok + 4; // room past the last position, filled with poison
  const used = (pos0 + nTok) * nKV * headDim;
  return {
    name,
    tolerance: TOLERANCE.attention,
    op(b) {
      const cache = (s: number) => {
        const v = new Float32Array(nCtx * nKV * headDim).fill(1e3); // must never be read
        v.set(normals(used, s));
        return upload(b, v);
      };
      const q = upload(b, normals(nTok * nHead * headDim, seed, 2));
      const k = cache(seed + 1);
      const v = cache(seed + 2);
      const out = output(b, nTok * nHead * headDim);
      b.attention(out, q, k, v, { nTok, pos0, nHead, nKV, headDim, scale: 1 / Math.sqrt(headDim) });
      return result(b, out, nTok * nHead * headDim, name);
    },
  };
}

function addCase(n: number, aliasOut: boolean): ConformanceCase {
  const name = `add n=${n}${aliasOut ? " out=a" : ""}`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.add,
    op(b) {
      const a = upload(b, normals(n, seed));
      const c = upload(b, normals(n, seed + 1));
      if (aliasOut) {
        b.add(a, a, c, n);
        return b.read(a, 0, n);
      }
      const out = output(b, n);
      b.add(out, a, c, n);
      return result(b, out, n, name);
    },
  };
}

function gluCase(kind: Glu, n: number): ConformanceCase {
  const name = `glu ${kind} n=${n}`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.glu,
    op(b) {
      const gate = upload(b, normals(n, seed, 4)); // half negative: exercises every branch
      const up = upload(b, normals(n, seed + 1, 4));
      const out = output(b, n);
      b.glu(out, gate, up, n, kind);
      return result(b, out, n, name);
    },
  };
}

function copyCase(n: number, dstOffset: number, srcOffset: number): ConformanceCase {
  const name = `copy/write/read n=${n} dstOffset=${dstOffset} srcOffset=${srcOffset}`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.copy,
    op(b) {
      const src = b.alloc(srcOffset + n);
      b.write(src, normals(n, seed), srcOffset);
      // dst starts as known values (then guards): the head before dstOffset must survive
      const dst = b.alloc(dstOffset + n + GUARD);
      const init = new Float32Array(dstOffset + n + GUARD).fill(GUARD_VALUE);
      init.set(normals(dstOffset + n, seed + 1));
      b.write(dst, init);
      b.copy(dst, dstOffset, src, srcOffset, n);
      return result(b, dst, dstOffset + n, name);
    },
  };
}

/** Every case of the suite, in a fixed order. */
export function conformanceCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const shapes = [[1, 32], [13, 96], [37, 256], [100, 1024], [19, 4096], [64, 4096]];
  for (const type of WEIGHT_TYPES) {
    for (const [rows, cols] of shapes) {
      for (const nTok of [1, 7]) cases.push(matmulCase(type, rows, cols, nTok));
    }
    // cols that are no whole block: only the float types allow them
    if (type === DType.F32 || type === DType.F16 || type === DType.BF16) {
      for (const nTok of [1, 7]) cases.push(matmulCase(type, 7, 50, nTok));
    }
  }
  for (const type of WEIGHT_TYPES) {
    cases.push(embedCase(type, 37, 64), embedCase(type, 11, 4096));
  }
  cases.push(
    rmsnormCase(64, 1, 1e-5),
    rmsnormCase(4096, 7, 1e-6),
    rmsnormCase(50, 3, 1e-5),
  );
  cases.push(
    ropeCase(64, 64, 4, 1, 37, 10000),
    ropeCase(128, 128, 8, 7, 0, 10000),
    ropeCase(128, 64, 2, 5, 1000, 1e6),
    ropeCase(64, 32, 3, 7, 5, 10000),
  );
  cases.push(
    attentionCase(1, 9, 8, 2, 64),
    attentionCase(1, 30, 4, 4, 128),
    attentionCase(7, 0, 8, 2, 128),
    attentionCase(5, 11, 4, 4, 64),
    attentionCase(6, 3, 4, 1, 64),
    attentionCase(1, 40, 16, 2, 256),
    attentionCase(1, 70, 4, 2, 32),
  );
  cases.push(addCase(1, false), addCase(4096, false), addCase(1000, true));
  for (const kind of ["swiglu", "reglu", "drelu"] as const) {
    cases.push(gluCase(kind, 1000), gluCase(kind, 4097));
  }
  cases.push(copyCase(100, 3, 17), copyCase(4096, 0, 0));
  cases.push(...sparseCases());
  return cases;
}

/** Run one case on `backend` and on `reference`; throws describing the worst element. */
export function runCase(c: ConformanceCase, backend: Backend, reference: Backend): void {
  const want = c.op(reference);
  const got = c.op(backend);
  if (got.length !== want.length) {
    throw new Error(`${c.name}: output has ${got.length} elements, reference ${want.length}`);
  }
  let scale = c.minScale ?? 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const err = Number.isNaN(d) ? Infinity : d;
    if (err > worst) [worst, at] = [err, i];
  }
  const rel = worst / (scale || 1);
  if (rel > c.tolerance) {
    throw new Error(
      `${c.name}: element ${at} is ${got[at]}, reference ${want[at]}; max |Δ| ${worst} is ` +
        `${rel.toExponential(2)} of max |ref| ${scale}, tolerance ${c.tolerance}`,
    );
  }
}

/**
 * Names of the cases `backend` fails, each with its error message. Sparse cases are left out
 * for a backend without the sparse ops.
 */
export function failures(backend: Backend, reference: Backend): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of conformanceCases()) {
    if (c.sparse && !hasSparseOps(backend)) continue;
    try {
      runCase(c, backend, reference);
    } catch (err) {
      out.set(c.name, (err as Error).message);
    }
  }
  return out;
}

/**
 * Register the suite for the registered backend `backendName`: one test with a step per case,
 * ignored (with the probe's reason in its name) when the backend cannot run here.
 */
export async function conformance(backendName: string): Promise<void> {
  const found = (await probeAll()).find((p) => p.name === backendName);
  const probe = found?.probe ?? { score: 0, reason: `"${backendName}" is not registered` };
  if (probe.score <= 0) {
    Deno.test({
      name: `conformance: ${backendName} skipped (${probe.reason})`,
      ignore: true,
      fn: () => {},
    });
    return;
  }
  Deno.test(`conformance: ${backendName} matches the reference backend`, async (t) => {
    const backend = (await chooseBackend(backendName)).backend;
    const reference = await referencePlugin.open();
    try {
      const sparse = hasSparseOps(backend);
      for (const c of conformanceCases()) {
        const skip = c.sparse && !sparse;
        await t.step({
          name: skip ? `${c.name} — skipped: no sparse FFN ops yet` : c.name,
          ignore: skip,
          fn: () => runCase(c, backend, reference),
        });
      }
    } finally {
      backend.close?.();
    }
  });
}
