/**
 * bench/cuda_decode.ts: greedy decoding on the device (`decodeGreedy`, as `generate` at
 * temperature 0), timed against the host loop and checked to pick its tokens.
 *
 * @module
 */

import type { ModelConfig } from "../core/config.ts";
import { decodeGreedy, type FFNRun, forward, type RunState } from "../core/forward.ts";
import { argmax } from "../core/sampler.ts";
import type { Weights } from "../core/weights.ts";

/** What the greedy run needs from the bench. */
export interface GreedyBench {
  w: Weights;
  cfg: ModelConfig;
  run: FFNRun;
  tokens: Int32Array;
  nPrompt: number;
  nDecode: number;
  /** Steps per host round trip. */
  chunk: number;
  /** The host loop's tokens/s, for the ratio. */
  decodeTps: number;
}

/**
 * `nDecode` greedy tokens after the prompt on a fresh state (`fresh(nPrompt)` prefilled),
 * `chunk` steps per round trip; then the same positions again with the graph captured
 * ("captured"); then the first 32 tokens through the host loop (forward, logits read, argmax)
 * on another fresh state, which must be the same. Prints the line and returns tokens/s.
 */
export function greedyDecode(b: GreedyBench, fresh: (nPrompt: number) => RunState): number {
  const { w, cfg, run, tokens, nPrompt, nDecode, chunk } = b;
  const decodeAll = (st: RunState, tok: number): { picked: number[]; tps: number } => {
    const picked: number[] = [], t0 = performance.now();
    while (picked.length < nDecode) {
      const n = Math.min(chunk, nDecode - picked.length);
      const out = decodeGreedy(w, cfg, st, tok, n, run)!;
      picked.push(...out);
      tok = out[n - 1];
    }
    return { picked, tps: nDecode / ((performance.now() - t0) / 1000) };
  };
  const sg = fresh(nPrompt);
  const { picked, tps } = decodeAll(sg, tokens[nPrompt]);
  sg.pos -= nDecode; // once more over the same positions, every graph captured
  const warm = decodeAll(sg, picked[nDecode - 1]).tps;
  const sh = fresh(nPrompt), nCheck = Math.min(32, nDecode);
  let same = 0;
  for (let i = 0, tok = tokens[nPrompt]; i < nCheck; i++) {
    tok = argmax(forward(w, cfg, sh, Int32Array.of(tok), false, run));
    if (tok === picked[i]) same++;
  }
  console.log(
    `greedy decode on the device: ${nDecode} tokens at ${tps.toFixed(1)} tokens/s ` +
      `(captured: ${warm.toFixed(1)}) ` +
      `(${chunk} per round trip; ${(tps / b.decodeTps).toFixed(3)}× the host loop); ` +
      `first ${nCheck} tokens as the host's argmax loop: ${
        same === nCheck ? "yes" : `no (${same})`
      }`,
  );
  return tps;
}
