/**
 * The weights of a model, prepared for a backend, with their shapes checked against the config.
 * llama.cpp tensor names; shapes outermost first (see `core/tensor.ts`).
 *
 * @module
 */

import type { Backend, Weight } from "./backend.ts";
import type { ModelConfig } from "./config.ts";
import type { GGUFFile } from "./gguf.ts";
import type { Tensor } from "./tensor.ts";

/** A dense gated FFN. */
export interface DenseFFN {
  readonly kind: "dense";
  readonly gate: Weight; // [n_ff, n_embd]
  readonly up: Weight; // [n_ff, n_embd]
  readonly down: Weight; // [n_embd, n_ff]
}

/** The FFN of one layer. Sparse and MoE forms join this union as they land. */
export type FFN = DenseFFN;

/** One transformer block: the Layer contract. */
export interface Layer {
  readonly attnNorm: Weight; // [n_embd]
  readonly wq: Weight; // [n_head * head_dim, n_embd]
  readonly wk: Weight; // [n_kv * head_dim, n_embd]
  readonly wv: Weight; // [n_kv * head_dim, n_embd]
  readonly wo: Weight; // [n_embd, n_head * head_dim]
  readonly ffnNorm: Weight; // [n_embd]
  readonly ffn: FFN;
}

/** All weights of a model. */
export interface Weights {
  readonly tokenEmbd: Weight; // [n_vocab, n_embd]
  readonly layers: readonly Layer[];
  readonly outputNorm: Weight; // [n_embd]
  /** `output.weight`, or the embedding table when the file ties them. */
  readonly output: Weight; // [n_vocab, n_embd]
}

/** Progress callback: tensors prepared so far out of the total. */
export type LoadProgress = (done: number, total: number) => void;

/**
 * Look up, shape-check and prepare every weight the forward pass needs.
 * Throws naming the tensor when one is missing or has the wrong shape.
 */
export function loadWeights(
  file: GGUFFile,
  cfg: ModelConfig,
  backend: Backend,
  source: string,
  onProgress?: LoadProgress,
): Weights {
  const total = file.tensors.size;
  let done = 0;
  const get = (name: string, shape: number[]): Weight => {
    const t = file.tensors.get(name);
    if (!t) throw new Error(`${source}: missing tensor "${name}"`);
    checkShape(t, shape, source);
    const w = backend.weight(t);
    onProgress?.(++done, total);
    return w;
  };
  const { nEmbd, nFF, nHead, nKV, headDim, nVocab } = cfg;
  if (cfg.nExpert > 0) {
    throw new Error(
      `${source}: mixture-of-experts models (${cfg.nExpert} experts) are not supported yet`,
    );
  }
  if (file.tensors.has("blk.0.ffn_down_t.weight")) {
    throw new Error(`${source}: PowerInfer's sparse layout (ffn_down_t) is not supported yet`);
  }
  const tokenEmbd = get("token_embd.weight", [nVocab, nEmbd]);
  const layers: Layer[] = [];
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = `blk.${i}.`;
    layers.push({
      attnNorm: get(p + "attn_norm.weight", [nEmbd]),
      wq: get(p + "attn_q.weight", [nHead * headDim, nEmbd]),
      wk: get(p + "attn_k.weight", [nKV * headDim, nEmbd]),
      wv: get(p + "attn_v.weight", [nKV * headDim, nEmbd]),
      wo: get(p + "attn_output.weight", [nEmbd, nHead * headDim]),
      ffnNorm: get(p + "ffn_norm.weight", [nEmbd]),
      ffn: {
        kind: "dense",
        gate: get(p + "ffn_gate.weight", [nFF, nEmbd]),
        up: get(p + "ffn_up.weight", [nFF, nEmbd]),
        down: get(p + "ffn_down.weight", [nEmbd, nFF]),
      },
    });
  }
  const outputNorm = get("output_norm.weight", [nEmbd]);
  const output = file.tensors.has("output.weight")
    ? get("output.weight", [nVocab, nEmbd])
    : tokenEmbd;
  return { tokenEmbd, layers, outputNorm, output };
}

function checkShape(t: Tensor, shape: number[], source: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(
      `${source}: tensor "${t.name}" has shape [${t.shape.join(", ")}], expected [${
        shape.join(", ")
      }]`,
    );
  }
}
