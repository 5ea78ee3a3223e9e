import assert from "node:assert/strict";
import type { Buf, IndexBuf, Weight } from "../../core/backend.ts";
import { DType, dtypeName, f32ToF16, QK } from "../../core/dtype.ts";
import { dequantize, quantize } from "../../core/quant.ts";
import type { Tensor } from "../../core/tensor.ts";
import { plugin, RefBuf, ReferenceBackend, RefWeight } from "../../plugins/reference/mod.ts";
import { failures } from "../conformance.ts";

const be = new ReferenceBackend();

/** A tensor of `type` holding `values` (quantised as the GGUF writer would). */
function tensor(
  name: string,
  type: DType,
  shape: number[],
  values: number[] | Float32Array,
): Tensor {
  return { name, type, shape, data: quantize(type, Float32Array.from(values)) };
}

function buf(values: number[] | Float32Array): Buf {
  const b = be.alloc(values.length);
  be.write(b, Float32Array.from(values));
  return b;
}

function assertClose(actual: Float32Array, expected: number[], tol = 1e-6, what = "") {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    const ok = Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i]));
    assert.ok(ok, `${what}[${i}] = ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Deterministic values in [-1, 1): a small LCG, enough for test data. */
function randoms(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

Deno.test("plugin.probe() always scores 1", async () => {
  assert.deepEqual(await plugin.probe(), { score: 1, reason: "pure TypeScript, runs everywhere" });
  assert.equal((await plugin.open()).name, "reference");
});

Deno.test("weight() views the tensor bytes without copying", () => {
  const t = tensor("w", DType.Q8_0, [3, 64], randoms(192, 1));
  const w = be.weight(t) as RefWeight;
  assert.equal(w.data, t.data);
  assert.deepEqual([w.rows, w.cols, w.rowBytes], [3, 64, 68]);
  assert.throws(() => be.weight({ ...t, data: t.data.subarray(1) }), /w.*needs 204 bytes/);
});

Deno.test("matmul() computes a 2x3 product by hand", () => {
  const w = be.weight(tensor("w", DType.F32, [2, 3], [1, 2, 3, 4, 5, 6]));
  const out = be.alloc(4);
  be.matmul(out, w, buf([1, 0, -1, 2, 1, 0]), 2);
  // token 0: [1-3, 4-6]; token 1: [2+2, 8+5]
  assert.deepEqual(Array.from(be.read(out)), [-2, -2, 4, 13]);
});

Deno.test("matmul() reads a hand-built Q4_0 block with the -8 offset and nibble order", () => {
  const block = new Uint8Array(2 + QK / 2);
  new DataView(block.buffer).setUint16(0, f32ToF16(0.5), true);
  block.fill(0x9f, 2); // low nibble 15 -> (15-8)*0.5 = 3.5 (values 0..15); high 9 -> 0.5 (16..31)
  const w = be.weight({ name: "q4", type: DType.Q4_0, shape: [1, QK], data: block });
  const x = new Float32Array(2 * QK);
  x.fill(1, 0, QK / 2); // token 0 sums the low half only
  x.fill(1, QK); // token 1 sums everything
  const out = be.alloc(2);
  be.matmul(out, w, buf(x), 2);
  assert.deepEqual(Array.from(be.read(out)), [16 * 3.5, 16 * 3.5 + 16 * 0.5]);
});

Deno.test("matmul() reads a hand-built Q8_0 block as scale times int8", () => {
  const block = new Uint8Array(2 + QK);
  const dv = new DataView(block.buffer);
  dv.setUint16(0, f32ToF16(0.25), true);
  for (let j = 0; j < QK; j++) dv.setInt8(2 + j, j - 16);
  const w = be.weight({ name: "q8", type: DType.Q8_0, shape: [1, QK], data: block });
  const x = new Float32Array(QK).fill(1);
  x[0] = 2; // value 0 is 0.25 * -16 = -4, counted twice
  const out = be.alloc(1);
  be.matmul(out, w, buf(x), 1);
  assert.equal(be.read(out)[0], 0.25 * (496 - 512) - 4);
});

for (const type of [DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0]) {
  Deno.test(`matmul() on ${dtypeName(type)} equals F32 matmul of the dequantised weights`, () => {
    const rows = 5;
    const cols = 96;
    const t = tensor("w", type, [rows, cols], randoms(rows * cols, 7));
    const deq = new Float32Array(rows * cols);
    dequantize(type, t.data, 0, rows * cols, deq);
    const x = buf(randoms(3 * cols, 8));
    const got = be.alloc(3 * rows);
    const want = be.alloc(3 * rows);
    be.matmul(got, be.weight(t), x, 3);
    be.matmul(want, be.weight(tensor("w32", DType.F32, [rows, cols], deq)), x, 3);
    assert.deepEqual(be.read(got), be.read(want));
    // and the quantised weights are close to the originals, so the product is not trivial
    assert.ok(be.read(got).some((v) => Math.abs(v) > 0.5));
  });
}

Deno.test("quantize() then dequantize() stays within Q8_0 and Q4_0 error bounds", () => {
  const x = randoms(QK * 64, 3);
  for (let b = 0; b < 64; b += 5) x[b * QK + 3] *= 20; // some blocks with an outlier
  for (const [type, steps] of [[DType.Q8_0, 127], [DType.Q4_0, 8]] as const) {
    const y = new Float32Array(x.length);
    dequantize(type, quantize(type, x), 0, x.length, y);
    for (let b = 0; b < 64; b++) {
      let amax = 0;
      for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
      const d = amax / steps;
      // Q8_0 rounds to the nearest step; Q4_0 may clamp the far side by a whole step.
      // The scale is stored as f16, adding up to steps * d * 2^-11 more.
      const bound = (type === DType.Q8_0 ? 0.5 : 1) * d + steps * d * 2 ** -11;
      for (let j = 0; j < QK; j++) {
        const err = Math.abs(y[b * QK + j] - x[b * QK + j]);
        assert.ok(err <= bound, `${dtypeName(type)} block ${b}[${j}]: error ${err} > ${bound}`);
      }
    }
  }
});

Deno.test("quantize() rounds Q8_0 in f32 as llama.cpp does", () => {
  // In f32, 10.728654 · (1 / (11.796875 / 127)) is exactly 115.5, which rounds away to 116;
  // in doubles it is 115.4999986 and would round to 115.
  const x = new Float32Array(QK);
  x[0] = 11.796875;
  x[1] = 10.728653907775879;
  const q = quantize(DType.Q8_0, x);
  assert.equal(new DataView(q.buffer).getInt8(2 + 1), 116);
  assert.equal(new DataView(q.buffer).getInt8(2 + 0), 127);
});

Deno.test("embed() copies rows of a hand-built Q8_0 table", () => {
  const vocab = 4;
  const data = new Uint8Array(vocab * (2 + QK));
  const dv = new DataView(data.buffer);
  for (let r = 0; r < vocab; r++) {
    dv.setUint16(r * (2 + QK), f32ToF16(0.5), true);
    for (let j = 0; j < QK; j++) dv.setInt8(r * (2 + QK) + 2 + j, j - 16 + r);
  }
  const table = be.weight({ name: "tok_embd", type: DType.Q8_0, shape: [vocab, QK], data });
  const out = be.alloc(3 * QK);
  be.embed(out, table, Int32Array.from([2, 0, 2]));
  const got = be.read(out);
  for (const [t, r] of [[0, 2], [1, 0], [2, 2]]) {
    for (let j = 0; j < QK; j++) assert.equal(got[t * QK + j], 0.5 * (j - 16 + r));
  }
  assert.throws(() => be.embed(out, table, Int32Array.from([4])), /embed: token 4/);
});

Deno.test("embed() of every dtype equals the dequantised rows", () => {
  for (const type of [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.I32]) {
    const values = type === DType.I32
      ? randoms(6 * 64, 5).map((v) => Math.round(v * 100))
      : randoms(6 * 64, 5);
    const t = tensor("emb", type, [6, 64], values);
    const all = new Float32Array(6 * 64);
    dequantize(type, t.data, 0, all.length, all);
    const out = be.alloc(2 * 64);
    be.embed(out, be.weight(t), Int32Array.from([5, 1]));
    const want = [...all.subarray(5 * 64, 6 * 64), ...all.subarray(64, 128)];
    assert.deepEqual(Array.from(be.read(out)), want, dtypeName(type));
  }
});

Deno.test("rmsnorm() scales each token by its root mean square", () => {
  const w = be.weight(tensor("norm", DType.F32, [2], [1, 2]));
  const out = be.alloc(4);
  be.rmsnorm(out, buf([3, 4, 0, 2]), w, 2, 0);
  const r0 = Math.sqrt((9 + 16) / 2);
  const r1 = Math.sqrt(4 / 2);
  assertClose(be.read(out), [3 / r0, 8 / r0, 0, 4 / r1], 1e-6, "rmsnorm");
  // eps enters under the square root
  be.rmsnorm(out, buf([1, 1, 0, 0]), w, 1, 3);
  assertClose(be.read(out, 0, 2), [0.5, 1], 1e-6, "rmsnorm eps");
});

Deno.test("rope() rotates adjacent pairs of the first dim dims", () => {
  // headDim 6, dim 4: pairs (0,1) and (2,3) rotate; 4 and 5 pass through.
  const x = buf([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
  be.rope(x, 2, 1, 6, 1, { dim: 4, base: 10000 });
  const expected: number[] = [];
  for (const pos of [1, 2]) {
    const a0 = pos; // base^(-0/4) = 1
    const a1 = pos * 10000 ** (-2 / 4); // 0.01 per position
    expected.push(
      Math.cos(a0) - 2 * Math.sin(a0),
      Math.sin(a0) + 2 * Math.cos(a0),
      3 * Math.cos(a1) - 4 * Math.sin(a1),
      3 * Math.sin(a1) + 4 * Math.cos(a1),
      5,
      6,
    );
  }
  assertClose(be.read(x), expected, 1e-6, "rope");
});

Deno.test("rope() at position 0 is the identity and rotates every head alike", () => {
  const v = randoms(2 * 3 * 8, 11);
  const x = buf(v);
  be.rope(x, 2, 3, 8, 0, { dim: 8, base: 500 });
  const got = be.read(x);
  assert.deepEqual(Array.from(got.subarray(0, 24)), Array.from(v.subarray(0, 24)));
  const h0 = Array.from(got.subarray(24, 32)); // token 1, head 0 at pos 1
  const y = buf(v.subarray(24, 32));
  be.rope(y, 1, 1, 8, 1, { dim: 8, base: 500 });
  assert.deepEqual(Array.from(be.read(y)), h0);
  assert.throws(() => be.rope(x, 1, 1, 8, 0, { dim: 5, base: 1 }), /rope: dim 5/);
});

Deno.test("attention() with one KV position returns that value", () => {
  const out = be.alloc(2);
  const p = { nTok: 1, pos0: 0, nHead: 1, nKV: 1, headDim: 2, scale: 1 };
  be.attention(out, buf([3, -7]), buf([0.5, 2]), buf([4, 5]), p);
  assertClose(be.read(out), [4, 5], 1e-6, "attention");
});

Deno.test("attention() weighs two KV positions by softmax and stays causal", () => {
  const k = buf([1, 0, 0, 1]); // pos 0, pos 1
  const v = buf([1, 0, 0, 1]);
  const q = buf([2, 0, 2, 0]); // two query tokens at positions 0 and 1
  const out = be.alloc(4);
  be.attention(out, q, k, v, { nTok: 2, pos0: 0, nHead: 1, nKV: 1, headDim: 2, scale: 0.5 });
  const e = Math.E; // scores at pos 1: [2·0.5, 0]
  assertClose(be.read(out), [1, 0, e / (e + 1), 1 / (e + 1)], 1e-6, "attention");
  // decode of the second token alone (pos0 = 1) matches prefill row 1
  const one = be.alloc(2);
  be.attention(one, buf([2, 0]), k, v, {
    nTok: 1,
    pos0: 1,
    nHead: 1,
    nKV: 1,
    headDim: 2,
    scale: 0.5,
  });
  assertClose(be.read(one), [e / (e + 1), 1 / (e + 1)], 1e-6, "decode");
});

Deno.test("attention() maps query heads to KV heads in groups", () => {
  // nHead 4, nKV 2: heads 0,1 read KV head 0; heads 2,3 read KV head 1. One position.
  const out = be.alloc(8);
  const p = { nTok: 1, pos0: 0, nHead: 4, nKV: 2, headDim: 2, scale: 1 };
  be.attention(out, buf(randoms(8, 2)), buf(randoms(4, 3)), buf([1, 2, 3, 4]), p);
  assertClose(be.read(out), [1, 2, 1, 2, 3, 4, 3, 4], 1e-6, "gqa");
  assert.throws(
    () => be.attention(out, buf([1]), buf([1]), buf([1]), { ...p, nKV: 3 }),
    /multiple/,
  );
  assert.throws(() => be.attention(out, buf(randoms(8, 2)), buf([1]), buf([1]), p), /attention: k/);
});

Deno.test("attention() softmax stays finite for huge logits", () => {
  const out = be.alloc(2);
  const k = buf([1, 0, 0.999, 0]);
  const v = buf([10, 0, 0, 10]);
  be.attention(out, buf([1000, 0]), k, v, {
    nTok: 1,
    pos0: 1,
    nHead: 1,
    nKV: 1,
    headDim: 2,
    scale: 1,
  });
  const e = Math.E; // scores 1000 and 999
  assertClose(be.read(out), [10 * e / (e + 1), 10 / (e + 1)], 1e-5, "stable softmax");
});

Deno.test("glu() applies swiglu, reglu and drelu to negative values", () => {
  const gate = buf([-2, 0, 3, 2, -1000]);
  const up = buf([4, -5, -1, 3, 1]);
  const out = be.alloc(5);
  const silu = (x: number) => x / (1 + Math.exp(-x));
  be.glu(out, gate, up, 5, "swiglu");
  assertClose(be.read(out), [silu(-2) * 4, 0, -silu(3), silu(2) * 3, 0], 1e-6, "swiglu");
  be.glu(out, gate, up, 5, "reglu");
  assertClose(be.read(out), [0, 0, -3, 6, 0], 0, "reglu"); // relu(0)·-5 may be -0
  be.glu(out, gate, up, 5, "drelu");
  assertClose(be.read(out), [0, 0, 0, 6, 0], 0, "drelu");
});

Deno.test("add() sums elementwise and allows out to alias a", () => {
  const a = buf([1, 2, 3]);
  be.add(a, a, buf([10, 20, 30]), 2);
  assert.deepEqual(Array.from(be.read(a)), [11, 22, 3]);
  assert.throws(() => be.add(a, a, buf([1]), 2), /add: b has 1 elements, needs 2/);
});

Deno.test("copy(), write() and read() honour offsets", () => {
  const a = be.alloc(6);
  be.write(a, Float32Array.from([1, 2, 3]), 2);
  assert.deepEqual(Array.from(be.read(a)), [0, 0, 1, 2, 3, 0]);
  assert.deepEqual(Array.from(be.read(a, 3, 2)), [2, 3]);
  const b = be.alloc(4);
  be.copy(b, 1, a, 2, 3);
  assert.deepEqual(Array.from(be.read(b)), [0, 1, 2, 3]);
  be.copy(a, 3, a, 2, 3); // overlapping, like memmove
  assert.deepEqual(Array.from(be.read(a)), [0, 0, 1, 1, 2, 3]);
  assert.throws(() => be.write(a, new Float32Array(3), 4), /write: dst has 6 elements, needs 7/);
  assert.throws(() => be.copy(b, 2, a, 0, 3), /copy: dst/);
});

Deno.test("matmul() names the op when a buffer is too small", () => {
  const w = be.weight(tensor("w", DType.F32, [2, 3], [1, 2, 3, 4, 5, 6]));
  assert.throws(() => be.matmul(be.alloc(3), w, buf([1, 2, 3, 4, 5, 6]), 2), /matmul: out/);
  assert.throws(() => be.matmul(be.alloc(4), w, buf([1, 2, 3]), 2), /matmul: x/);
  const x = buf([1, 2, 3]);
  assert.throws(() => be.matmul(x, w, x, 1), /alias/);
  const i32 = be.weight(tensor("ids", DType.I32, [1, 3], [1, 2, 3]));
  assert.throws(() => be.matmul(be.alloc(1), i32, x, 1), /I32/);
});

// Sparse FFN and MoE ops

function index(ids: number[]) {
  const idx = be.allocIndex(16);
  be.writeIndex(idx, Int32Array.from(ids));
  return idx;
}

Deno.test("select() lists ids with score ≥ threshold in order, skipping NaN", () => {
  const idx = be.allocIndex(8);
  be.select(idx, buf([9, 0.5, 0.2, 0.5, NaN, 1, -3, 0.7]), 1, 6, 0.5);
  assert.deepEqual([...be.readIndex(idx)], [0, 2, 4]); // scores 0.5, 0.5, 1 at offset 1
  be.select(idx, buf([0, 0]), 0, 2, 1);
  assert.deepEqual([...be.readIndex(idx)], []);
  assert.throws(() => be.select(be.allocIndex(2), buf([1, 1, 1]), 0, 3, 0), /exceeds capacity 2/);
});

Deno.test("writeIndex() refuses ids that do not ascend or overflow the list", () => {
  assert.throws(() => be.writeIndex(be.allocIndex(4), Int32Array.from([2, 1])), /must ascend/);
  assert.throws(() => be.writeIndex(be.allocIndex(1), Int32Array.from([0, 1])), /capacity 1/);
});

Deno.test("unary() computes relu, |silu| and nonzero", () => {
  const out = be.alloc(3);
  be.unary(out, buf([-2, 0, 3]), 3, "relu");
  assertClose(be.read(out), [0, 0, 3]);
  be.unary(out, buf([-2, 0, 3]), 3, "abs_silu");
  assertClose(be.read(out), [2 / (1 + Math.exp(2)), 0, 3 / (1 + Math.exp(-3))]);
  be.unary(out, buf([-2, 0, 3]), 3, "nonzero");
  assertClose(be.read(out), [1, 0, 1]);
});

Deno.test("gluSparse() and downSparse() compute a 3-neuron dReLU FFN by hand", () => {
  // gate, up, downT: [3, 2]; x = [1, 2] at offset 2
  const gate = be.weight(tensor("g", DType.F32, [3, 2], [1, 0, -1, 0, 0, 1]));
  const up = be.weight(tensor("u", DType.F32, [3, 2], [1, 1, 1, 1, 0, -1]));
  const downT = be.weight(tensor("d", DType.F32, [3, 2], [10, 20, 30, 40, 50, 60]));
  const x = buf([7, 7, 1, 2]);
  const act = be.alloc(3);
  const idx = index([0, 1, 2]);
  be.gluSparse(act, gate, up, x, 2, idx, "drelu");
  // neuron 0: relu(1)·relu(3) = 3; neuron 1: relu(-1)·… = 0; neuron 2: relu(2)·relu(-2) = 0
  assertClose(be.read(act), [3, 0, 0]);
  const out = buf([5, 5, 5]);
  be.downSparse(out, 1, downT, act, idx);
  assertClose(be.read(out), [5, 30, 60]);
  // a list of only neuron 2 packs its activation first
  be.gluSparseGated(act, buf([0, 0, 4]), 0, up, x, 2, index([2]), "reglu");
  assertClose(be.read(act, 0, 1), [4 * -2]);
});

Deno.test("axpy() accumulates a scaled row at offsets", () => {
  const out = buf([1, 1, 1, 1]);
  be.axpy(out, 1, buf([9, 2, 4]), 1, 2, 0.5);
  assertClose(be.read(out), [1, 2, 3, 1]);
});

Deno.test("downSparse() names the neuron outside the weight", () => {
  const downT = be.weight(tensor("d", DType.F32, [2, 2], [1, 2, 3, 4]));
  assert.throws(
    () => be.downSparse(be.alloc(2), 0, downT, buf([1, 1]), index([0, 5])),
    /neuron 5 is outside \[0, 2\)/,
  );
});

/** select() with `>` for `≥`: drops neurons exactly at the threshold. */
class StrictSelectBackend extends ReferenceBackend {
  override select(idx: IndexBuf, score: Buf, offset: number, n: number, t: number): void {
    const s = (score as RefBuf).data.slice(offset, offset + n).map((
      v,
    ) => (v === t ? -Infinity : v));
    super.select(idx, buf(s), 0, n, t);
  }
}

/** downSparse() that adds into out instead of writing it. */
class AccumulatingDownBackend extends ReferenceBackend {
  override downSparse(out: Buf, o: number, w: Weight, act: Buf, idx: IndexBuf): void {
    const before = be.read(out);
    super.downSparse(out, o, w, act, idx);
    const after = (out as RefBuf).data;
    for (let j = o; j < o + w.shape[1]; j++) after[j] += before[j];
  }
}

for (
  const [bug, backend, caught] of [
    ["select() that drops ties", new StrictSelectBackend(), /^select\//],
    ["downSparse() that accumulates", new AccumulatingDownBackend(), /^downSparse /],
  ] as const
) {
  Deno.test(`conformance() sparse cases catch ${bug}`, () => {
    const failed = [...failures(backend, be).keys()];
    assert.ok(failed.length > 0, `no case failed for ${bug}`);
    for (const name of failed) assert.match(name, caught);
  });
}
