/**
 * Convert a model written by tools/train/train.py (safetensors under GGUF tensor names, Q8_0
 * matrices as int8 quants + f16 `.q8_scale`, JSON under `__metadata__.turbosparse`) into the
 * GGUF the runtime loads: llama layout (magic GGUF) for dense SwiGLU, PowerInfer's sparse
 * layout (magic PWRI, arch "bamboo", `ffn_down_t`, predictors `fc1`/`fc2`) for dReLU models.
 *
 * ```sh
 * deno run --allow-read --allow-write tools/train/export.ts \
 *   build/train/tiny-turbosparse.safetensors models/tiny-turbosparse.gguf
 * ```
 *
 * @module
 */

import { DType } from "../../core/dtype.ts";
import { GGUFType } from "../../core/gguf.ts";
import { meta, type MetaEntry, type TensorSpec, writeGGUF } from "../../core/gguf_write.ts";
import { dequantize, quantize } from "../../core/quant.ts";
import { parseSafetensors, type Safetensors } from "../../core/safetensors.ts";

/** The JSON train.py stores in the safetensors header. */
interface TrainMeta {
  name: string;
  config: {
    ffn: "swiglu" | "reglu" | "drelu";
    n_vocab: number;
    n_ctx: number;
    n_embd: number;
    n_layer: number;
    n_head: number;
    n_kv: number;
    n_ff: number;
    n_expert: number;
    n_expert_used: number;
    rope_base: number;
    eps: number;
  };
  tokenizer: {
    tokens: string[];
    scores: number[];
    token_type: number[];
    bos_token_id: number;
    eos_token_id: number;
    unknown_token_id: number;
  };
  /** Per unit (layer × max(n_expert, 1)), dReLU models only. */
  sparse_thresholds: number[] | null;
}

const SCALE = ".q8_scale";

/** Metadata entries: architecture, hyperparameters, thresholds, tokenizer. */
export function metadata(m: TrainMeta): { entries: MetaEntry[]; magic: "GGUF" | "PWRI" } {
  const c = m.config;
  const sparse = c.ffn === "drelu";
  const arch = sparse ? "bamboo" : "llama";
  const k = (key: string) => `${arch}.${key}`;
  const entries: MetaEntry[] = [
    meta.str("general.architecture", arch),
    meta.str("general.name", m.name),
    meta.u32("general.file_type", 7), // llama.cpp's MOSTLY_Q8_0
    meta.u32(k("context_length"), c.n_ctx),
    meta.u32(k("embedding_length"), c.n_embd),
    meta.u32(k("feed_forward_length"), c.n_ff),
    meta.u32(k("block_count"), c.n_layer),
    meta.u32(k("attention.head_count"), c.n_head),
    meta.u32(k("attention.head_count_kv"), c.n_kv),
    meta.f32(k("rope.freq_base"), c.rope_base),
    meta.u32(k("rope.dimension_count"), c.n_embd / c.n_head),
    meta.f32(k("attention.layer_norm_rms_epsilon"), c.eps),
    meta.u32(k("vocab_size"), c.n_vocab),
  ];
  if (c.n_expert) {
    entries.push(meta.u32(k("expert_count"), c.n_expert));
    entries.push(meta.u32(k("expert_used_count"), c.n_expert_used));
  }
  entries.push(meta.str("turbosparse.ffn_activation", c.ffn));
  if (sparse) {
    const t = m.sparse_thresholds;
    const units = c.n_layer * Math.max(c.n_expert, 1);
    if (!t || t.length !== units) {
      throw new Error(`${m.name}: expected ${units} sparse_thresholds, got ${t?.length ?? 0}`);
    }
    // PowerInfer reads one threshold; the most permissive unit's keeps every unit's recall.
    entries.push(meta.f32("powerinfer.sparse_threshold", Math.min(...t)));
    entries.push(meta.arr("turbosparse.sparse_thresholds", GGUFType.FLOAT32, t));
  }
  const tok = m.tokenizer;
  entries.push(
    meta.str("tokenizer.ggml.model", "llama"),
    meta.arr("tokenizer.ggml.tokens", GGUFType.STRING, tok.tokens),
    meta.arr("tokenizer.ggml.scores", GGUFType.FLOAT32, tok.scores),
    meta.arr("tokenizer.ggml.token_type", GGUFType.INT32, tok.token_type),
    meta.u32("tokenizer.ggml.bos_token_id", tok.bos_token_id),
    meta.u32("tokenizer.ggml.eos_token_id", tok.eos_token_id),
    meta.u32("tokenizer.ggml.unknown_token_id", tok.unknown_token_id),
    meta.bool("tokenizer.ggml.add_bos_token", true),
    meta.bool("tokenizer.ggml.add_eos_token", false),
  );
  return { entries, magic: sparse ? "PWRI" : "GGUF" };
}

