/**
 * Model hyperparameters read from GGUF metadata (llama.cpp's keys), validated once at load.
 *
 * @module
 */

import { z } from "zod";
import type { GGUFFile, GGUFValue } from "./gguf.ts";

/** Architectures this runtime runs. */
export const ARCHITECTURES = ["llama", "bamboo"] as const;

/** The validated shape of a model. */
export const ModelConfig = z.object({
  /** "llama" (Llama, Mistral, Mixtral, PowerInfer's ReLU Llama) or "bamboo" (TurboSparse). */
  arch: z.enum(ARCHITECTURES),
  name: z.string(),
  nEmbd: z.number().int().positive(),
  nFF: z.number().int().positive(),
  nLayer: z.number().int().positive(),
  nHead: z.number().int().positive(),
  nKV: z.number().int().positive(),
  headDim: z.number().int().positive(),
  nCtx: z.number().int().positive(),
  nVocab: z.number().int().positive(),
  ropeBase: z.number().positive(),
  ropeDim: z.number().int().positive(),
  eps: z.number().positive(),
  /** Experts per MoE layer; 0 for a dense FFN. */
  nExpert: z.number().int().nonnegative(),
  nExpertUsed: z.number().int().nonnegative(),
  /** FFN activation: SwiGLU (Llama), ReGLU (PowerInfer's ReLU Llama), dReLU (bamboo). */
  glu: z.enum(["swiglu", "reglu", "drelu"]),
  /** The file is in PowerInfer's sparse layout (magic PWRI). */
  sparseFormat: z.boolean(),
}).refine((c) => c.nHead % c.nKV === 0, "attention.head_count must be a multiple of head_count_kv")
  .refine(
    (c) => c.ropeDim <= c.headDim && c.ropeDim % 2 === 0,
    "rope.dimension_count must be even and <= head dim",
  )
  .refine((c) => c.nExpertUsed <= c.nExpert, "expert_used_count must be <= expert_count");
/** The validated shape of a model. */
export type ModelConfig = z.infer<typeof ModelConfig>;

/** Read and validate the config of a parsed GGUF file; errors name the key and the file. */
export function configFromGGUF(file: GGUFFile, source: string): ModelConfig {
  const m = file.metadata;
  const arch = str(m, "general.architecture", source);
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new Error(
      `${source}: architecture "${arch}" is not supported (supported: ${ARCHITECTURES.join(", ")})`,
    );
  }
  const k = (key: string) => `${arch}.${key}`;
  const nEmbd = int(m, k("embedding_length"), source);
  const nHead = int(m, k("attention.head_count"), source);
  const headDim = m.has(k("attention.key_length"))
    ? int(m, k("attention.key_length"), source)
    : nEmbd / nHead;
  const vocab = m.get("tokenizer.ggml.tokens");
  const nVocab = m.has(k("vocab_size"))
    ? int(m, k("vocab_size"), source)
    : Array.isArray(vocab)
    ? vocab.length
    : int(m, k("vocab_size"), source);
  const sparseFormat = file.magic === "PWRI";
  const act = m.get("turbosparse.ffn_activation");
  const glu = typeof act === "string"
    ? act
    : arch === "bamboo"
    ? "drelu"
    : sparseFormat
    ? "reglu"
    : "swiglu";
  const raw = {
    arch,
    name: m.has("general.name") ? str(m, "general.name", source) : arch,
    nEmbd,
    nFF: int(m, k("feed_forward_length"), source),
    nLayer: int(m, k("block_count"), source),
    nHead,
    nKV: m.has(k("attention.head_count_kv")) ? int(m, k("attention.head_count_kv"), source) : nHead,
    headDim,
    nCtx: int(m, k("context_length"), source),
    nVocab,
    ropeBase: m.has(k("rope.freq_base")) ? num(m, k("rope.freq_base"), source) : 10000,
    ropeDim: m.has(k("rope.dimension_count")) ? int(m, k("rope.dimension_count"), source) : headDim,
    eps: m.has(k("attention.layer_norm_rms_epsilon"))
      ? num(m, k("attention.layer_norm_rms_epsilon"), source)
      : 1e-5,
    nExpert: m.has(k("expert_count")) ? int(m, k("expert_count"), source) : 0,
    nExpertUsed: m.has(k("expert_used_count")) ? int(m, k("expert_used_count"), source) : 0,
    glu,
    sparseFormat,
  };
  const parsed = ModelConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${source}: invalid model config: ${issue.path.join(".")} ${issue.message}`);
  }
  return parsed.data;
}

function num(m: Map<string, GGUFValue>, key: string, source: string): number {
  const v = m.get(key);
  if (v === undefined) throw new Error(`${source}: missing metadata key "${key}"`);
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new Error(`${source}: metadata key "${key}" should be a number, got ${show(v)}`);
  }
  return v;
}

function int(m: Map<string, GGUFValue>, key: string, source: string): number {
  const v = num(m, key, source);
  if (!Number.isInteger(v) || v < 0 || v > 2 ** 31) {
    throw new Error(`${source}: metadata key "${key}" should be a count, got ${v}`);
  }
  return v;
}

function str(m: Map<string, GGUFValue>, key: string, source: string): string {
  const v = m.get(key);
  if (v === undefined) throw new Error(`${source}: missing metadata key "${key}"`);
  if (typeof v !== "string") {
    throw new Error(`${source}: metadata key "${key}" should be a string, got ${show(v)}`);
  }
  return v;
}

function show(v: GGUFValue): string {
  return Array.isArray(v) ? `an array of ${v.length}` : `${typeof v} ${String(v).slice(0, 40)}`;
}
