import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { GGUFType, parseGGUF } from "../../core/gguf.ts";
import { encodeGGUF, meta } from "../../core/gguf_write.ts";
import { synthBytes } from "../../tools/synth.ts";
import { walk } from "./_gguf_walk.ts";

const SRC = "corrupt.gguf";
/** A small synthetic model with a general.alignment entry to patch. */
const MODEL = synthBytes({ nLayer: 1, nVocab: 300, nEmbd: 32, nFF: 64, alignment: 64 });
const W = walk(MODEL);
const DATA_START = Math.ceil(W.infoEnd / 64) * 64;

/** Parse must throw a plain Error (not a RangeError or TypeError) whose message matches. */
function expectCorrupt(bytes: Uint8Array, pattern: RegExp, label: string): void {
  let err: unknown;
  try {
    parseGGUF(bytes, SRC);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, `${label}: expected an Error, parse succeeded`);
  assert.equal(err.constructor, Error, `${label}: ${err.constructor.name}: ${err.message}`);
  assert.ok(
    err.message.startsWith(`${SRC}: `),
    `${label}: message lacks the source: ${err.message}`,
  );
  assert.match(err.message, pattern, label);
}

/** A copy of MODEL with `patch` applied through a DataView. */
function mutate(patch: (dv: DataView, b: Uint8Array) => void): Uint8Array {
  const b = MODEL.slice();
  patch(new DataView(b.buffer), b);
  return b;
}

const kv = (key: string) => W.kvs.find((k) => k.key === key)!;

Deno.test("parseGGUF() accepts the uncorrupted model", () => {
  assert.equal(parseGGUF(MODEL, SRC).tensors.size, W.infos.length);
});

Deno.test("parseGGUF() names the field when truncated at every header boundary", () => {
  const cuts: [number, RegExp][] = [
    [0, /magic/],
    [3, /magic/],
    [4, /version/],
    [8, /tensor count/],
    [16, /tensor count: count \d+ needs at least \d+ bytes/],
  ];
  for (const k of W.kvs) {
    cuts.push([k.start, /kv \d+ key length/]);
    cuts.push([k.start + 9, /kv \d+ key/]);
    cuts.push([k.typeAt, new RegExp(`kv "${k.key}" type`)]);
    cuts.push([k.valueAt, new RegExp(`kv "${k.key}"`)]);
    cuts.push([k.end - 1, new RegExp(`kv "${k.key}"`)]);
  }
  for (const t of W.infos) {
    cuts.push([t.start, /tensor info \d+ name length/]);
    cuts.push([t.start + 8, /tensor info \d+ name/]);
    cuts.push([t.nDimsAt, new RegExp(`tensor "${t.name}" n_dims`)]);
    cuts.push([t.dimsAt, new RegExp(`tensor "${t.name}" ne\\[0\\]`)]);
    cuts.push([t.typeAt, new RegExp(`tensor "${t.name}" type`)]);
    cuts.push([t.offsetAt, new RegExp(`tensor "${t.name}" offset`)]);
    cuts.push([t.end - 1, new RegExp(`tensor "${t.name}" offset`)]);
  }
  for (const [cut, field] of cuts) {
    // the counts are checked first against all that remains, so short files fail there
    let pattern = field;
    if (cut >= 16 && cut - 16 < W.infos.length * 32) pattern = /tensor count: count \d+ needs/;
    else if (cut >= 24 && cut - 24 < W.kvs.length * 13) pattern = /kv count: count \d+ needs/;
    expectCorrupt(MODEL.subarray(0, cut), pattern, `cut at ${cut}`);
    assert.match(expectMessage(MODEL.subarray(0, cut)), /truncated|expected "GGUF"/, `cut ${cut}`);
  }
});

