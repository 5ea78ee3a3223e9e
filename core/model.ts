/**
 * A loaded model: config, tokenizer and prepared weights on one backend, with the generate
 * loop. Loading a file from disk and choosing a backend live in `mod.ts`, outside the core.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { configFromGGUF, type ModelConfig } from "./config.ts";
import { decodeGreedy, forward, MAX_BATCH, RunState } from "./forward.ts";
import type { GGUFFile } from "./gguf.ts";
import {
  defaultPredictorKind,
  type Predictor,
  predictorFor,
  type PredictorKind,
} from "./predictor.ts";
import { SparsityRecorder, type SparsityStats } from "./stats.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";
import { type Tokenizer, tokenizerFromMetadata } from "./tokenizer.ts";
import { type LoadProgress, loadWeights, type Weights } from "./weights.ts";

/** Greedy tokens the device picks per host round trip in `generate` (about 35 ms of tokens). */
export const GREEDY_CHUNK = 16;

/** Default KV-cache length when the caller gives none (the model's own may be far larger). */
export const DEFAULT_CONTEXT = 2048;

/** Options for the `Model` constructor. */
export interface ModelOptions {
  /** KV-cache length (default DEFAULT_CONTEXT, at most the model's own). */
  contextLength?: number;
  onProgress?: LoadProgress;
  /** Why the backend was chosen. */
  backendReason?: string;
  /** Called by `close()`, e.g. to unmap the file. */
  onClose?: () => void;
  /** Predictor of sparse FFNs (default: "lowrank" when the file has predictors, else "dense"). */
  predictor?: PredictorKind | Predictor;
}

/** Options for `Model.generate`. */
export interface GenerateOptions extends SamplerOptions {
  /** Tokens to generate at most (default 128). */
  maxTokens?: number;
  /** Stop early when aborted; the generation ends with stopReason "abort". */
  signal?: AbortSignal;
  /** Collect sparsity statistics into `stats.sparsity`; `compareOracle` adds recall/precision. */
  sparsity?: { compareOracle?: boolean };
}

/** Why a generation ended. */
export type StopReason = "eos" | "length" | "context" | "abort";

/** Timings and counts of one generation. */
export interface GenerateStats {
  promptTokens: number;
  generatedTokens: number;
  /** Milliseconds spent on the prompt (batched prefill). */
  prefillMs: number;
  /** Milliseconds spent producing the generated tokens after the first. */
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  stopReason: StopReason;
  /** Per-FFN sparsity, when `GenerateOptions.sparsity` asked for it. */
  sparsity?: SparsityStats;
}

/** A model ready to run on one backend. */
export class Model {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly weights: Weights;
  /** KV-cache length of new run states. */
  readonly contextLength: number;
  /** Why this backend was chosen (from the registry), for `inspect` and `--stats`. */
  readonly backendReason: string;
  readonly #onClose: (() => void) | undefined;
  #predictor: Predictor;

  /**
   * Prepare a parsed GGUF file for `backend`.
   * @param file the parsed model file (its tensors must stay valid while the model lives)
   * @param backend the backend to prepare weights for and run on
   * @param source the file's name, for error messages
   */
  constructor(
    readonly file: GGUFFile,
    readonly backend: Backend,
    readonly source: string,
    options: ModelOptions = {},
  ) {
    this.backendReason = options.backendReason ?? "given by the caller";
    this.#onClose = options.onClose;
    this.config = configFromGGUF(file, source);
    this.tokenizer = tokenizerFromMetadata(file.metadata, source);
    this.weights = loadWeights(file, this.config, backend, source, options.onProgress);
    this.contextLength = Math.min(options.contextLength ?? DEFAULT_CONTEXT, this.config.nCtx);
    this.#predictor = this.#resolve(options.predictor ?? defaultPredictorKind(this.weights));
  }

  /** The predictor sparse FFNs run with. */
  get predictor(): Predictor {
    return this.#predictor;
  }

  /**
   * Switch the predictor of sparse FFNs (e.g. "oracle" to evaluate, "cats" for the
   * training-free one).
   * @param p a predictor kind or a Predictor object
   */
  setPredictor(p: PredictorKind | Predictor): void {
    this.#predictor = this.#resolve(p);
  }

