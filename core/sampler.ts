/**
 * Token sampling from logits, in llama.cpp's order: penalties → top-k → top-p → min-p →
 * temperature → a draw from a seeded PRNG. Temperature 0 is greedy (argmax, lowest id on
 * ties). The same seed, settings, logits and history give the same tokens.
 *
 * @example
 * ```ts
 * import { Sampler } from "./sampler.ts";
 * const sampler = new Sampler({ temperature: 0 });
 * sampler.sample(new Float32Array([0.1, 2, -1]), []); // 1
 * ```
 *
 * @module
 */

import { z } from "zod";

/** Sampler settings; defaults follow llama.cpp's CLI. */
export const samplerOptionsSchema = z.object({
  /** Logits are divided by it; 0 = greedy. */
  temperature: z.number().min(0).default(0.8),
  /** Keep the k most likely tokens; 0 = off. */
  topK: z.number().int().min(0).default(40),
  /** Keep the smallest set of top tokens whose probability sums to at least p; 1 = off. */
  topP: z.number().gt(0).max(1).default(0.95),
  /** Drop tokens less likely than minP times the most likely one; 0 = off. */
  minP: z.number().min(0).max(1).default(0.05),
  /** Divides positive (multiplies negative) logits of recent tokens; 1 = off. */
  repeatPenalty: z.number().gt(0).default(1),
  /** How many recent tokens the penalties look at; 0 = none, -1 = the whole history. */
  repeatLastN: z.number().int().min(-1).default(64),
  /** OpenAI-style: subtracted once from the logit of every recent token. */
  presencePenalty: z.number().min(-2).max(2).default(0),
  /** OpenAI-style: subtracted per occurrence of a recent token. */
  frequencyPenalty: z.number().min(-2).max(2).default(0),
  /** PRNG seed (uint32); default: random. */
  seed: z.number().int().min(0).max(0xffffffff).optional(),
}); // unknown keys are stripped: generate options pass through here; `.strict()` for HTTP bodies

/** Sampler settings as a caller gives them (every field optional). */
export type SamplerOptions = z.input<typeof samplerOptionsSchema>;
/** Sampler settings with defaults filled in. */
export type ResolvedSamplerOptions = z.infer<typeof samplerOptionsSchema>;

