/**
 * bench/cuda_decode.ts --trace: where a decode step's time goes on the CUDA backend. Block 0 of
 * every kernel records when its PDL wait returned (kernels/cuda/ts_cuda.h), so the time from
 * one kernel's wait to the next one's is what that kernel adds to the step: the critical path,
 * overlap included. Prints the median per kernel of a layer (the layers repeat one pattern of
 * launch shapes) and of the parts before and after the layers.
 *
 * @module
 */

import type { KernelTrace } from "../plugins/cuda/mod.ts";

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};

/** The period and first index of `nLayer` repeats of one pattern of launch shapes. */
export function layerPattern(sig: string[], nLayer: number): { period: number; first: number } {
  for (let period = 1; period * nLayer <= sig.length; period++) {
    for (let first = 0; first + period * nLayer <= sig.length; first++) {
      let ok = true;
      for (let i = first; ok && i < first + period * (nLayer - 1); i++) {
        ok = sig[i] === sig[i + period];
      }
      if (ok) return { period, first };
    }
  }
  throw new Error(`trace: no pattern of launch shapes repeats ${nLayer} times`);
}

/** What `summarizeTrace` finds: the layout of a step and each kernel's median cost. */
export interface TraceSummary {
  perStep: number;
  first: number;
  period: number;
  /** Median µs from the first kernel's wait to the last one's. */
  total: number;
  /**
   * The kernels before the layers, those of one (middle) layer, those after, and (with more
   * than one step) the last kernel to the next step's first wait (early NaN).
   */
  rows: { what: string; add: number; early: number }[];
  /** µs of one layer: the medians of its kernels added. */
  layer: number;
}

/**
 * What each kernel adds to a decode step (median µs), from `steps` traced steps of one graph.
 * @param trace the kernels of the steps, in launch order
 * @param steps decode steps traced
 * @param nLayer layers of the model (the middle nLayer - 2 give the per-layer medians)
 */
export function summarizeTrace(trace: KernelTrace[], steps: number, nLayer: number): TraceSummary {
  if (trace.length === 0 || trace.length % steps !== 0) {
    throw new Error(`trace: ${trace.length} kernels are not ${steps} equal steps`);
  }
  const perStep = trace.length / steps;
  const sig = trace.slice(0, perStep).map((k) => `${k.grid}×${k.block}`);
  const { period, first } = layerPattern(sig, nLayer);
  const adds: number[][] = Array.from({ length: perStep }, () => []);
  const early: number[][] = Array.from({ length: perStep }, () => []);
  const total: number[] = [];
  for (let s = 0; s < steps; s++) {
    const k = trace.slice(s * perStep, (s + 1) * perStep);
    for (let i = 0; i + 1 < perStep; i++) adds[i].push((k[i + 1].waitDone - k[i].waitDone) / 1e3);
    for (let i = 0; i < perStep; i++) early[i].push((k[i].waitDone - k[i].start) / 1e3);
    total.push((k[perStep - 1].waitDone - k[0].waitDone) / 1e3);
  }
  const row = (what: string, idx: number[]) => ({
    what,
    add: median(idx.flatMap((i) => adds[i])),
    early: median(idx.flatMap((i) => early[i])),
  });
  const rows = [];
  for (let i = 0; i < first; i++) rows.push(row(`before ${i} (${sig[i]})`, [i]));
  let layer = 0;
  const middle = Math.max(nLayer - 2, 1), from = nLayer > 2 ? 1 : 0; // skip the first and last
  for (let j = 0; j < period; j++) {
    const idx = Array.from({ length: middle }, (_, l) => first + (l + from) * period + j);
    const r = row(`layer ${j} (${sig[first + j]})`, idx);
    layer += r.add;
    rows.push(r);
  }
  for (let i = first + period * nLayer; i < perStep - 1; i++) {
    rows.push(row(`after (${sig[i]})`, [i]));
  }
  // From the last kernel's wait to the next step's first: the last kernel, the gap between
  // steps (a graph launch; in the host loop also the logits read) and nothing else.
  const gap: number[] = [];
  for (let s = 0; s + 1 < steps; s++) {
    gap.push((trace[(s + 1) * perStep].waitDone - trace[(s + 1) * perStep - 1].waitDone) / 1e3);
  }
  if (gap.length) {
    rows.push({ what: `last (${sig[perStep - 1]}) to next step`, add: median(gap), early: NaN });
  }
  return { perStep, first, period, total: median(total), rows, layer };
}

/** Prints `summarizeTrace` of the traced steps. */
export function reportTrace(trace: KernelTrace[], steps: number, nLayer: number): void {
  const t = summarizeTrace(trace, steps, nLayer);
  console.log(
    `trace: ${t.perStep} kernels per decode step, ${t.first} before the layers, ${t.period} per ` +
      `layer; first wait to last wait ${t.total.toFixed(1)} µs (median of ${steps} steps)`,
  );
  for (const r of t.rows) {
    console.log(
      `  ${r.what.padEnd(28)} adds ${r.add.toFixed(2).padStart(6)} µs` +
        (Number.isNaN(r.early) ? "" : `, block 0 waited ${r.early.toFixed(2).padStart(6)} µs`),
    );
  }
  console.log(`  one layer (middle layers, medians added): ${t.layer.toFixed(1)} µs`);
}
