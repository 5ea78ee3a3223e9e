/**
 * Model hyperparameters read from GGUF metadata (llama.cpp's keys), validated once at load.
 *
 * @module
 */

import { z } from "zod";
import type { GGUFFile } from "./gguf.ts";
import { metaNumber, metaString } from "./gguf_meta.ts";

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
  const named: GGUFFile = file.source ? file : { ...file, source };
  const int = (key: string, fallback?: number) => count(named, key, fallback);
  const arch = metaString(named, "general.architecture");
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new Error(
      `${source}: architecture "${arch}" is not supported (supported: ${ARCHITECTURES.join(", ")})`,
    );
  }
  const k = (key: string) => `${arch}.${key}`;
  const nEmbd = int(k("embedding_length"));
  const nHead = int(k("attention.head_count"));
  const headDim = int(k("attention.key_length"), nEmbd / nHead);
  const vocab = file.metadata.get("tokenizer.ggml.tokens");
  const nVocab = int(k("vocab_size"), Array.isArray(vocab) ? vocab.length : undefined);
  const sparseFormat = file.magic === "PWRI";
  const defaultGlu = arch === "bamboo" ? "drelu" : sparseFormat ? "reglu" : "swiglu";
  const raw = {
    arch,
    name: metaString(named, "general.name", arch),
    nEmbd,
    nFF: int(k("feed_forward_length")),
    nLayer: int(k("block_count")),
    nHead,
    nKV: int(k("attention.head_count_kv"), nHead),
    headDim,
    nCtx: int(k("context_length")),
    nVocab,
    ropeBase: metaNumber(named, k("rope.freq_base"), 10000),
    ropeDim: int(k("rope.dimension_count"), headDim),
    eps: metaNumber(named, k("attention.layer_norm_rms_epsilon"), 1e-5),
    nExpert: int(k("expert_count"), 0),
    nExpertUsed: int(k("expert_used_count"), 0),
    glu: metaString(named, "turbosparse.ffn_activation", defaultGlu),
    sparseFormat,
  };
  const parsed = ModelConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${source}: invalid model config: ${issue.path.join(".")} ${issue.message}`);
  }
  return parsed.data;
}

/** A count-valued key (an integer in 0 .. 2^31); errors name the key and the file. */
function count(file: GGUFFile, key: string, fallback?: number): number {
  const v = metaNumber(file, key, fallback);
  if (!Number.isInteger(v) || v < 0 || v > 2 ** 31) {
    throw new Error(`${file.source}: metadata key "${key}" should be a count, got ${v}`);
  }
  return v;
}
