import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import {
  type GGUFFile,
  GGUFType,
  metaArray,
  metaBool,
  metaNumber,
  metaNumbers,
  metaString,
  metaStrings,
  parseGGUF,
} from "../../core/gguf.ts";
import { encodeGGUF, meta, type TensorSpec, writeGGUF } from "../../core/gguf_write.ts";
import { tensorBytes } from "../../core/tensor.ts";
import { walk } from "./_gguf_walk.ts";

/** One entry of every value type, with the value the reader must give back. */
const ALL_TYPES = [
  meta.u8("t.u8", 255),
  meta.i8("t.i8", -128),
  meta.u16("t.u16", 65535),
  meta.i16("t.i16", -32768),
  meta.u32("t.u32", 4294967295),
  meta.i32("t.i32", -2147483648),
  meta.f32("t.f32", 1.5),
  meta.f64("t.f64", Math.PI),
  meta.bool("t.true", true),
  meta.bool("t.false", false),
  meta.str("t.str", "héllo ▁wörld 🦙"),
  meta.str("t.empty", ""),
  meta.u64("t.u64", 2 ** 40),
  meta.u64("t.u64big", 2n ** 64n - 1n),
  meta.i64("t.i64", -(2 ** 50)),
  meta.i64("t.i64big", -(2n ** 63n)),
  meta.arr("t.arr_u8", GGUFType.UINT8, [0, 1, 255]),
  meta.arr("t.arr_i32", GGUFType.INT32, [-1, 0, 7]),
  meta.arr("t.arr_f32", GGUFType.FLOAT32, [0.5, -2.25]),
  meta.arr("t.arr_f64", GGUFType.FLOAT64, [1e-300]),
  meta.arr("t.arr_bool", GGUFType.BOOL, [true, false]),
  meta.arr("t.arr_str", GGUFType.STRING, ["a", "", "▁the", "🦙x"]),
  meta.arr("t.arr_u64", GGUFType.UINT64, [1, 2n ** 60n]),
  meta.arr("t.arr_empty", GGUFType.INT16, []),
  meta.arr("t.nested", GGUFType.ARRAY, [[1, 2], [], [3]], [GGUFType.UINT16]),
  meta.arr("t.nested2", GGUFType.ARRAY, [[["x"], ["y", "z"]]], [GGUFType.ARRAY, GGUFType.STRING]),
];

function tensorOf(name: string, type: DType, shape: number[], fill: number) {
  const spec: TensorSpec = { name, type, shape };
  const data = new Uint8Array(tensorBytes(type, shape)).map((_, i) => (i * 7 + fill) & 0xff);
  return { spec, data };
}

const TENSORS = [
  tensorOf("a.f32", DType.F32, [3, 5], 1),
  tensorOf("b.f16", DType.F16, [2, 3, 7], 2),
  tensorOf("c.bf16", DType.BF16, [9], 3),
  tensorOf("d.q8_0", DType.Q8_0, [4, 64], 4),
  tensorOf("e.q4_0", DType.Q4_0, [2, 2, 2, 32], 5),
  tensorOf("f.i32", DType.I32, [11], 6),
];

Deno.test("parseGGUF() round-trips every metadata value type, nested arrays included", () => {
  const file = parseGGUF(encodeGGUF(ALL_TYPES, []), "all.gguf");
  for (const e of ALL_TYPES) {
    assert.deepEqual(file.metadata.get(e.key), e.value, e.key);
    assert.equal(file.metadataTypes.get(e.key), e.type, e.key);
  }
  assert.equal(typeof file.metadata.get("t.u64"), "number");
  assert.equal(file.metadata.get("t.u64big"), 2n ** 64n - 1n);
  assert.equal(file.metadataArrayTypes?.get("t.arr_str"), GGUFType.STRING);
  assert.equal(file.metadataArrayTypes?.get("t.nested"), GGUFType.ARRAY);
  assert.deepEqual([...file.metadata.keys()], ALL_TYPES.map((e) => e.key));
});

