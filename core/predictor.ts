/**
 * The Predictor contract: which FFN neurons will fire for a token, before the FFN runs.
 * A sparse FFN then reads only those rows of its weights.
 *
 * @module
 */

import type { Buf } from "./backend.ts";

/** Chooses the active neurons of one FFN (one layer, or one expert of a layer). */
export interface Predictor {
  readonly name: string;
  /**
   * Active neuron ids (ascending) of the FFN of `layer` (and `expert`, for MoE) for one token
   * whose residual stream is `h` (`[n_embd]`), or `null` when every neuron is active.
   */
  predict(layer: number, h: Buf, expert?: number): Int32Array | null;
}

/** The predictor that keeps every neuron: the dense FFN. */
export const densePredictor: Predictor = {
  name: "dense",
  predict: () => null,
};
