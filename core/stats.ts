/**
 * Sparsity statistics of a run: per FFN (layer, or layer and expert) the predicted-active
 * fraction, and in oracle-comparison mode the true-active fraction and the predictor's recall
 * and precision; plus the bytes of FFN and predictor weights read per token.
 *
 * Recording reads index lists back from the backend every token, so it is opt-in
 * (`GenerateOptions.sparsity`, `generate --stats`).
 *
 * @module
 */

import type { Backend, Buf } from "./backend.ts";
import type { ModelConfig } from "./config.ts";
import { oraclePredictor, type Predictor } from "./predictor.ts";
import type { FFNUnit, UnitId } from "./weights.ts";

/** Statistics of one FFN unit. */
export interface UnitSparsity extends UnitId {
  /** Tokens this FFN processed (for an expert: the tokens routed to it). */
  readonly tokens: number;
  /** Mean fraction of neurons the predictor marked active. */
  readonly predictedActive: number;
  /** Mean fraction of neurons whose activation is non-zero (oracle comparison only). */
  readonly trueActive?: number;
  /** Truly active neurons that were predicted, over all truly active (comparison only). */
  readonly recall?: number;
  /** Predicted neurons that are truly active, over all predicted (comparison only). */
  readonly precision?: number;
  /** FFN and predictor weight bytes read per token it processed. */
  readonly bytesPerToken: number;
}

/** Statistics of a whole run, as `gen.stats.sparsity`. */
export interface SparsityStats {
  readonly predictor: string;
  /** Tokens run through the model. */
  readonly tokens: number;
  readonly units: readonly UnitSparsity[];
  /** Over every FFN visit. */
  readonly predictedActive: number;
  readonly trueActive?: number;
  readonly recall?: number;
  readonly precision?: number;
  /** FFN and predictor weight bytes read per token, all layers together. */
  readonly bytesPerToken: number;
  /** The same for the dense FFNs (every row of gate, up and down, no predictor). */
  readonly denseBytesPerToken: number;
}

/** Running sums of one unit. */
interface Sums {
  id: UnitId;
  nFF: number;
  tokens: number;
  predicted: number;
  truth: number;
  hits: number;
  bytes: number;
  denseBytes: number;
}

/** Collects statistics while the forward pass runs; `summary()` gives the result. */
export class SparsityRecorder {
  readonly #sums = new Map<string, Sums>();
  readonly #oracle: Predictor | undefined;
  #tokens = 0;

  /**
   * @param be the model's backend (the oracle comparison runs on it)
   * @param cfg the model config
   * @param compareOracle also compute the true active sets, for recall and precision
   */
  constructor(readonly be: Backend, readonly cfg: ModelConfig, readonly compareOracle = false) {
    this.#oracle = compareOracle ? oraclePredictor(be, cfg) : undefined;
  }

  /** Count tokens entering the model (once per forward call). */
  addTokens(n: number): void {
    this.#tokens += n;
  }

  /** The true active flags `[nTok, n_ff]` (1 = non-zero activation), or null when not comparing. */
  truth(unit: FFNUnit, h: Buf, x: Buf, nTok: number): Float32Array | null {
    const s = this.#oracle?.scores(unit, h, x, nTok);
    return s ? this.be.read(s.score, 0, nTok * this.cfg.nFF) : null;
  }

  /**
   * Record one token's visit to `unit`.
   * @param predicted active ids, or null for all neurons
   * @param truth flags from `truth()` (or null), read at `truthRow × n_ff`
   * @param bytes weight bytes this visit read
   * @param denseBytes weight bytes the dense FFN would have read
   */
  record(
    unit: FFNUnit,
    predicted: Int32Array | null,
    truth: Float32Array | null,
    truthRow: number,
    bytes: number,
    denseBytes: number,
  ): void {
    const nFF = this.cfg.nFF;
    const key = `${unit.layer}/${unit.expert}`;
    let s = this.#sums.get(key);
    if (!s) {
      const id = { layer: unit.layer, expert: unit.expert };
      s = { id, nFF, tokens: 0, predicted: 0, truth: 0, hits: 0, bytes: 0, denseBytes: 0 };
      this.#sums.set(key, s);
    }
    s.tokens++;
    s.predicted += predicted ? predicted.length : nFF;
    s.bytes += bytes;
    s.denseBytes += denseBytes;
    if (truth) {
      const base = truthRow * nFF;
      for (let i = 0; i < nFF; i++) s.truth += truth[base + i];
      if (predicted) { for (const i of predicted) s.hits += truth[base + i]; }
      else s.hits = s.truth;
    }
  }

  /** The statistics so far, units ordered by layer then expert. */
  summary(predictor: string): SparsityStats {
    const all = [...this.#sums.values()].sort((a, b) =>
      a.id.layer - b.id.layer || a.id.expert - b.id.expert
    );
    const cmp = this.compareOracle;
    const units = all.map((s) => ({
      ...s.id,
      tokens: s.tokens,
      predictedActive: s.predicted / (s.tokens * s.nFF),
      ...(cmp ? ratios(s.truth, s.hits, s.predicted, s.tokens * s.nFF) : {}),
      bytesPerToken: s.bytes / s.tokens,
    }));
    const sum = (f: (s: Sums) => number) => all.reduce((acc, s) => acc + f(s), 0);
    const cells = sum((s) => s.tokens * s.nFF);
    const tokens = Math.max(this.#tokens, 1);
    return {
      predictor,
      tokens: this.#tokens,
      units,
      predictedActive: sum((s) => s.predicted) / (cells || 1),
      ...(cmp
        ? ratios(sum((s) => s.truth), sum((s) => s.hits), sum((s) => s.predicted), cells)
        : {}),
      bytesPerToken: sum((s) => s.bytes) / tokens,
      denseBytesPerToken: sum((s) => s.denseBytes) / tokens,
    };
  }
}

/** True-active fraction, recall and precision from counts (1 when the denominator is 0). */
function ratios(truth: number, hits: number, predicted: number, cells: number) {
  return {
    trueActive: truth / (cells || 1),
    recall: truth > 0 ? hits / truth : 1,
    precision: predicted > 0 ? hits / predicted : 1,
  };
}

/**
 * The next-token loss of a run: Σ over t < targets.length of the cross-entropy (nats) of
 * logits row t (`[n, nVocab]`) against `targets[t]`. Divide by targets.length for the mean.
 */
export function crossEntropySum(
  logits: Float32Array,
  targets: ArrayLike<number>,
  nVocab: number,
): number {
  let total = 0;
  for (let t = 0; t < targets.length; t++) {
    const row = logits.subarray(t * nVocab, (t + 1) * nVocab);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    total += max + Math.log(sum) - row[targets[t]];
  }
  return total;
}
