/**
 * The Predictor contract: which FFN neurons will fire for a token, before the FFN runs. A
 * sparse FFN then reads only those rows of its weights. Predictors run on the backend (their
 * matvecs are `matmul`s, the threshold-to-index-list is `select`), so a GPU keeps the active
 * list on the device.
 *
 * Four predictors: `dense` (every neuron), `lowrank` (PowerInfer's trained
 * `fc2 · relu(fc1 · h)`), `oracle` (the exact active set from the real activations, for
 * evaluation) and `cats` (training-free: |silu(gate · x)| ≥ a calibrated per-layer threshold).
 *
 * @module
 */

import { type Backend, type Buf, sparseOps } from "./backend.ts";
import type { ModelConfig } from "./config.ts";
import { MAX_BATCH } from "./forward.ts";
import { type FFNUnit, type SparseFFN, weightBytes, type Weights } from "./weights.ts";

/** A predictor's verdict for `nTok` tokens: neuron i of token t is active iff score ≥ threshold. */
export interface Scores {
  readonly score: Buf; // [nTok, n_ff]
  readonly threshold: number;
  /** The gate projection `[nTok, n_ff]` when the predictor computed it; the FFN reuses it. */
  readonly gate?: Buf;
}

/** Chooses the active neurons of one FFN (of a layer, or of one expert). */
export interface Predictor {
  readonly name: string;
  /**
   * Scores for the FFN `unit` of `nTok` tokens, or `null` when every neuron is active.
   * @param unit the FFN (its weights, layer and expert)
   * @param h the residual stream after attention, before the FFN norm `[nTok, n_embd]`
   * @param x the FFN's normed input `[nTok, n_embd]`
   * @param nTok tokens (rows of h and x)
   */
  scores(unit: FFNUnit, h: Buf, x: Buf, nTok: number): Scores | null;
  /** Bytes of weights it reads per token for `unit` (for statistics). */
  bytesPerToken(unit: FFNUnit): number;
}

/** The names `predictorFor` accepts. */
export const PREDICTOR_KINDS = ["lowrank", "oracle", "dense", "cats"] as const;
/** One of PREDICTOR_KINDS. */
export type PredictorKind = typeof PREDICTOR_KINDS[number];

/** The predictor that keeps every neuron. */
export const densePredictor: Predictor = {
  name: "dense",
  scores: () => null,
  bytesPerToken: () => 0,
};

/** The sparse FFN `unit` or an error saying why `predictor` needs one. */
function sparseUnit(unit: FFNUnit, predictor: string): SparseFFN {
  if (unit.kind !== "sparse") {
    throw new Error(
      `the ${predictor} predictor needs the sparse layout (ffn_down_t), but ${where(unit)} ` +
        `stores ffn_down: convert the model with "main.ts convert --to powerinfer"`,
    );
  }
  return unit;
}

/** "layer 3" or "layer 3 expert 1", for messages. */
export function where(u: { layer: number; expert: number }): string {
  return u.expert >= 0 ? `layer ${u.layer} expert ${u.expert}` : `layer ${u.layer}`;
}

/**
 * PowerInfer's low-rank predictor `score = fc2 · relu(fc1 · h)` with each unit's threshold.
 * @param be the backend the model runs on
 * @param cfg the model config
 * @param weights the model's weights (ranks may differ per layer and expert)
 */
export function lowRankPredictor(be: Backend, cfg: ModelConfig, weights: Weights): Predictor {
  let maxRank = 1;
  for (const u of units(weights)) {
    if (u.kind === "sparse" && u.lowRank) maxRank = Math.max(maxRank, u.lowRank.fc1.shape[0]);
  }
  const hidden = be.alloc(MAX_BATCH * maxRank); // [nTok, r]
  const score = be.alloc(MAX_BATCH * cfg.nFF); // [nTok, n_ff]
  return {
    name: "lowrank",
    scores(unit, h, _x, nTok) {
      const u = sparseUnit(unit, "lowrank");
      if (!u.lowRank) throw new Error(`${where(u)} has no predictor (blk.N.fc1/fc2 tensors)`);
      be.matmul(hidden, u.lowRank.fc1, h, nTok);
      sparseOps(be).unary(hidden, hidden, nTok * u.lowRank.fc1.shape[0], "relu");
      be.matmul(score, u.lowRank.fc2, hidden, nTok);
      return { score, threshold: u.threshold };
    },
    bytesPerToken(unit) {
      const lr = unit.kind === "sparse" ? unit.lowRank : undefined;
      return lr ? weightBytes(lr.fc1) + weightBytes(lr.fc2) : 0;
    },
  };
}

