/**
 * The weights of a model, prepared for a backend, with their shapes checked against the config.
 * llama.cpp tensor names (plus PowerInfer's and ours for sparse FFNs, see docs/format.md);
 * shapes outermost first (see `core/tensor.ts`).
 *
 * @module
 */

import type { Backend, Weight } from "./backend.ts";
import type { ModelConfig } from "./config.ts";
import type { GGUFFile } from "./gguf.ts";
import { type Tensor, tensorBytes } from "./tensor.ts";

/** Where an FFN sits: its layer, and its expert (-1 for the FFN of a dense layer). */
export interface UnitId {
  readonly layer: number;
  readonly expert: number;
}

/** A dense gated FFN: `down · glu(gate · x, up · x)`. */
export interface DenseFFN extends UnitId {
  readonly kind: "dense";
  readonly gate: Weight; // [n_ff, n_embd]
  readonly up: Weight; // [n_ff, n_embd]
  readonly down: Weight; // [n_embd, n_ff]
}

/** The low-rank activation predictor of one FFN: `score = fc2 · relu(fc1 · h)`. */
export interface LowRank {
  readonly fc1: Weight; // [r, n_embd]
  readonly fc2: Weight; // [n_ff, r]
}

/** A gated FFN in PowerInfer's sparse layout: down stored transposed, one row per neuron. */
export interface SparseFFN extends UnitId {
  readonly kind: "sparse";
  readonly gate: Weight; // [n_ff, n_embd]
  readonly up: Weight; // [n_ff, n_embd]
  readonly downT: Weight; // [n_ff, n_embd]
  /** The trained predictor, when the file has one (`fc1`/`fc2`). */
  readonly lowRank?: LowRank;
  /** Neuron i is active iff its predictor score ≥ this. */
  readonly threshold: number;
  /** Threshold on |silu(gate · x)| for the training-free predictor, when calibrated. */
  readonly catsThreshold?: number;
}

/** One FFN: of a dense layer, or one expert of a MoE layer. */
export type FFNUnit = DenseFFN | SparseFFN;

/** A Mixture-of-Experts FFN: a router and `n_expert` FFNs. */
export interface MoEFFN {
  readonly kind: "moe";
  readonly router: Weight; // [n_expert, n_embd]
  readonly experts: readonly FFNUnit[];
}

/** The FFN of one layer. */
export type FFN = FFNUnit | MoEFFN;

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

/** Metadata key of PowerInfer's one threshold for every predictor (f32, default 0). */
export const POWERINFER_THRESHOLD = "powerinfer.sparse_threshold";
/** Our per-unit thresholds (f32 array, [n_layer] or [n_layer × n_expert]); overrides it. */
export const SPARSE_THRESHOLDS = "turbosparse.sparse_thresholds";
/** Calibrated thresholds of the training-free predictor (same shape as SPARSE_THRESHOLDS). */
export const CATS_THRESHOLDS = "turbosparse.cats_thresholds";

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
  /** The file's tensor, shape-checked, counted once for progress. */
  const tensor = (name: string, shape: number[]): Tensor => {
    const t = file.tensors.get(name);
    if (!t) throw new Error(`${source}: missing tensor "${name}"`);
    checkShape(t, shape, source);
    onProgress?.(++done, total);
    return t;
  };
  const get = (name: string, shape: number[]): Weight => backend.weight(tensor(name, shape));
  const { nEmbd, nHead, nKV, headDim, nVocab } = cfg;
  const units = unitTable(file, cfg, source);
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
      ffn: cfg.nExpert > 0
        ? moeFFN(file, cfg, backend, i, units, tensor)
        : ffnUnit(file, cfg, backend, { layer: i, expert: -1 }, units, tensor),
    });
  }
  const outputNorm = get("output_norm.weight", [nEmbd]);
  const output = file.tensors.has("output.weight")
    ? get("output.weight", [nVocab, nEmbd])
    : tokenEmbd;
  return { tokenEmbd, layers, outputNorm, output };
}

type TakeTensor = (name: string, shape: number[]) => Tensor;

/** Per-unit thresholds from metadata, indexed `layer × max(n_expert, 1) + expert`. */
interface UnitTable {
  readonly sparse: Float64Array;
  readonly cats: Float64Array | undefined;
}

function unitTable(file: GGUFFile, cfg: ModelConfig, source: string): UnitTable {
  const n = cfg.nLayer * Math.max(cfg.nExpert, 1);
  const array = (key: string): Float64Array | undefined => {
    const v = file.metadata.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== "number")) {
      throw new Error(
        `${source}: metadata "${key}" should be ${n} numbers (n_layer × max(n_expert, 1))`,
      );
    }
    return Float64Array.from(v as number[]);
  };
  const one = file.metadata.get(POWERINFER_THRESHOLD) ?? 0;
  if (typeof one !== "number") {
    throw new Error(`${source}: metadata "${POWERINFER_THRESHOLD}" should be a number`);
  }
  return {
    sparse: array(SPARSE_THRESHOLDS) ?? new Float64Array(n).fill(one),
    cats: array(CATS_THRESHOLDS),
  };
}