  #resolve(p: PredictorKind | Predictor): Predictor {
    return typeof p === "string" ? predictorFor(p, this.backend, this.config, this.weights) : p;
  }

  /** Release the backend and the mapped file; the model is unusable afterwards. */
  close(): void {
    this.backend.close?.();
    this.#onClose?.();
  }

  /** A fresh sequence with its own KV cache. */
  newState(): RunState {
    return new RunState(this.backend, this.config, this.contextLength);
  }

  /**
   * Feed tokens to a run state (in batches of up to MAX_BATCH) and return the logits of the
   * last one, or of every one when `allLogits` (`[tokens.length, n_vocab]`).
   * @param stats collects sparsity statistics when given
   */
  eval(
    state: RunState,
    tokens: readonly number[],
    allLogits = false,
    stats?: SparsityRecorder,
  ): Float32Array {
    if (tokens.length === 0) throw new Error("eval needs at least one token");
    if (state.pos + tokens.length > state.nCtx) {
      throw new Error(
        `${tokens.length} tokens at position ${state.pos} do not fit the context of ${state.nCtx}`,
      );
    }
    const parts: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i += MAX_BATCH) {
      const chunk = Int32Array.from(tokens.slice(i, i + MAX_BATCH));
      const last = i + MAX_BATCH >= tokens.length;
      const run = { predictor: this.#predictor, stats };
      const logits = forward(this.weights, this.config, state, chunk, allLogits, run);
      if (allLogits || last) parts.push(logits);
    }
    return parts.length === 1 ? parts[0] : concat(parts);
  }

  /**
   * Greedy decoding on the backend's device, when it can (`Backend.stepGreedy`): feeds
   * `token` at `state.pos` and returns the `n` tokens picked after it (the argmax of each
   * step's logits, the last one not fed yet); null when the backend cannot.
   */
  decodeGreedy(state: RunState, token: number, n: number): number[] | null {
    const run = { predictor: this.#predictor };
    const out = decodeGreedy(this.weights, this.config, state, token, n, run);
    return out ? [...out] : null;
  }

  /**
   * Generate a continuation of `prompt`, streamed as text pieces.
   * @example
   * ```ts ignore
   * const gen = model.generate("It is a truth", { maxTokens: 32, temperature: 0 });
   * for await (const piece of gen) console.log(piece);
   * console.log(gen.stats?.decodeTokensPerSecond);
   * ```
   */
  generate(prompt: string, options: GenerateOptions = {}): Generation {
    return new Generation(this, prompt, options);
  }
}

/** One streaming generation; `stats` is set once iteration has finished. */
export class Generation implements AsyncIterable<string> {
  stats: GenerateStats | undefined;

  constructor(
    private readonly model: Model,
    private readonly prompt: string,
    private readonly options: GenerateOptions,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    const { model, options } = this;
    const tok = model.tokenizer;
    const maxTokens = options.maxTokens ?? 128;
    const sampler = new Sampler(options);
    const ids = tok.encode(this.prompt);
    if (ids.length === 0) throw new Error("the prompt encodes to no tokens");
    if (ids.length >= model.contextLength) {
      throw new Error(
        `the prompt is ${ids.length} tokens, which does not fit the context of ${model.contextLength}`,
      );
    }
    const state = model.newState();
    const recorder = options.sparsity
      ? new SparsityRecorder(model.backend, model.config, options.sparsity.compareOracle)
      : undefined;
    const t0 = performance.now();
    let logits = model.eval(state, ids, false, recorder);
    const t1 = performance.now();
    const history = [...ids];
    const decoder = tok.decoder({ continuing: this.prompt.length > 0 });
    let generated = 0, stopReason: StopReason = "length";
    // Greedy without penalties: the backend may pick the tokens itself, GREEDY_CHUNK steps
    // per host round trip (Model.decodeGreedy); the same tokens as the sampler's argmax.
    let onDevice = sampler.isArgmax && !recorder;
    let next = sampler.sample(logits, history);
    let ahead: number[] = []; // tokens the device picked and the loop has not taken yet
    while (generated < maxTokens) {
      if (options.signal?.aborted) {
        stopReason = "abort";
        break;
      }
      if (tok.isEog(next)) {
        stopReason = "eos";
        break;
      }
      history.push(next);
      generated++;
      const piece = decoder.push(next);
      if (piece) yield piece;
      if (generated === maxTokens) break;
      if (ahead.length === 0 && state.pos >= state.nCtx) {
        stopReason = "context";
        break;
      }
      if (ahead.length === 0 && onDevice) {
        const n = Math.min(GREEDY_CHUNK, maxTokens - generated, state.nCtx - state.pos);
        const picked = model.decodeGreedy(state, next, n);
        if (picked) ahead = picked;
        else onDevice = false; // the backend cannot: the host samples from here on
      }
      if (ahead.length > 0) {
        next = ahead.shift()!;
        continue;
      }
      logits = model.eval(state, [next], false, recorder);
      next = sampler.sample(logits, history);
    }
    const rest = decoder.flush();
    if (rest) yield rest;
    const t2 = performance.now();
    const decoded = Math.max(0, generated - 1); // the first token came from the prefill logits
    this.stats = {
      promptTokens: ids.length,
      generatedTokens: generated,
      prefillMs: t1 - t0,
      decodeMs: t2 - t1,
      prefillTokensPerSecond: ids.length / ((t1 - t0) / 1000),
      decodeTokensPerSecond: decoded > 0 ? decoded / ((t2 - t1) / 1000) : 0,
      stopReason,
      sparsity: recorder?.summary(model.predictor.name),
    };
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
