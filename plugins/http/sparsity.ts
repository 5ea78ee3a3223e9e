/**
 * The FFN active fraction behind `/metrics`: recorded from the forward pass when asked
 * (`sparsityStats`; recording reads the active index lists back every token, so it costs some
 * speed), else 1 for dense models and NaN (unknown) for sparse ones.
 *
 * @module
 */

import type { Model } from "../../core/model.ts";
import { SparsityRecorder } from "../../core/stats.ts";
import type { StepRunner } from "./scheduler.ts";

/** A step runner that records sparsity, and the gauge that reads it. */
export interface SparsityHooks {
  /** Set when recording: runs forwards with the recorder. */
  step?: StepRunner;
  /** Mean fraction of FFN neurons computed per token so far. */
  ffnActiveFraction: () => number;
}

/**
 * Hooks for `model`.
 * @param model the served model
 * @param record record the active fraction of every forward
 */
export function sparsityHooks(model: Model, record: boolean): SparsityHooks {
  if (!record) {
    const dense = model.predictor.name === "dense";
    return { ffnActiveFraction: () => (dense ? 1 : NaN) };
  }
  const recorder = new SparsityRecorder(model.backend, model.config);
  return {
    step: (m, items) => items.map((it) => m.eval(it.state, it.tokens, false, recorder)),
    ffnActiveFraction: () => {
      const s = recorder.summary(model.predictor.name);
      return s.units.length > 0 ? s.predictedActive : model.predictor.name === "dense" ? 1 : NaN;
    },
  };
}