Deno.test("parseGGUF() reads versions 2 and 3 and the PWRI magic", () => {
  for (const version of [2, 3] as const) {
    for (const magic of ["GGUF", "PWRI"] as const) {
      const file = parseGGUF(encodeGGUF(ALL_TYPES, TENSORS, { version, magic }), "v.gguf");
      assert.equal(file.version, version);
      assert.equal(file.magic, magic);
      assert.equal(file.tensors.size, TENSORS.length);
      assert.equal(file.metadata.get("t.str"), "héllo ▁wörld 🦙");
    }
  }
});

Deno.test("parseGGUF() places tensors on alignment 32 and 64 as views of the bytes", () => {
  for (const alignment of [32, 64]) {
    const bytes = encodeGGUF([meta.str("general.name", "x")], TENSORS, { alignment });
    const file = parseGGUF(bytes, "aligned.gguf");
    assert.equal(file.alignment, alignment);
    assert.equal(file.dataOffset % alignment, 0);
    assert.equal(file.metadata.has("general.alignment"), alignment !== 32);
    for (const t of TENSORS) {
      const got = file.tensors.get(t.spec.name)!;
      assert.equal(got.data.buffer, bytes.buffer, "zero-copy view");
      assert.equal((got.data.byteOffset - file.dataOffset) % alignment, 0);
      assert.deepEqual(got.data, t.data);
    }
  }
});

Deno.test("parseGGUF() gives each dtype its byte size and shape outermost first", () => {
  const file = parseGGUF(encodeGGUF([], TENSORS), "dtypes.gguf");
  const sizes: Record<string, number> = {
    "a.f32": 15 * 4,
    "b.f16": 42 * 2,
    "c.bf16": 9 * 2,
    "d.q8_0": 4 * 2 * 34,
    "e.q4_0": 8 * 18,
    "f.i32": 11 * 4,
  };
  for (const t of TENSORS) {
    const got = file.tensors.get(t.spec.name)!;
    assert.equal(got.type, t.spec.type);
    assert.deepEqual(got.shape, t.spec.shape);
    assert.equal(got.data.length, sizes[t.spec.name], t.spec.name);
  }
  // GGUF stores ne innermost first: b.f16 [2, 3, 7] is written as 7, 3, 2
  const bytes = encodeGGUF([], TENSORS);
  const info = walk(bytes).infos[1];
  const dv = new DataView(bytes.buffer);
  assert.equal(dv.getBigUint64(info.dimsAt, true), 7n);
  assert.equal(dv.getBigUint64(info.dimsAt + 16, true), 2n);
});

Deno.test("parseGGUF() refuses an unsupported tensor type by name", () => {
  const bytes = encodeGGUF([], [tensorOf("blk.0.ffn_up.weight", DType.F32, [256], 0)]);
  new DataView(bytes.buffer).setUint32(walk(bytes).infos[0].typeAt, 12, true); // Q4_K
  assert.throws(
    () => parseGGUF(bytes, "q4k.gguf"),
    {
      message:
        /^q4k\.gguf: tensor "blk\.0\.ffn_up\.weight" has type Q4_K, which turbosparse does not support \(supported: F32, F16, BF16, Q8_0, Q4_0, I32\)/,
    },
  );
});

Deno.test("parseGGUF() decodes a 32000-token vocabulary, invalid UTF-8 as U+FFFD", () => {
  const tokens = Array.from({ length: 32000 }, (_, i) => (i % 3 ? `▁w${i}` : `${i}🦙é`));
  const bytes = encodeGGUF([meta.arr("tokenizer.ggml.tokens", GGUFType.STRING, tokens)], []);
  assert.deepEqual(metaStrings(parseGGUF(bytes, "v.gguf"), "tokenizer.ggml.tokens"), tokens);
  // break the first byte of token 1 ("▁w1" starts with E2 96 81)
  const at = walk(bytes).kvs[0].valueAt + 12 + (8 + new TextEncoder().encode(tokens[0]).length) + 8;
  assert.equal(bytes[at], 0xe2);
  bytes[at] = 0xff;
  const got = metaStrings(parseGGUF(bytes, "v.gguf"), "tokenizer.ggml.tokens");
  assert.equal(got[1], "\uFFFD\uFFFD\uFFFDw1");
  assert.equal(got[0], tokens[0]);
  assert.equal(got[31999], tokens[31999]);
});