function expectMessage(bytes: Uint8Array): string {
  try {
    parseGGUF(bytes, SRC);
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

Deno.test("parseGGUF() names the tensor when truncated in the padding or the data", () => {
  const first = W.infos[0];
  const last = W.infos.at(-1)!;
  const lastEnd = DATA_START + last.offset +
    parseGGUF(MODEL, SRC).tensors.get(last.name)!.data.length;
  const cuts = [W.infoEnd, DATA_START - 1, DATA_START, DATA_START + 1, lastEnd - 1];
  for (const t of W.infos) cuts.push(DATA_START + t.offset);
  for (const cut of cuts) {
    expectCorrupt(
      MODEL.subarray(0, cut),
      /tensor ".+" data: \d+ bytes at data offset \d+ .* run past the end/,
      `cut ${cut}`,
    );
  }
  // a cut inside the first tensor names that tensor (it is the first whose data is checked)
  expectCorrupt(
    MODEL.subarray(0, DATA_START + 1),
    new RegExp(`tensor "${first.name}" data`),
    "first",
  );
  // the final tensor's own padding is optional
  assert.equal(parseGGUF(MODEL.subarray(0, lastEnd), SRC).tensors.size, W.infos.length);
});

Deno.test("parseGGUF() refuses a bad magic or version", () => {
  expectCorrupt(
    mutate((_, b) => b.set([0x47, 0x47, 0x55, 0x58])),
    /magic: expected "GGUF" or "PWRI", found "GGUX"/,
    "magic",
  );
  expectCorrupt(
    mutate((dv) => dv.setUint32(4, 1, true)),
    /version: GGUF v1 is not supported/,
    "v1",
  );
  expectCorrupt(
    mutate((dv) => dv.setUint32(4, 4, true)),
    /version: unknown version 4 \(expected 2 or 3\)/,
    "v4",
  );
  expectCorrupt(mutate((dv) => dv.setUint32(4, 3, false)), /big-endian/, "big-endian");
});

Deno.test("parseGGUF() fails fast on huge or shifted counts", () => {
  const huge = 2n ** 60n;
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(8, huge, true)),
    /tensor count: value 2\^60 is too large/,
    "tensors 2^60",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(8, 2n ** 40n, true)),
    /tensor count: count 1099511627776 needs at least/,
    "tensors 2^40",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(16, 2n ** 40n, true)),
    /kv count: count \d+ needs at least/,
    "kvs 2^40",
  );
  const nT = BigInt(W.infos.length);
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(8, nT + 1n, true)),
    /tensor "" n_dims: 0 dimensions|tensor info \d+ name/,
    "tensors + 1",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(16, BigInt(W.kvs.length + 1), true)),
    /kv|tensor/,
    "kvs + 1",
  );
});

Deno.test("parseGGUF() checks string and array lengths before using them", () => {
  const key0 = W.kvs[0];
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(key0.start, 2n ** 40n, true)),
    /kv 0 key length: count \d+ needs at least/,
    "key length",
  );
  const tokens = kv("tokenizer.ggml.tokens");
  const lenAt = tokens.valueAt + 4;
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(lenAt, 2n ** 60n, true)),
    /kv "tokenizer\.ggml\.tokens" array length: value 2\^60 is too large/,
    "array 2^60",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(lenAt, 2n ** 50n, true)),
    /kv "tokenizer\.ggml\.tokens" array length: count \d+ needs at least/,
    "array 2^50",
  );
  const str5 = tokens.valueAt + 12 + 8 * 5 +
    ["<unk>", "<s>", "</s>", "<0x00>", "<0x01>"].join("").length;
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(str5, 2n ** 33n, true)),
    /kv "tokenizer\.ggml\.tokens"\[5\] length: count \d+ needs at least/,
    "string 2^33",
  );
  expectCorrupt(
    mutate((dv) => dv.setUint32(tokens.valueAt, 99, true)),
    /kv "tokenizer\.ggml\.tokens": unknown array element type 99/,
    "elem type",
  );
  expectCorrupt(
    mutate((dv) => dv.setUint32(tokens.typeAt, 13, true)),
    /kv "tokenizer\.ggml\.tokens": unknown value type 13/,
    "value type",
  );
  const name0 = W.infos[0].start;
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(name0, 2n ** 62n, true)),
    /tensor info 0 name length: value 2\^62 is too large/,
    "name length",
  );
});

Deno.test("parseGGUF() refuses bad n_dims, dims, types and offsets by tensor name", () => {
  const t = W.infos[0]; // token_embd.weight [n_vocab, n_embd]
  assert.equal(t.name, "token_embd.weight");
  const n = `tensor "${t.name}"`;
  expectCorrupt(
    mutate((dv) => dv.setUint32(t.nDimsAt, 0, true)),
    new RegExp(`${n} n_dims: 0 dimensions \\(expected 1\\.\\.4\\)`),
    "n_dims 0",
  );
  expectCorrupt(
    mutate((dv) => dv.setUint32(t.nDimsAt, 5, true)),
    new RegExp(`${n} n_dims: 5 dimensions`),
    "n_dims 5",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(t.dimsAt, 0n, true)),
    new RegExp(`${n} ne\\[0\\]: dimension is 0`),
    "dim 0",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(t.dimsAt, 2n ** 64n - 1n, true)),
    new RegExp(`${n} ne\\[0\\]: value 2\\^63 is too large`),
    "dim -1",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(t.dimsAt, 2n ** 52n, true)),
    new RegExp(`${n} ne\\[1\\]: element count overflows 2\\^53`),
    "dims overflow",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(t.dimsAt, 2n ** 40n, true)),
    new RegExp(`${n} data: \\d+ bytes .* run past the end`),
    "dims too big",
  );
  expectCorrupt(
    mutate((dv) => dv.setUint32(t.typeAt, 12, true)),
    new RegExp(`${n} has type Q4_K, which turbosparse does not support`),
    "Q4_K",
  );
  expectCorrupt(
    mutate((dv) => dv.setUint32(t.typeAt, 999, true)),
    new RegExp(`${n} has type type#999`),
    "type 999",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(t.offsetAt, BigInt(t.offset + 1), true)),
    new RegExp(`${n} offset: \\d+ is not a multiple of the alignment 64`),
    "offset +1",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(t.offsetAt, 2n ** 40n, true)),
    new RegExp(`${n} data: .* run past the end of the file`),
    "offset far",
  );
  expectCorrupt(
    mutate((dv) => dv.setBigUint64(t.offsetAt, 2n ** 63n, true)),
    new RegExp(`${n} offset: value 2\\^63 is too large`),
    "offset 2^63",
  );
});