/** Parse and validate options; throws an error naming each bad field. */
export function parseSamplerOptions(opts: SamplerOptions = {}): ResolvedSamplerOptions {
  const r = samplerOptionsSchema.safeParse(opts);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`);
    throw new Error(`invalid sampler options: ${issues.join("; ")}`);
  }
  return r.data;
}

/** A small seeded PRNG (mulberry32): uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Picks the next token from a row of logits; holds PRNG state, so keep one per sequence. */
export class Sampler {
  /** The validated settings, defaults filled in. */
  readonly options: ResolvedSamplerOptions;
  /** The seed in use (drawn at random when none was given). */
  readonly seed: number;
  readonly #rand: () => number;
  /** Penalised logits, reused between calls: `[n_vocab]`. */
  #work = new Float32Array(0);

  /** Validate `opts` (throws naming the bad field) and seed the PRNG. */
  constructor(opts: SamplerOptions = {}) {
    this.options = parseSamplerOptions(opts);
    this.seed = this.options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    this.#rand = mulberry32(this.seed);
  }

  /** True when `sample` is the argmax of the logits alone: greedy, no penalty in effect. */
  get isArgmax(): boolean {
    const o = this.options;
    return o.temperature === 0 &&
      (o.repeatLastN === 0 ||
        (o.repeatPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0));
  }

  /**
   * The next token id for `logits` (`[n_vocab]`), given the tokens so far (`history`, oldest
   * first, used by the penalties).
   */
  sample(logits: Float32Array, history: readonly number[]): number {
    const o = this.options;
    const work = this.#penalised(logits, history);
    if (o.temperature === 0) return argmax(work);

    // Candidates, best first when any filter needs an order.
    let ids: Int32Array;
    if (o.topK > 0 && o.topK < work.length) ids = topK(work, o.topK);
    else if (o.topP < 1) ids = sortedIds(work);
    else ids = Int32Array.from(work.keys());

    if (o.topP < 1) ids = ids.subarray(0, nucleusSize(work, ids, o.topP));

    let max = -Infinity;
    for (const id of ids) max = Math.max(max, work[id]);
    if (max === -Infinity) throw new Error("sampler: every logit is -Infinity");
    if (o.minP > 0) {
      // p_i >= minP · p_max  <=>  logit_i >= max + ln(minP)
      const floor = max + Math.log(o.minP);
      ids = ids.filter((id) => work[id] >= floor);
    }

    // Softmax at the temperature, over the survivors; max first keeps exp() finite.
    const weights = new Float64Array(ids.length);
    let sum = 0;
    for (let i = 0; i < ids.length; i++) {
      weights[i] = Math.exp((work[ids[i]] - max) / o.temperature);
      sum += weights[i];
    }
    let r = this.#rand() * sum;
    for (let i = 0; i < ids.length; i++) {
      r -= weights[i];
      if (r < 0) return ids[i];
    }
    return ids[ids.length - 1]; // r landed on the rounding slack of the sum
  }

  /** A copy of `logits` with the repetition, presence and frequency penalties applied. */
  #penalised(logits: Float32Array, history: readonly number[]): Float32Array {
    if (logits.length === 0) throw new Error("sampler: logits are empty");
    if (this.#work.length !== logits.length) this.#work = new Float32Array(logits.length);
    const work = this.#work;
    work.set(logits);
    for (let i = 0; i < work.length; i++) {
      if (Number.isNaN(work[i])) throw new Error(`sampler: logit ${i} is NaN`);
    }
    const o = this.options;
    const n = o.repeatLastN === -1 ? history.length : Math.min(o.repeatLastN, history.length);
    if (n === 0) return work;
    const counts = new Map<number, number>();
    for (let i = history.length - n; i < history.length; i++) {
      counts.set(history[i], (counts.get(history[i]) ?? 0) + 1);
    }
    for (const [id, count] of counts) {
      if (id < 0 || id >= work.length) continue; // e.g. a control token outside the logits
      let l = work[id];
      l = l <= 0 ? l * o.repeatPenalty : l / o.repeatPenalty;
      work[id] = l - count * o.frequencyPenalty - o.presencePenalty;
    }
    return work;
  }
}

/** Index of the largest value; the lowest index wins ties. */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** True when token a ranks before token b: higher logit, then lower id. */
function before(values: Float32Array, a: number, b: number): boolean {
  return values[a] > values[b] || (values[a] === values[b] && a < b);
}

/**
 * The ids of the `k` largest values, best first (ties: lower id first). A size-k min-heap
 * keeps this O(n log k), so a 32000-token vocabulary is never fully sorted.
 */
export function topK(values: Float32Array, k: number): Int32Array {
  const n = Math.min(k, values.length);
  const heap = new Int32Array(n); // heap[0] is the worst of the kept ids
  const worse = (a: number, b: number) => before(values, b, a);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && worse(heap[l], heap[m])) m = l;
      if (r < n && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) heap[i] = i;
  for (let i = (n >> 1) - 1; i >= 0; i--) down(i);
  for (let id = n; id < values.length; id++) {
    if (before(values, id, heap[0])) {
      heap[0] = id;
      down(0);
    }
  }
  return heap.sort((a, b) => (before(values, a, b) ? -1 : 1));
}

/** Every id, best first (ties: lower id first). */
function sortedIds(values: Float32Array): Int32Array {
  return Int32Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
}

/** How many of the best-first `ids` form the smallest set with probability ≥ p (at least 1). */
function nucleusSize(values: Float32Array, ids: Int32Array, p: number): number {
  const max = values[ids[0]];
  let total = 0;
  for (const id of ids) total += Math.exp(values[id] - max);
  let cum = 0;
  for (let i = 0; i < ids.length; i++) {
    cum += Math.exp(values[ids[i]] - max) / total;
    if (cum >= p) return i + 1;
  }
  return ids.length;
}

/**
 * Natural-log probabilities of `logits` at temperature 1 (a numerically stable log-softmax),
 * for reporting `logprobs`.
 */
export function logprobs(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l);
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  const lse = max + Math.log(sum);
  return logits.map((l) => l - lse);
}
