/**
 * The FFN tensors and sparsity metadata of synthetic models: llama.cpp's dense and Mixtral
 * layouts, PowerInfer's sparse layout (`ffn_down_t`, predictors `fc1`/`fc2`, magic PWRI) and
 * the project's sparse MoE layout (`ffn_down_t_exps`, one predictor per expert). Names and
 * shapes: docs/format.md.
 *
 * Random predictors: with threshold 0, `score_i = fc2[i] · relu(fc1 · h)` is ≥ 0 for about a
 * fraction p of neurons when fc2's entries have mean β/√r and unit-variance noise /√r, with
 * β = Φ⁻¹(p) · √π / √r (Σ_j relu(u_j) ≈ rσ/√(2π) against noise of σ√(r/2)), for any scale of h.
 *
 * @module
 */

import { DType } from "../core/dtype.ts";
import { GGUFType } from "../core/gguf.ts";
import { meta, type MetaEntry } from "../core/gguf_write.ts";
import { CATS_THRESHOLDS, POWERINFER_THRESHOLD, SPARSE_THRESHOLDS } from "../core/weights.ts";
import type { Init } from "./_synth_fill.ts";

/** The sparsity options of `SynthOptions`. */
export interface SparseSynthOptions {
  /** "dense" (llama.cpp) or "powerinfer" (ffn_down_t plus predictors, magic PWRI). */
  readonly layout?: "dense" | "powerinfer";
  /** Predictor rank: one for every layer, or one per layer. Default 16. */
  readonly rank?: number | readonly number[];
  /** Fraction of neurons the random predictors mark active (threshold 0). Default 0.25. */
  readonly activeFraction?: number;
  /** Written as `powerinfer.sparse_threshold` when given. */
  readonly threshold?: number;
  /** Written as `turbosparse.sparse_thresholds` ([n_layer] or [n_layer × n_expert]). */
  readonly thresholds?: readonly number[];
  /** Written as `turbosparse.cats_thresholds`. */
  readonly catsThresholds?: readonly number[];
  /** Store experts as per-expert tensors (`ffn_gate.E.weight`), the older Mixtral layout. */
  readonly splitExperts?: boolean;
  /** Storage of the predictors fc1/fc2: F16 (default; F32 for F32 models), Q8_0 or Q4_0. */
  readonly predictorType?: DType;
}

/** What the FFN planner needs of the resolved options. */
interface Shape extends SparseSynthOptions {
  readonly nEmbd: number;
  readonly nFF: number;
  readonly nLayer: number;
  readonly nExpert: number;
  readonly dtype: DType;
}

type Add = (name: string, type: DType, shape: number[], init: Init) => void;

/** Uniform with standard deviation 1/sqrt(fanIn). */
export function scaled(fanIn: number): Init {
  return { center: 0, halfWidth: Math.sqrt(3 / fanIn) };
}

/** Throws naming the option when the sparsity options do not fit the model. */
export function checkSparse(r: Shape): void {
  const units = r.nLayer * Math.max(r.nExpert, 1);
  const ranks = rankList(r);
  if (ranks.some((k) => !Number.isInteger(k) || k < 1)) {
    throw new Error(`synth: rank must be positive integers, got ${ranks.join(", ")}`);
  }
  if (Array.isArray(r.rank) && r.rank.length !== r.nLayer) {
    throw new Error(`synth: rank has ${r.rank.length} entries, expected nLayer ${r.nLayer}`);
  }
  const pt = r.predictorType;
  const types: DType[] = [DType.F16, DType.Q8_0, DType.Q4_0, DType.F32];
  if (pt !== undefined && !types.includes(pt)) {
    throw new Error(`synth: predictorType must be F16, Q8_0, Q4_0 or F32, got type ${pt}`);
  }
  if ((pt === DType.Q8_0 || pt === DType.Q4_0) && ranks.some((k) => k % 32 !== 0)) {
    throw new Error(`synth: Q8_0 and Q4_0 predictors need a rank that is a multiple of 32`);
  }
  const p = r.activeFraction ?? 0.25;
  if (!(p > 0 && p < 1)) throw new Error(`synth: activeFraction must be in (0, 1), got ${p}`);
  for (const key of ["thresholds", "catsThresholds"] as const) {
    const v = r[key];
    if (v && v.length !== units) {
      throw new Error(`synth: ${key} has ${v.length} entries, expected ${units}`);
    }
  }
}