function small(): GGUFFile {
  return parseGGUF(
    encodeGGUF([
      meta.u32("llama.block_count", 2),
      meta.str("general.architecture", "llama"),
      meta.bool("tokenizer.ggml.add_bos_token", true),
      meta.arr("tokenizer.ggml.scores", GGUFType.FLOAT32, [0, -1]),
      meta.u64("big", 2n ** 60n),
    ], []),
    "small.gguf",
  );
}

Deno.test("metaNumber() and friends read typed values and fall back when given one", () => {
  const f = small();
  assert.equal(metaNumber(f, "llama.block_count"), 2);
  assert.equal(metaString(f, "general.architecture"), "llama");
  assert.equal(metaBool(f, "tokenizer.ggml.add_bos_token"), true);
  assert.deepEqual(metaNumbers(f, "tokenizer.ggml.scores"), new Float64Array([0, -1]));
  assert.deepEqual(metaArray(f, "tokenizer.ggml.scores"), [0, -1]);
  assert.equal(metaNumber(f, "llama.rope.freq_base", 10000), 10000);
});

Deno.test("metaNumber() and friends throw naming the key and file", () => {
  const f = small();
  assert.throws(() => metaNumber(f, "llama.context_length"), {
    message: 'missing metadata key "llama.context_length" in small.gguf',
  });
  assert.throws(
    () => metaNumber(f, "general.architecture"),
    /"general.architecture" in small\.gguf is a string, expected a number/,
  );
  assert.throws(() => metaString(f, "llama.block_count"), /is a number, expected a string/);
  assert.throws(() => metaStrings(f, "tokenizer.ggml.scores"), /expected an array of strings/);
  assert.throws(() => metaNumber(f, "big"), /"big" .* expected a number below 2\^53/);
});

Deno.test("encodeGGUF() refuses bad values, data sizes and duplicates", () => {
  const t = tensorOf("x", DType.F32, [4], 0);
  assert.throws(
    () => encodeGGUF([meta.u8("k", 256)], []),
    /metadata "k": expected an integer in 0\.\.255/,
  );
  assert.throws(
    () => encodeGGUF([meta.u32("k", 1), meta.u32("k", 2)], []),
    /duplicate metadata key "k"/,
  );
  assert.throws(() => encodeGGUF([meta.arr("k", 99, [1])], []), /array element type 99/);
  assert.throws(
    () => encodeGGUF([], [{ spec: t.spec, data: new Uint8Array(15) }]),
    /tensor "x" F32 \[4\]: data is 15 bytes, expected 16/,
  );
  assert.throws(() => encodeGGUF([], [t, t]), /duplicate tensor name "x"/);
  assert.throws(
    () =>
      encodeGGUF([], [{
        spec: { name: "q", type: DType.Q8_0, shape: [1] },
        data: new Uint8Array(34),
      }]),
    /tensor "q": Q8_0 rows need a multiple of 32/,
  );
  assert.throws(
    () => encodeGGUF([meta.u32("general.alignment", 64)], [], { alignment: 32 }),
    /disagrees/,
  );
  assert.throws(() => encodeGGUF([], [], { alignment: 48 }), /alignment 48 is not a power of two/);
});

Deno.test("writeGGUF() streams the same bytes as encodeGGUF() and reports progress", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    const entries = [meta.str("general.name", "stream"), ...ALL_TYPES];
    const progress: number[][] = [];
    await writeGGUF(
      path,
      entries,
      TENSORS.map((t) => t.spec),
      (_spec, i) => Promise.resolve(TENSORS[i].data),
      { alignment: 64 },
      (done, total) => progress.push([done, total]),
    );
    const expected = encodeGGUF(entries, TENSORS, { alignment: 64 });
    assert.deepEqual(await Deno.readFile(path), expected);
    assert.equal(progress.length, TENSORS.length + 1);
    assert.deepEqual(progress.at(-1), [expected.length, expected.length]);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] > progress[i - 1][0]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("writeGGUF() rejects produced data of the wrong size, naming the tensor", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await assert.rejects(
      writeGGUF(path, [], [TENSORS[0].spec], () => new Uint8Array(3)),
      /tensor "a\.f32" F32 \[3, 5\]: data is 3 bytes, expected 60/,
    );
  } finally {
    await Deno.remove(path);
  }
});
