import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import {
  type GGUFFile,
  metaBool,
  metaNumber,
  metaNumbers,
  metaString,
  metaStrings,
  parseGGUF,
} from "../../core/gguf.ts";
import { dequantize } from "../../core/quant.ts";
import { numel } from "../../core/tensor.ts";
import { synthBytes, synthModel, type SynthOptions } from "../../tools/synth.ts";

const SMALL: SynthOptions = {
  nEmbd: 64,
  nFF: 96,
  nLayer: 2,
  nHead: 4,
  nKV: 2,
  nVocab: 320,
  seed: 7,
};

function load(o: SynthOptions): GGUFFile {
  return parseGGUF(synthBytes(o), "synth");
}

function values(file: GGUFFile, name: string): Float32Array {
  const t = file.tensors.get(name)!;
  const out = new Float32Array(numel(t.shape));
  dequantize(t.type, t.data, 0, out.length, out);
  return out;
}

Deno.test("synthBytes() writes llama.cpp's tensor names, shapes and metadata", () => {
  const f = load(SMALL);
  const shapes: Record<string, number[]> = {
    "token_embd.weight": [320, 64],
    "output_norm.weight": [64],
    "output.weight": [320, 64],
  };
  for (let l = 0; l < 2; l++) {
    Object.assign(shapes, {
      [`blk.${l}.attn_norm.weight`]: [64],
      [`blk.${l}.attn_q.weight`]: [64, 64],
      [`blk.${l}.attn_k.weight`]: [32, 64],
      [`blk.${l}.attn_v.weight`]: [32, 64],
      [`blk.${l}.attn_output.weight`]: [64, 64],
      [`blk.${l}.ffn_norm.weight`]: [64],
      [`blk.${l}.ffn_gate.weight`]: [96, 64],
      [`blk.${l}.ffn_up.weight`]: [96, 64],
      [`blk.${l}.ffn_down.weight`]: [64, 96],
    });
  }
  assert.deepEqual(new Set(f.tensors.keys()), new Set(Object.keys(shapes)));
  for (const [name, shape] of Object.entries(shapes)) {
    const t = f.tensors.get(name)!;
    assert.deepEqual([...t.shape], shape, name);
    assert.equal(t.type, shape.length === 1 ? DType.F32 : DType.F16, name);
  }
  assert.equal(metaString(f, "general.architecture"), "llama");
  assert.equal(metaNumber(f, "llama.embedding_length"), 64);
  assert.equal(metaNumber(f, "llama.feed_forward_length"), 96);
  assert.equal(metaNumber(f, "llama.block_count"), 2);
  assert.equal(metaNumber(f, "llama.attention.head_count"), 4);
  assert.equal(metaNumber(f, "llama.attention.head_count_kv"), 2);
  assert.equal(metaNumber(f, "llama.context_length"), 128);
  assert.equal(metaNumber(f, "llama.rope.freq_base"), 10000);
  assert.equal(metaNumber(f, "llama.rope.dimension_count"), 16);
  assert.ok(Math.abs(metaNumber(f, "llama.attention.layer_norm_rms_epsilon") - 1e-5) < 1e-10);
  assert.equal(metaNumber(f, "llama.vocab_size"), 320);
});

Deno.test("synthBytes() writes a SentencePiece vocabulary whose words merge", () => {
  const f = load(SMALL);
  const tokens = metaStrings(f, "tokenizer.ggml.tokens");
  const types = metaNumbers(f, "tokenizer.ggml.token_type");
  assert.equal(tokens.length, 320);
  assert.equal(metaNumbers(f, "tokenizer.ggml.scores").length, 320);
  assert.deepEqual(tokens.slice(0, 3), ["<unk>", "<s>", "</s>"]);
  assert.deepEqual([...types.slice(0, 4)], [2, 3, 3, 6]);
  assert.equal(tokens[3 + 0x0a], "<0x0A>");
  assert.equal(tokens[258], "<0xFF>");
  assert.equal(types[259], 1);
  assert.equal(metaString(f, "tokenizer.ggml.model"), "llama");
  assert.equal(metaNumber(f, "tokenizer.ggml.bos_token_id"), 1);
  assert.equal(metaNumber(f, "tokenizer.ggml.eos_token_id"), 2);
  assert.equal(metaNumber(f, "tokenizer.ggml.unknown_token_id"), 0);
  assert.equal(metaBool(f, "tokenizer.ggml.add_bos_token"), true);
  const big = metaStrings(load({ ...SMALL, nVocab: 32000, nLayer: 1 }), "tokenizer.ggml.tokens");
  assert.equal(new Set(big).size, 32000);
  for (const p of ["▁", "▁t", "▁th", "▁the", "▁h", "▁he", "▁hel", "▁hell", "▁hello", "a", "."]) {
    assert.ok(big.includes(p), p);
  }
});

Deno.test("synthBytes() is deterministic in its seed", () => {
  assert.deepEqual(synthBytes(SMALL), synthBytes(SMALL));
  const a = load(SMALL).tensors.get("blk.0.ffn_up.weight")!.data;
  const b = load({ ...SMALL, seed: 8 }).tensors.get("blk.0.ffn_up.weight")!.data;
  assert.notDeepEqual(a, b);
});