/** The FFN of a dense layer, or expert `id.expert` stored as its own tensors (`ffn_gate.E`). */
function ffnUnit(
  file: GGUFFile,
  cfg: ModelConfig,
  backend: Backend,
  id: UnitId,
  units: UnitTable,
  tensor: TakeTensor,
  slices?: { gate: Tensor; up: Tensor; down: Tensor; transposed: boolean },
): FFNUnit {
  const { nEmbd, nFF } = cfg;
  const p = `blk.${id.layer}.`, tag = id.expert >= 0 ? `.${id.expert}` : "";
  const gate = backend.weight(slices?.gate ?? tensor(`${p}ffn_gate${tag}.weight`, [nFF, nEmbd]));
  const up = backend.weight(slices?.up ?? tensor(`${p}ffn_up${tag}.weight`, [nFF, nEmbd]));
  const transposed = slices?.transposed ?? file.tensors.has(`${p}ffn_down_t${tag}.weight`);
  if (!transposed) {
    const down = backend.weight(slices?.down ?? tensor(`${p}ffn_down${tag}.weight`, [nEmbd, nFF]));
    return { kind: "dense", ...id, gate, up, down };
  }
  const downT = backend.weight(slices?.down ?? tensor(`${p}ffn_down_t${tag}.weight`, [nFF, nEmbd]));
  backend.prepareSparseFFN?.(gate, up, downT);
  const u = id.layer * Math.max(cfg.nExpert, 1) + Math.max(id.expert, 0);
  const fc1Name = `${p}fc1${tag}.weight`, fc2Name = `${p}fc2${tag}.weight`;
  let lowRank: LowRank | undefined;
  if (file.tensors.has(fc1Name) || file.tensors.has(fc2Name)) {
    const rank = file.tensors.get(fc1Name)?.shape[0] ?? 0; // any rank; tensor() names a missing fc1
    const fc1 = tensor(fc1Name, [rank, nEmbd]);
    const fc2 = tensor(fc2Name, [nFF, fc1.shape[0]]);
    lowRank = { fc1: backend.weight(fc1), fc2: backend.weight(fc2) };
  }
  return {
    kind: "sparse",
    ...id,
    gate,
    up,
    downT,
    lowRank,
    threshold: units.sparse[u],
    catsThreshold: units.cats?.[u],
  };
}

/** A MoE layer: experts as 3-D tensors (`ffn_gate_exps`) or per-expert ones (`ffn_gate.E`). */
function moeFFN(
  file: GGUFFile,
  cfg: ModelConfig,
  backend: Backend,
  layer: number,
  units: UnitTable,
  tensor: TakeTensor,
): MoEFFN {
  const { nEmbd, nFF, nExpert: e } = cfg;
  const p = `blk.${layer}.`;
  const router = backend.weight(tensor(`${p}ffn_gate_inp.weight`, [e, nEmbd]));
  const experts: FFNUnit[] = [];
  if (!file.tensors.has(`${p}ffn_gate_exps.weight`)) {
    for (let x = 0; x < e; x++) {
      experts.push(ffnUnit(file, cfg, backend, { layer, expert: x }, units, tensor));
    }
    return { kind: "moe", router, experts };
  }
  const transposed = file.tensors.has(`${p}ffn_down_t_exps.weight`);
  const gate = tensor(`${p}ffn_gate_exps.weight`, [e, nFF, nEmbd]);
  const up = tensor(`${p}ffn_up_exps.weight`, [e, nFF, nEmbd]);
  const down = transposed
    ? tensor(`${p}ffn_down_t_exps.weight`, [e, nFF, nEmbd])
    : tensor(`${p}ffn_down_exps.weight`, [e, nEmbd, nFF]);
  for (let x = 0; x < e; x++) {
    const slices = {
      gate: expertSlice(gate, x),
      up: expertSlice(up, x),
      down: expertSlice(down, x),
      transposed,
    };
    experts.push(ffnUnit(file, cfg, backend, { layer, expert: x }, units, tensor, slices));
  }
  return { kind: "moe", router, experts };
}

/** Expert `e` of a 3-D `[n_expert, rows, cols]` tensor: a 2-D view of its bytes, no copy. */
export function expertSlice(t: Tensor, e: number): Tensor {
  const shape = t.shape.slice(1);
  const bytes = tensorBytes(t.type, shape);
  return {
    name: `${t.name}[${e}]`,
    type: t.type,
    shape,
    data: t.data.subarray(e * bytes, (e + 1) * bytes),
  };
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

/** Bytes a prepared weight occupies in its file: what reading all of it costs. */
export function weightBytes(w: Weight): number {
  return tensorBytes(w.type, w.shape);
}

/** Bytes of one row (the innermost dimension) of a prepared weight. */
export function weightRowBytes(w: Weight): number {
  return tensorBytes(w.type, [w.shape[w.shape.length - 1]]);
}
