/**
 * Checks shared by the native CPU plugins (cpu_scalar, cpu_x86, cpu_neon): every op against
 * `plugins/reference`, bitwise determinism across thread counts, decode == prefill per
 * row, and the argument errors. Quantised matmuls may quantise x to Q8 blocks, so their
 * bound is the worst case of that rounding: Σ_c |w_c| · amax(x block) / 254.
 *
 * @module
 */

import type { Backend, BackendPlugin } from "../../core/backend.ts";
import { DType, dtypeName } from "../../core/dtype.ts";
import { dequantize, quantize } from "../../core/quant.ts";
import type { Tensor } from "../../core/tensor.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";

/** Deterministic pseudo-random values in [-scale, scale). */
export function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

/** A tensor of `type` holding `values` encoded. */
export function tensor(name: string, type: DType, shape: number[], values: Float32Array): Tensor {
  return { name, type, shape, data: quantize(type, values) };
}

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function equalBits(a: Float32Array, b: Float32Array, what: string): void {
  assert(a.length === b.length, `${what}: lengths ${a.length} and ${b.length}`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    assert(ua[i] === ub[i], `${what}: element ${i} is ${a[i]} vs ${b[i]}`);
  }
}

function close(
  got: Float32Array,
  want: Float32Array,
  tol: (i: number) => number,
  what: string,
): void {
  assert(got.length === want.length, `${what}: lengths ${got.length} and ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    assert(
      err <= tol(i),
      `${what}: element ${i} is ${got[i]}, reference ${want[i]} (err ${err} > ${tol(i)})`,
    );
  }
}

function run(b: Backend, t: Tensor, x: Float32Array, nTok: number): Float32Array {
  const w = b.weight(t);
  const xb = b.alloc(x.length);
  b.write(xb, x);
  const out = b.alloc(nTok * t.shape[0]);
  b.matmul(out, w, xb, nTok);
  return b.read(out);
}

/** The tolerance of out[t, r] for a matmul of `w` (dequantised) by `x`. */
function matmulTol(
  type: DType,
  wf: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
  quantX: boolean,
) {
  return (i: number): number => {
    const t = Math.floor(i / rows), r = i % rows;
    let mag = 0, qerr = 0;
    for (let c = 0; c < cols; c++) mag += Math.abs(wf[r * cols + c] * x[t * cols + c]);
    const isQ = type === DType.Q8_0 || type === DType.Q4_0;
    if (quantX && isQ) {
      for (let b0 = 0; b0 < cols; b0 += 32) {
        let amax = 0, wsum = 0;
        for (let c = b0; c < b0 + 32; c++) {
          amax = Math.max(amax, Math.abs(x[t * cols + c]));
          wsum += Math.abs(wf[r * cols + c]);
        }
        qerr += wsum * amax / 254;
      }
    }
    return 1.001 * qerr + 3e-6 * mag + 1e-6;
  };
}

/** Register the shared tests of a native plugin; skipped with a reason when its probe is 0. */
export async function nativeSuite(
  plugin: BackendPlugin,
  opts: { quantisesX: boolean },
): Promise<void> {
  const probe = await plugin.probe();
  const ignore = probe.score <= 0;
  const name = plugin.name;
  if (ignore) console.error(`${name}: skipped, ${probe.reason}`);
  const ref = new ReferenceBackend();
  const test = (label: string, fn: (b: Backend) => void | Promise<void>, threads = 2) =>
    Deno.test({
      name: `${name} ${label}`,
      ignore,
      async fn() {
        const b = await plugin.open({ threads });
        try {
          await fn(b);
        } finally {
          b.close?.();
        }
      },
    });

  const types = [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0];
  for (const type of types) {
    test(`matmul() ${dtypeName(type)} matches the reference for 1..7 tokens`, (b) => {
      for (const [rows, cols] of [[1, 32], [37, 64], [130, 320]]) {
        const t = tensor("w", type, [rows, cols], rand(rows * cols, rows + cols, 0.5));
        const wf = new Float32Array(rows * cols);
        dequantize(type, t.data, 0, rows * cols, wf);
        for (const nTok of [1, 2, 3, 7]) {
          const x = rand(nTok * cols, 7 * nTok + cols, 2);
          const want = run(ref, t, x, nTok);
          const got = run(b, t, x, nTok);
          close(
            got,
            want,
            matmulTol(type, wf, x, rows, cols, opts.quantisesX),
            `${dtypeName(type)} [${rows}, ${cols}] x${nTok}`,
          );
        }
      }
    });
  }

  for (const type of [DType.F32, DType.F16, DType.BF16]) {
    test(`matmul() ${dtypeName(type)} handles columns that are not a multiple of 32`, (b) => {
      const t = tensor("w", type, [5, 45], rand(225, 3));
      const x = rand(3 * 45, 4);
      const wf = new Float32Array(225);
      dequantize(type, t.data, 0, 225, wf);
      close(run(b, t, x, 3), run(ref, t, x, 3), matmulTol(type, wf, x, 5, 45, false), "odd cols");
    });
  }

  for (const type of types) {
    test(`matmul() ${dtypeName(type)} gives the same bits for any thread count and in prefill`, async (b) => {
      const rows = 203, cols = 256, nTok = 21;
      const t = tensor("w", type, [rows, cols], rand(rows * cols, 11));
      const x = rand(nTok * cols, 12);
      const base = run(b, t, x, nTok);
      for (const threads of [1, 3]) {
        const other = await plugin.open({ threads });
        try {
          equalBits(run(other, t, x, nTok), base, `${threads} threads`);
        } finally {
          other.close?.();
        }
      }
      const one = new Float32Array(nTok * rows);
      for (let i = 0; i < nTok; i++) {
        one.set(run(b, t, x.subarray(i * cols, (i + 1) * cols), 1), i * rows);
      }
      equalBits(one, base, "token by token vs batch");
    });
  }

  for (const type of types) {
    test(`embed() ${dtypeName(type)} decodes the rows of the tokens`, (b) => {
      const t = tensor("tok_embd", type, [10, 64], rand(640, 5));
      const tokens = new Int32Array([3, 0, 9, 3]);
      const out = b.alloc(4 * 64), want = ref.alloc(4 * 64);
      b.embed(out, b.weight(t), tokens);
      ref.embed(want, ref.weight(t), tokens);
      close(b.read(out), ref.read(want), () => 0, "embed");
    });
  }

  test("embed() rejects a token outside the table", (b) => {
    const t = tensor("tok_embd", DType.F32, [4, 8], rand(32, 1));
    let msg = "";
    try {
      b.embed(b.alloc(8), b.weight(t), new Int32Array([4]));
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.includes("tok_embd") && msg.includes("token 4"), `unexpected error "${msg}"`);
  });

  test("rmsnorm(), rope(), add(), glu() and copy() match the reference", (b) => {
    const n = 96, nTok = 3;
    const pair = (v: Float32Array) => {
      const x = b.alloc(v.length), y = ref.alloc(v.length);
      b.write(x, v);
      ref.write(y, v);
      return [x, y] as const;
    };
    const tol = (v: Float32Array, rel: number) => (i: number) => rel * Math.max(1, Math.abs(v[i]));
    const g = tensor("norm", DType.F32, [n], rand(n, 2));
    const [x, xr] = pair(rand(nTok * n, 3, 3));
    b.rmsnorm(x, x, b.weight(g), nTok, 1e-5);
    ref.rmsnorm(xr, xr, ref.weight(g), nTok, 1e-5);
    close(b.read(x), ref.read(xr), tol(ref.read(xr), 2e-6), "rmsnorm in place");
    const [q, qr] = pair(rand(nTok * 4 * 24, 4));
    b.rope(q, nTok, 4, 24, 1000, { dim: 16, base: 10000 });
    ref.rope(qr, nTok, 4, 24, 1000, { dim: 16, base: 10000 });
    close(b.read(q), ref.read(qr), tol(ref.read(qr), 2e-6), "rope");
    const [a, ar] = pair(rand(n, 5)), [c, cr] = pair(rand(n, 6));
    b.add(a, a, c, n);
    ref.add(ar, ar, cr, n);
    close(b.read(a), ref.read(ar), () => 0, "add aliasing a");
    for (const kind of ["swiglu", "reglu", "drelu"] as const) {
      const [o, or] = pair(new Float32Array(n));
      b.glu(o, a, c, n, kind);
      ref.glu(or, ar, cr, n, kind);
      close(b.read(o), ref.read(or), tol(ref.read(or), 1e-6), kind);
    }
    b.copy(a, 10, a, 0, 50);
    ref.copy(ar, 10, ar, 0, 50);
    close(b.read(a), ref.read(ar), () => 0, "overlapping copy");
  });

  test("attention() matches the reference in decode and prefill (GQA, out aliasing q)", (b) => {
    const nHead = 8, nKV = 2, hd = 64, nCtx = 40;
    const k = rand(nCtx * nKV * hd, 21), v = rand(nCtx * nKV * hd, 22);
    for (const [nTok, pos0] of [[1, 0], [1, 33], [9, 0], [6, 17]]) {
      const q = rand(nTok * nHead * hd, 23 + nTok, 3);
      const a = { nTok, pos0, nHead, nKV, headDim: hd, scale: 1 / Math.sqrt(hd) };
      const res = [b, ref].map((be) => {
        const qb = be.alloc(q.length), kb = be.alloc(k.length), vb = be.alloc(v.length);
        be.write(qb, q);
        be.write(kb, k);
        be.write(vb, v);
        be.attention(qb, qb, kb, vb, a);
        return be.read(qb);
      });
      close(res[0], res[1], () => 2e-6, `attention nTok ${nTok} pos0 ${pos0}`);
    }
  });

  test("matmul() rejects short buffers and aliasing", (b) => {
    const w = b.weight(tensor("blk.0.ffn_up", DType.F16, [8, 32], rand(256, 1)));
    const x = b.alloc(32);
    const errs: string[] = [];
    for (const f of [() => b.matmul(b.alloc(7), w, x, 1), () => b.matmul(x, w, x, 1)]) {
      try {
        f();
      } catch (e) {
        errs.push((e as Error).message);
      }
    }
    assert(errs.length === 2, `expected 2 errors, got ${errs.length}`);
    assert(errs[0].includes("out has 7"), errs[0]);
  });
}