Deno.test("synthBytes() scales weights by 1/sqrt(fan_in) and keeps norms near 1", () => {
  const f = load(SMALL);
  const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  const up = values(f, "blk.0.ffn_up.weight");
  const down = values(f, "blk.0.ffn_down.weight");
  assert.ok(Math.abs(std(up) * Math.sqrt(64) - 1) < 0.1, `up std ${std(up)}`);
  assert.ok(Math.abs(std(down) * Math.sqrt(96) - 1) < 0.1, `down std ${std(down)}`);
  const mean = up.reduce((s, v) => s + v, 0) / up.length;
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
  for (const v of values(f, "blk.1.ffn_norm.weight")) assert.ok(v >= 0.9 && v <= 1.1, `${v}`);
});

Deno.test("synthBytes() writes the Mixtral expert layout", () => {
  const f = load({ ...SMALL, nExpert: 4, nExpertUsed: 2 });
  assert.equal(metaNumber(f, "llama.expert_count"), 4);
  assert.equal(metaNumber(f, "llama.expert_used_count"), 2);
  const shape = (n: string) => [...f.tensors.get(n)!.shape];
  assert.deepEqual(shape("blk.1.ffn_gate_inp.weight"), [4, 64]);
  assert.equal(f.tensors.get("blk.1.ffn_gate_inp.weight")!.type, DType.F32);
  assert.deepEqual(shape("blk.1.ffn_gate_exps.weight"), [4, 96, 64]);
  assert.deepEqual(shape("blk.1.ffn_up_exps.weight"), [4, 96, 64]);
  assert.deepEqual(shape("blk.1.ffn_down_exps.weight"), [4, 64, 96]);
  assert.equal(f.tensors.has("blk.0.ffn_up.weight"), false);
});

Deno.test("synthBytes() honours dtype, tied, arch, magic and alignment", () => {
  for (const dtype of [DType.F32, DType.BF16, DType.Q8_0, DType.Q4_0]) {
    const f = load({ ...SMALL, dtype, nLayer: 1 });
    assert.equal(f.tensors.get("blk.0.attn_q.weight")!.type, dtype);
    assert.equal(f.tensors.get("token_embd.weight")!.type, dtype);
    assert.equal(f.tensors.get("output_norm.weight")!.type, DType.F32);
    const w = values(f, "blk.0.ffn_up.weight");
    assert.ok(w.every((v) => Math.abs(v) < 0.3) && w.some((v) => v !== 0), `dtype ${dtype}`);
  }
  const tied = load({ ...SMALL, tied: true });
  assert.equal(tied.tensors.has("output.weight"), false);
  const bamboo = load({ ...SMALL, arch: "bamboo", magic: "PWRI", alignment: 64 });
  assert.equal(bamboo.magic, "PWRI");
  assert.equal(bamboo.alignment, 64);
  assert.equal(metaNumber(bamboo, "bamboo.block_count"), 2);
});

Deno.test("synthBytes() refuses inconsistent options by name", () => {
  assert.throws(() => synthBytes({ nEmbd: 60, nHead: 8 }), /nEmbd 60 is not a multiple of nHead 8/);
  assert.throws(() => synthBytes({ nHead: 4, nKV: 3 }), /nHead 4 is not a multiple of nKV 3/);
  assert.throws(
    () => synthBytes({ dtype: DType.Q8_0, nEmbd: 48, nHead: 4 }),
    /nEmbd 48 does not fit Q8_0/,
  );
  assert.throws(() => synthBytes({ nVocab: 100 }), /nVocab must be an integer >= 300/);
  assert.throws(
    () => synthBytes({ nExpert: 4, nExpertUsed: 5 }),
    /nExpertUsed must be in 1\.\.nExpert/,
  );
  assert.throws(() => synthBytes({ nLayer: 0 }), /nLayer must be a positive integer/);
});

Deno.test("synthModel() streams the same bytes as synthBytes() with progress", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    let last = [0, 0];
    let calls = 0;
    await synthModel(path, { ...SMALL, onProgress: (d, t) => (last = [d, t], calls++) });
    const expected = synthBytes(SMALL);
    assert.deepEqual(await Deno.readFile(path), expected);
    assert.deepEqual(last, [expected.length, expected.length]);
    assert.equal(calls, parseGGUF(expected, "s").tensors.size + 1);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test({
  name: "synth CLI writes a model that parseGGUF() loads",
  ignore: (await Deno.permissions.query({ name: "run" })).state !== "granted",
  async fn() {
    const path = await Deno.makeTempFile({ suffix: ".gguf" });
    try {
      const cli = new URL("../../tools/synth.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          cli,
          "--out",
          path,
          "--n-layer",
          "1",
          "--dtype",
          "q8_0",
          "--seed",
          "3",
        ],
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const f = parseGGUF(await Deno.readFile(path), path);
      assert.equal(metaNumber(f, "llama.block_count"), 1);
      assert.equal(f.tensors.get("blk.0.ffn_down.weight")!.type, DType.Q8_0);
      assert.deepEqual(
        await Deno.readFile(path),
        synthBytes({ nLayer: 1, dtype: DType.Q8_0, seed: 3 }),
      );
    } finally {
      await Deno.remove(path);
    }
  },
});
