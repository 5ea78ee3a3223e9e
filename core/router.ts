/**
 * The Router contract: which experts of a Mixture-of-Experts layer process a token, and with
 * what weights their outputs are mixed.
 *
 * @module
 */

/** Experts chosen for one token and their mixing weights (same length). */
export interface Route {
  readonly ids: Int32Array;
  readonly weights: Float32Array;
}

/** Picks `k` experts from the gate logits of one token. */
export interface Router {
  readonly name: string;
  route(logits: Float32Array, k: number): Route;
}

/**
 * Mixtral routing: softmax over the gate logits, keep the top `k`, renormalise their weights
 * to sum to one. Ties go to the lower expert id.
 */
export const mixtralRouter: Router = {
  name: "mixtral",
  route(logits: Float32Array, k: number): Route {
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    const ids = Int32Array.from(order.slice(0, k));
    // softmax then renormalise over the kept ones equals a softmax over the kept logits
    const max = logits[ids[0]];
    const weights = Float32Array.from(ids, (i) => Math.exp(logits[i] - max));
    const sum = weights.reduce((s, w) => s + w, 0);
    for (let i = 0; i < k; i++) weights[i] /= sum;
    return { ids, weights };
  },
};
