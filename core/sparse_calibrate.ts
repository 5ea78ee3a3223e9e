/**
 * Calibration of the training-free threshold predictor (in the spirit of CATS and TEAL): run
 * the model densely on sample text, collect each FFN's |silu(gate · x)| values, and pick per
 * layer (and expert) the threshold below which a `sparsity` fraction of them fall.
 *
 * @module
 */

import { sparseOps } from "./backend.ts";
import { MAX_BATCH } from "./forward.ts";
import type { Model } from "./model.ts";
import type { Predictor } from "./predictor.ts";

/** Values kept per FFN at most (a uniform sample beyond that). */
const SAMPLE = 1 << 20;

/**
 * Per-FFN thresholds `[n_layer × max(n_expert, 1)]` keeping about `1 - sparsity` of the
 * neurons on text like `texts`: store them as `turbosparse.cats_thresholds`.
 * @param model the model, any layout (it runs densely here)
 * @param texts sample text, each encoded and run as its own sequence
 * @param sparsity target fraction of neurons skipped, in [0, 1)
 * @example
 * ```ts ignore
 * const t = calibrateCats(model, ["It is a truth universally acknowledged ..."], 0.5);
 * ```
 */
export function calibrateCats(
  model: Model,
  texts: readonly string[],
  sparsity: number,
): Float64Array {
  if (!(sparsity >= 0 && sparsity < 1)) {
    throw new Error(`calibrateCats: sparsity must be in [0, 1), got ${sparsity}`);
  }
  const cfg = model.config, be = model.backend;
  const nUnits = cfg.nLayer * Math.max(cfg.nExpert, 1);
  const samples = Array.from({ length: nUnits }, (_, u) => new Reservoir(SAMPLE, u + 1));
  const gate = be.alloc(MAX_BATCH * cfg.nFF); // [nTok, n_ff]
  const recorder: Predictor = {
    name: "cats-calibration",
    scores(unit, _h, x, nTok) {
      be.matmul(gate, unit.gate, x, nTok);
      sparseOps(be).unary(gate, gate, nTok * cfg.nFF, "abs_silu");
      const u = unit.layer * Math.max(cfg.nExpert, 1) + Math.max(unit.expert, 0);
      for (const v of be.read(gate, 0, nTok * cfg.nFF)) samples[u].add(v);
      return null; // every neuron: the model runs densely
    },
    bytesPerToken: () => 0,
  };
  const before = model.predictor;
  model.setPredictor(recorder);
  try {
    for (const text of texts) {
      const ids = model.tokenizer.encode(text).slice(0, model.contextLength);
      if (ids.length > 0) model.eval(model.newState(), ids);
    }
  } finally {
    model.setPredictor(before);
  }
  return Float64Array.from(samples, (s, u) => {
    if (s.size === 0) throw new Error(`calibrateCats: FFN ${u} saw no tokens; give more text`);
    return s.quantile(sparsity);
  });
}

/** A uniform sample of at most `cap` values (reservoir sampling, seeded), grown on demand. */
class Reservoir {
  #values = new Float32Array(1024);
  #seen = 0;
  #state: number;

  constructor(readonly cap: number, seed: number) {
    this.#state = seed >>> 0 || 1;
  }

  get size(): number {
    return Math.min(this.#seen, this.cap);
  }

  add(v: number): void {
    if (this.#seen < this.cap) {
      if (this.#seen === this.#values.length) {
        const grown = new Float32Array(Math.min(this.cap, 2 * this.#values.length));
        grown.set(this.#values);
        this.#values = grown;
      }
      this.#values[this.#seen] = v;
    } else {
      const j = this.#next() % (this.#seen + 1);
      if (j < this.cap) this.#values[j] = v;
    }
    this.#seen++;
  }

  /** The sample value with a fraction `q` of the sample below it. */
  quantile(q: number): number {
    const sorted = this.#values.slice(0, this.size).sort();
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  /** xorshift32. */
  #next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }
}
