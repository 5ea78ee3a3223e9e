/**
 * Turn the golden outputs of `tools/golden/hf_logits.py` (Hugging Face transformers) into
 * committed fixtures: a GGUF written by the project's writer (HF tensors renamed to llama.cpp's
 * names, Q/K rows permuted from HF's rotate-half RoPE to llama.cpp's adjacent pairs, exactly
 * as llama.cpp's converter does) and a JSON with the token ids and transformers' logits.
 *
 *   python3 tools/golden/hf_logits.py build/golden_hf        # on the device machine
 *   deno run --allow-read --allow-write tools/golden/make_fixture.ts build/golden_hf tests/fixtures/golden
 *
 * @module
 */

import { DType } from "../../core/dtype.ts";
import { GGUFType } from "../../core/gguf.ts";
import { encodeGGUF, meta, type MetaEntry } from "../../core/gguf_write.ts";
import { quantize } from "../../core/quant.ts";
import { llamaVocab } from "../_synth_vocab.ts";

interface HfMeta {
  variant: { name: string; act: string; drelu: boolean; tied: boolean };
  tokens: number[];
  logits_offset: number;
  logits_shape: [number, number];
  config: {
    vocab: number;
    n_embd: number;
    n_ff: number;
    n_layer: number;
    n_head: number;
    n_kv: number;
    head_dim: number;
    n_ctx: number;
    eps: number;
    rope_theta: number;
  }; // deno-fmt-ignore
  torch: string;
  transformers: string;
  tensors: { name: string; shape: number[]; offset: number }[];
}

/** HF name → llama.cpp name (layer index substituted). */
const NAMES: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, "token_embd.weight"],
  [/^model\.norm\.weight$/, "output_norm.weight"],
  [/^lm_head\.weight$/, "output.weight"],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, "blk.$1.attn_norm.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$/, "blk.$1.attn_q.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$/, "blk.$1.attn_k.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$/, "blk.$1.attn_v.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, "blk.$1.attn_output.weight"],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, "blk.$1.ffn_norm.weight"],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, "blk.$1.ffn_gate.weight"],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, "blk.$1.ffn_up.weight"],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, "blk.$1.ffn_down.weight"],
];

function rename(hf: string): string {
  for (const [re, to] of NAMES) if (re.test(hf)) return hf.replace(re, to);
  throw new Error(`unexpected tensor ${hf}`);
}

/** HF rows [head][half][i] → llama.cpp rows [head][i][half] (rotate-half → adjacent pairs). */
function permuteRows(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const hd = rows / nHead, half = hd / 2, out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * cols, dst = (h * hd + 2 * i + j) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

async function convert(inDir: string, outDir: string, name: string): Promise<void> {
  const m: HfMeta = JSON.parse(await Deno.readTextFile(`${inDir}/${name}.json`));
  const bin = await Deno.readFile(`${inDir}/${name}.bin`);
  const f32 = (offset: number, n: number) =>
    new Float32Array(bin.buffer, bin.byteOffset + offset, n).slice();
  const c = m.config;
  const arch = m.variant.drelu ? "bamboo" : "llama";
  const vocab = llamaVocab(c.vocab);
  const entries: MetaEntry[] = [
    meta.str("general.architecture", arch),
    meta.str("general.name", `golden-${name}`),
    meta.u32(`${arch}.context_length`, c.n_ctx),
    meta.u32(`${arch}.embedding_length`, c.n_embd),
    meta.u32(`${arch}.feed_forward_length`, c.n_ff),
    meta.u32(`${arch}.block_count`, c.n_layer),
    meta.u32(`${arch}.attention.head_count`, c.n_head),
    meta.u32(`${arch}.attention.head_count_kv`, c.n_kv),
    meta.u32(`${arch}.rope.dimension_count`, c.head_dim),
    meta.f32(`${arch}.rope.freq_base`, c.rope_theta),
    meta.f32(`${arch}.attention.layer_norm_rms_epsilon`, c.eps),
    meta.u32(`${arch}.vocab_size`, c.vocab),
    ...(m.variant.act === "relu" && !m.variant.drelu
      ? [meta.str("turbosparse.ffn_activation", "reglu")]
      : []),
    meta.str("tokenizer.ggml.model", "llama"),
    meta.arr("tokenizer.ggml.tokens", GGUFType.STRING, vocab.tokens),
    meta.arr("tokenizer.ggml.scores", GGUFType.FLOAT32, vocab.scores),
    meta.arr("tokenizer.ggml.token_type", GGUFType.INT32, vocab.types),
    meta.u32("tokenizer.ggml.bos_token_id", 1),
    meta.u32("tokenizer.ggml.eos_token_id", 2),
    meta.u32("tokenizer.ggml.unknown_token_id", 0),
  ]; // deno-fmt-ignore
  const tensors = m.tensors.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    let w: Float32Array = f32(t.offset, n);
    if (t.name.endsWith("q_proj.weight")) w = permuteRows(w, t.shape[0], t.shape[1], c.n_head);
    if (t.name.endsWith("k_proj.weight")) w = permuteRows(w, t.shape[0], t.shape[1], c.n_kv);
    return { spec: { name: rename(t.name), type: DType.F32, shape: t.shape }, data: quantize(DType.F32, w) };
  });
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeFile(`${outDir}/${name}.gguf`, encodeGGUF(entries, tensors));
  const [nTok, nVocab] = m.logits_shape;
  const logits = f32(m.logits_offset, nTok * nVocab);
  const golden = {
    source:
      `transformers ${m.transformers}, torch ${m.torch}, float32 on CPU (tools/golden/hf_logits.py)`,
    tokens: m.tokens,
    nVocab,
    logits: Array.from(logits, (x) => Number(x.toPrecision(8))),
  };
  await Deno.writeTextFile(`${outDir}/${name}.json`, JSON.stringify(golden) + "\n");
  console.log(`${outDir}/${name}.gguf  ${outDir}/${name}.json`);
}

if (import.meta.main) {
  const [inDir = "build/golden_hf", outDir = "tests/fixtures/golden"] = Deno.args;
  for (const name of ["swiglu", "reglu", "drelu"]) await convert(inDir, outDir, name);
}