/**
 * The oracle: runs the FFN's gate and up projections densely and marks the neurons whose
 * activation is non-zero. Exact by construction; for evaluation, never faster than dense.
 */
export function oraclePredictor(be: Backend, cfg: ModelConfig): Predictor {
  const gate = be.alloc(MAX_BATCH * cfg.nFF); // [nTok, n_ff]
  const up = be.alloc(MAX_BATCH * cfg.nFF); // [nTok, n_ff]
  return {
    name: "oracle",
    scores(unit, _h, x, nTok) {
      be.matmul(gate, unit.gate, x, nTok);
      be.matmul(up, unit.up, x, nTok);
      be.glu(gate, gate, up, nTok * cfg.nFF, cfg.glu);
      sparseOps(be).unary(up, gate, nTok * cfg.nFF, "nonzero");
      return { score: up, threshold: 0.5 };
    },
    bytesPerToken: (unit) => weightBytes(unit.gate) + weightBytes(unit.up),
  };
}

/**
 * The training-free threshold predictor (in the spirit of CATS/TEAL): the gate projection runs
 * densely, a neuron is kept iff |silu(gate · x)| ≥ its layer's calibrated threshold, and only
 * kept neurons read their up and down rows. Needs `turbosparse.cats_thresholds`
 * (`main.ts convert --calibrate-cats`).
 */
export function catsPredictor(be: Backend, cfg: ModelConfig): Predictor {
  const gate = be.alloc(MAX_BATCH * cfg.nFF); // [nTok, n_ff]
  const score = be.alloc(MAX_BATCH * cfg.nFF); // [nTok, n_ff]
  return {
    name: "cats",
    scores(unit, _h, x, nTok) {
      const u = sparseUnit(unit, "cats");
      if (u.catsThreshold === undefined) {
        throw new Error(
          `${where(u)} has no calibrated threshold (turbosparse.cats_thresholds): ` +
            `run "main.ts convert --calibrate-cats"`,
        );
      }
      be.matmul(gate, u.gate, x, nTok);
      sparseOps(be).unary(score, gate, nTok * cfg.nFF, "abs_silu");
      return { score, threshold: u.catsThreshold, gate };
    },
    bytesPerToken: (unit) => weightBytes(unit.gate),
  };
}

/**
 * The predictor named `kind` for a loaded model.
 * @param kind one of PREDICTOR_KINDS
 */
export function predictorFor(
  kind: PredictorKind,
  be: Backend,
  cfg: ModelConfig,
  weights: Weights,
): Predictor {
  switch (kind) {
    case "dense":
      return densePredictor;
    case "lowrank":
      return lowRankPredictor(be, cfg, weights);
    case "oracle":
      return oraclePredictor(be, cfg);
    case "cats":
      return catsPredictor(be, cfg);
    default:
      throw new Error(`unknown predictor "${kind}": expected ${PREDICTOR_KINDS.join(", ")}`);
  }
}

/** The default for a model: `lowrank` when every sparse FFN has a predictor, else `dense`. */
export function defaultPredictorKind(weights: Weights): PredictorKind {
  const all = units(weights);
  const trained = all.some((u) => u.kind === "sparse") &&
    all.every((u) => u.kind === "sparse" && u.lowRank);
  return trained ? "lowrank" : "dense";
}

/** Every FFN unit of the model, layer by layer (experts in order). */
export function units(weights: Weights): FFNUnit[] {
  const out: FFNUnit[] = [];
  for (const l of weights.layers) {
    if (l.ffn.kind === "moe") out.push(...l.ffn.experts);
    else out.push(l.ffn);
  }
  return out;
}