/** Raw bytes of a safetensors entry (the shared reader views only float dtypes). */
function rawBytes(file: Uint8Array, st: Safetensors, name: string): Uint8Array {
  const info = st.infos.get(name);
  if (!info) throw new Error(`safetensors: missing tensor "${name}"`);
  const base = 8 + Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return file.subarray(base + info.offsets[0], base + info.offsets[1]);
}

/** Q8_0 blocks for `name`: f32 = scale * q, re-quantised by core/quant.ts and checked. */
function q8Block(file: Uint8Array, st: Safetensors, name: string): Uint8Array {
  const q = rawBytes(file, st, name);
  const scales = rawBytes(file, st, name + SCALE);
  const d = new DataView(scales.buffer, scales.byteOffset, scales.byteLength);
  const x = new Float32Array(q.length);
  const f16 = new Float16Array(1);
  const f16Bits = new Uint16Array(f16.buffer);
  for (let b = 0; b < q.length / 32; b++) {
    f16Bits[0] = d.getUint16(2 * b, true);
    for (let j = 0; j < 32; j++) x[b * 32 + j] = f16[0] * ((q[b * 32 + j] << 24) >> 24);
  }
  const out = quantize(DType.Q8_0, x);
  const back = new Float32Array(x.length);
  dequantize(DType.Q8_0, out, 0, x.length, back);
  for (let i = 0; i < x.length; i++) {
    if (back[i] !== x[i]) throw new Error(`${name}: Q8_0 round trip differs at element ${i}`);
  }
  return out;
}

/** Convert one safetensors file to GGUF at `outPath`; returns the tensor count. */
export async function exportModel(inPath: string, outPath: string): Promise<number> {
  const file = await Deno.readFile(inPath);
  const st = parseSafetensors(file, inPath);
  const json = st.metadata.turbosparse;
  if (!json) throw new Error(`${inPath}: no "turbosparse" entry in __metadata__`);
  const m = JSON.parse(json) as TrainMeta;
  const { entries, magic } = metadata(m);
  const specs: TensorSpec[] = [];
  for (const [name, info] of st.infos) {
    if (name.endsWith(SCALE)) continue;
    const type = info.dtype === "I8"
      ? DType.Q8_0
      : info.dtype === "F16"
      ? DType.F16
      : info.dtype === "F32"
      ? DType.F32
      : undefined;
    if (type === undefined) throw new Error(`${inPath}: tensor "${name}" has dtype ${info.dtype}`);
    if (type === DType.Q8_0 && !st.has(name + SCALE)) {
      throw new Error(`${inPath}: int8 tensor "${name}" has no "${name}${SCALE}"`);
    }
    specs.push({ name, type, shape: info.shape });
  }
  await writeGGUF(
    outPath,
    entries,
    specs,
    (spec) =>
      spec.type === DType.Q8_0 ? q8Block(file, st, spec.name) : rawBytes(file, st, spec.name),
    { magic, version: 3 },
  );
  return specs.length;
}

if (import.meta.main) {
  const [inPath, outPath] = Deno.args;
  if (!inPath || !outPath) {
    console.error("usage: export.ts <model.safetensors> <model.gguf>");
    Deno.exit(2);
  }
  const n = await exportModel(inPath, outPath);
  const size = (await Deno.stat(outPath)).size;
  console.log(`${outPath}: ${n} tensors, ${(size / 1e6).toFixed(2)} MB`);
}