Deno.test("parseGGUF() refuses quantised rows that are not whole blocks", () => {
  const q = encodeGGUF([], [{
    spec: { name: "q", type: DType.Q8_0, shape: [2, 32] },
    data: new Uint8Array(68),
  }]);
  const dv = new DataView(q.buffer);
  dv.setBigUint64(walk(q).infos[0].dimsAt, 33n, true);
  expectCorrupt(
    q,
    /tensor "q" shape \[2, 33\]: Q8_0 rows need a multiple of 32 elements, got 33/,
    "Q8_0 33",
  );
});

Deno.test("parseGGUF() refuses a bad general.alignment", () => {
  const a = kv("general.alignment");
  for (const bad of [0, 3, 48, 2 ** 31]) {
    expectCorrupt(
      mutate((dv) => dv.setUint32(a.valueAt, bad, true)),
      new RegExp(`kv "general\\.alignment": ${bad} is not a power of two`),
      `alignment ${bad}`,
    );
  }
  expectCorrupt(
    mutate((dv) => dv.setUint32(a.typeAt, GGUFType.FLOAT32, true)),
    /general\.alignment/,
    "f32 alignment",
  );
  // 32 is valid but moves the data section: the 64-aligned offsets no longer line up with the file
  const moved = mutate((dv) => dv.setUint32(a.valueAt, 32, true));
  assert.doesNotThrow(() => {
    try {
      parseGGUF(moved, SRC);
    } catch (e) {
      assert.equal((e as Error).constructor, Error);
    }
  });
});

Deno.test("parseGGUF() refuses duplicate keys and tensor names", () => {
  const spec = (name: string) => ({
    spec: { name, type: DType.F32, shape: [8] },
    data: new Uint8Array(32),
  });
  const dupKey = encodeGGUF([meta.u32("k.a", 1), meta.u32("k.b", 2)], []);
  dupKey[walk(dupKey).kvs[1].typeAt - 1] = "a".charCodeAt(0);
  expectCorrupt(dupKey, /kv 1 key "k\.a": duplicate metadata key/, "dup key");
  const dupName = encodeGGUF([], [spec("t.a"), spec("t.b")]);
  dupName[walk(dupName).infos[1].nDimsAt - 1] = "a".charCodeAt(0);
  expectCorrupt(dupName, /tensor "t\.a": duplicate tensor name/, "dup tensor");
});

Deno.test("parseGGUF() refuses arrays nested past its depth limit", () => {
  // kv "deep": ARRAY of ARRAY of ... 100 levels, each holding one element
  const depth = 100;
  const b = encodeGGUF([meta.arr("deep", GGUFType.UINT8, [])], []);
  const k = walk(b).kvs[0];
  const out = new Uint8Array(k.valueAt + depth * 12 + 64);
  out.set(b.subarray(0, k.valueAt));
  const dv = new DataView(out.buffer);
  for (let i = 0; i < depth; i++) {
    dv.setUint32(k.valueAt + i * 12, GGUFType.ARRAY, true);
    dv.setBigUint64(k.valueAt + i * 12 + 4, 1n, true);
  }
  expectCorrupt(out, /kv "deep"(\[0\])+: arrays nest deeper than 8/, "deep");
});

Deno.test("parseGGUF() throws only plain Errors on seeded random header corruption", () => {
  let x = 12345;
  const rand = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  let failures = 0;
  for (let i = 0; i < 400; i++) {
    const b = MODEL.slice();
    const flips = 1 + Math.floor(rand() * 4);
    for (let f = 0; f < flips; f++) b[Math.floor(rand() * W.infoEnd)] = Math.floor(rand() * 256);
    try {
      parseGGUF(b, SRC);
    } catch (e) {
      failures++;
      assert.equal((e as Error).constructor, Error, `mutation ${i}: ${(e as Error).message}`);
      assert.ok(
        (e as Error).message.startsWith(`${SRC}: `),
        `mutation ${i}: ${(e as Error).message}`,
      );
    }
  }
  assert.ok(failures > 0, "some mutations must be detected");
});