function rankList(r: Shape): number[] {
  const k = r.rank ?? 16;
  return typeof k === "number" ? Array(r.nLayer).fill(k) : [...k];
}

/** Sparsity metadata: the threshold keys that were asked for. */
export function sparseMetadata(r: Shape): MetaEntry[] {
  const out: MetaEntry[] = [];
  if (r.threshold !== undefined) out.push(meta.f32(POWERINFER_THRESHOLD, r.threshold));
  if (r.thresholds) {
    out.push(meta.arr(SPARSE_THRESHOLDS, GGUFType.FLOAT32, [...r.thresholds]));
  }
  if (r.catsThresholds) {
    out.push(meta.arr(CATS_THRESHOLDS, GGUFType.FLOAT32, [...r.catsThresholds]));
  }
  return out;
}

/** The FFN tensors of layer `l` (after `ffn_norm`), in file order. */
export function planFFN(r: Shape, l: number, add: Add): void {
  const { nEmbd, nFF, dtype } = r;
  const b = `blk.${l}`, sparse = r.layout === "powerinfer";
  const down = sparse ? "ffn_down_t" : "ffn_down";
  const downShape = sparse ? [nFF, nEmbd] : [nEmbd, nFF];
  const e = r.nExpert;
  if (e > 0) add(`${b}.ffn_gate_inp.weight`, DType.F32, [e, nEmbd], scaled(nEmbd)); // [n_expert, n_embd]
  if (e > 0 && !r.splitExperts) {
    add(`${b}.ffn_gate_exps.weight`, dtype, [e, nFF, nEmbd], scaled(nEmbd));
    add(`${b}.ffn_up_exps.weight`, dtype, [e, nFF, nEmbd], scaled(nEmbd));
    add(`${b}.${down}_exps.weight`, dtype, [e, ...downShape], scaled(nFF));
  } else {
    for (let x = 0; x < Math.max(e, 1); x++) {
      const tag = e > 0 ? `.${x}` : "";
      add(`${b}.ffn_gate${tag}.weight`, dtype, [nFF, nEmbd], scaled(nEmbd));
      add(`${b}.ffn_up${tag}.weight`, dtype, [nFF, nEmbd], scaled(nEmbd));
      add(`${b}.${down}${tag}.weight`, dtype, downShape, scaled(nFF));
    }
  }
  if (!sparse) return;
  const rank = rankList(r)[l];
  // predictors stay float as PowerInfer's unless asked for Q8_0 or Q4_0 (fewer bytes per token)
  const type = r.predictorType ?? (dtype === DType.F32 ? DType.F32 : DType.F16);
  const s = 1 / Math.sqrt(rank);
  const beta = normalQuantile(r.activeFraction ?? 0.25) * Math.sqrt(Math.PI / rank);
  const fc2: Init = { center: beta * s, halfWidth: Math.sqrt(3) * s };
  for (let x = 0; x < Math.max(e, 1); x++) {
    const tag = e > 0 ? `.${x}` : "";
    add(`${b}.fc1${tag}.weight`, type, [rank, nEmbd], scaled(nEmbd)); // [r, n_embd]
    add(`${b}.fc2${tag}.weight`, type, [nFF, rank], fc2); // [n_ff, r]
  }
}

/** Φ⁻¹(p) by bisection on Φ (erf from Abramowitz & Stegun 7.1.26, error < 1.5e-7). */
export function normalQuantile(p: number): number {
  let lo = -8, hi = 8;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 +
            t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}
