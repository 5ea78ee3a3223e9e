/**
 * A Mixture-of-Experts FFN on `nTok` tokens: per token the router picks experts from the gate
 * logits (`ffn_gate_inp · x`), each chosen expert runs as an ordinary FFN (dense, or sparse
 * with its own predictor) and the outputs are mixed: `out = Σ_e w_e · FFN_e(x)`.
 *
 * @module
 */

import { type Backend, type Buf, sparseOps } from "./backend.ts";
import type { ModelConfig } from "./config.ts";
import { mixtralRouter, type Router } from "./router.ts";
import { type FFNRun, type FFNScratch, ffnUnit } from "./sparse.ts";
import type { MoEFFN } from "./weights.ts";

/** Scratch of the MoE FFN; `RunState` provides it. */
export interface MoEScratch extends FFNScratch {
  readonly routerLogits: Buf; // [batch, n_expert]
  readonly h1: Buf; // one token's residual [n_embd]
  readonly x1: Buf; // one token's normed input [n_embd]
  readonly e1: Buf; // one expert's output [n_embd]
}

/**
 * Run the MoE FFN `f` on `x` (`[nTok, n_embd]`), result in `out` (`[nTok, n_embd]`).
 * @param h the residual stream the experts' predictors read `[nTok, n_embd]`
 * @param router default: Mixtral's
 */
export function moeFFN(
  be: Backend,
  cfg: ModelConfig,
  sc: MoEScratch,
  f: MoEFFN,
  h: Buf,
  x: Buf,
  out: Buf,
  nTok: number,
  run: FFNRun,
  router: Router = mixtralRouter,
): void {
  const ops = sparseOps(be);
  const { nEmbd, nExpert, nExpertUsed } = cfg;
  be.matmul(sc.routerLogits, f.router, x, nTok);
  const logits = be.read(sc.routerLogits, 0, nTok * nExpert); // routing is a host decision
  be.write(out, new Float32Array(nTok * nEmbd));
  for (let t = 0; t < nTok; t++) {
    const route = router.route(logits.subarray(t * nExpert, (t + 1) * nExpert), nExpertUsed);
    be.copy(sc.h1, 0, h, t * nEmbd, nEmbd);
    be.copy(sc.x1, 0, x, t * nEmbd, nEmbd);
    for (let k = 0; k < route.ids.length; k++) {
      ffnUnit(be, cfg, sc, f.experts[route.ids[k]], sc.h1, sc.x1, sc.e1, 1, run);
      ops.axpy(out, t * nEmbd, sc.e1, 0, nEmbd, route.weights[k]);
    }
  }
}
