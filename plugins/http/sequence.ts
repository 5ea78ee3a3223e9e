/**
 * One request's generation: its own RunState (KV cache), sampler, streaming decoder, stop
 * matcher and logprobs. The scheduler feeds it one forward at a time: `nextTokens()` says what
 * to run (a prompt chunk, then the last sampled token), `accept(logits)` takes the result.
 *
 * @module
 */

import { MAX_BATCH, type RunState } from "../../core/forward.ts";
import type { Model } from "../../core/model.ts";
import { logprobs as logSoftmax, Sampler, type SamplerOptions, topK } from "../../core/sampler.ts";
import type { TokenDecoder } from "../../core/tokenizer.ts";
import { ApiError } from "./errors.ts";
import { type TokenText, tokenText } from "./prompt.ts";
import { StopMatcher } from "./stop.ts";

/** What a request asks the scheduler to generate. */
export interface SequenceSpec {
  /** Prompt ids (already checked to fit: prompt + maxTokens ≤ context). */
  promptIds: number[];
  /** Tokens to generate at most. */
  maxTokens: number;
  /** Sampler settings (validated by the Sampler). */
  sampling: SamplerOptions;
  /** Stop strings; the output ends before the first one. */
  stops: readonly string[];
  /** Alternatives to report per token; undefined = no logprobs. */
  topLogprobs?: number;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
  /** Time limit from submission, in milliseconds. */
  timeoutMs?: number;
}

/** The logprob of one generated token and of its best alternatives. */
export interface TokenLogprob extends TokenText {
  /** Natural log of the token's probability (temperature 1, before truncation). */
  logprob: number;
  /** Offset of the token's text in the generated text (UTF-16 units). */
  textOffset: number;
  /** The most likely tokens at this position, best first. */
  top: (TokenText & { logprob: number })[];
}

/** Why a generation ended, in OpenAI's words. */
export type FinishReason = "stop" | "length";

/** Token counts of a request. */
export interface Usage {
  /** Tokens of the prompt (after the chat template). */
  prompt_tokens: number;
  /** Tokens generated, including any a stop string cut off. */
  completion_tokens: number;
  /** The sum of both. */
  total_tokens: number;
}

/** What a sequence reports, in order: text pieces, then one end or one error. */
export type SequenceEvent =
  | { type: "text"; text: string; logprobs: TokenLogprob[] | undefined }
  | { type: "end"; finishReason: FinishReason; usage: Usage }
  | { type: "error"; error: ApiError };

/** A request's generation state, from admission to its end. */
export class Sequence {
  /** KV cache; created when the sequence gets a slot, dropped when it ends. */
  state: RunState | undefined;
  /** Set once an end or error has been reported. */
  done = false;
  /** Tokens generated so far. */
  generated = 0;
  readonly #sampler: Sampler;
  readonly #history: number[];
  readonly #stop: StopMatcher;
  #decoder: TokenDecoder | undefined;
  #fed = 0; // prompt tokens in the KV cache
  #last = -1; // the sampled token not yet in the KV cache
  #textLength = 0; // UTF-16 units of decoded text, released or held
  #released = 0; // UTF-16 units sent to the client
  #pendingLogprobs: { entry: TokenLogprob; end: number }[] = [];

  /**
   * @param model the model whose tokenizer and KV cache shape to use
   * @param spec what to generate
   * @param emit receives text, then an end or an error
   */
  constructor(
    readonly model: Model,
    readonly spec: SequenceSpec,
    readonly emit: (event: SequenceEvent) => void,
  ) {
    this.#sampler = new Sampler(spec.sampling);
    this.#history = [...spec.promptIds];
    this.#stop = new StopMatcher(spec.stops);
  }

  /** True until the whole prompt is in the KV cache. */
  get prefilling(): boolean {
    return this.#fed < this.spec.promptIds.length;
  }

  /** Allocate the KV cache (on admission, so queued requests hold no memory). */
  start(): void {
    this.state = this.model.newState();
    this.#decoder = this.model.tokenizer.decoder();
  }

  /** Tokens for the next forward: the next prompt chunk, else the last sampled token. */
  nextTokens(): number[] {
    if (this.prefilling) return this.spec.promptIds.slice(this.#fed, this.#fed + MAX_BATCH);
    return [this.#last];
  }

  /**
   * Take the logits of the forward over `nextTokens()`: sample, decode, match stops, emit.
   * @param logits `[n_vocab]` of the last token fed
   * @param fed how many tokens that forward ran
   */
  accept(logits: Float32Array, fed: number): void {
    if (this.prefilling) {
      this.#fed += fed;
      if (this.prefilling) return;
    }
    const tok = this.model.tokenizer;
    const id = this.#sampler.sample(logits, this.#history);
    if (tok.isEog(id)) return this.#finish("stop", false);
    this.#history.push(id);
    this.generated++;
    this.#last = id;
    const piece = this.#decoder!.push(id);
    if (this.spec.topLogprobs !== undefined) this.#noteLogprob(logits, id, piece.length);
    this.#textLength += piece.length;
    const { text, stopped } = this.#stop.push(piece);
    this.#send(text);
    if (stopped) return this.#finish("stop", true);
    if (this.generated >= this.spec.maxTokens) this.#finish("length", false);
  }

  /** End with an error (time limit, disconnect, a failed step); idempotent. */
  fail(error: ApiError): void {
    if (this.done) return;
    this.done = true;
    this.state = undefined;
    this.emit({ type: "error", error });
  }

  #finish(reason: FinishReason, stopped: boolean): void {
    if (!stopped) {
      const rest = this.#decoder!.flush();
      this.#textLength += rest.length;
      const { text, stopped: late } = this.#stop.push(rest);
      this.#send(late ? text : text + this.#stop.flush(), !late);
      if (late) reason = "stop";
    }
    this.#pendingLogprobs = [];
    this.done = true;
    this.state = undefined; // the KV cache is garbage from here on
    const p = this.spec.promptIds.length;
    this.emit({
      type: "end",
      finishReason: reason,
      usage: {
        prompt_tokens: p,
        completion_tokens: this.generated,
        total_tokens: p + this.generated,
      },
    });
  }

  /** Emit released text with the logprobs of the tokens it completes. */
  #send(text: string, final = false): void {
    this.#released += text.length;
    let logprobs: TokenLogprob[] | undefined;
    if (this.spec.topLogprobs !== undefined) {
      const ready = this.#pendingLogprobs.filter((p) => p.end <= this.#released || final);
      this.#pendingLogprobs = this.#pendingLogprobs.slice(ready.length);
      logprobs = ready.map((p) => p.entry);
      if (text === "" && logprobs.length === 0) return;
    } else if (text === "") return;
    this.emit({ type: "text", text, logprobs });
  }

  #noteLogprob(logits: Float32Array, id: number, pieceLength: number): void {
    const tok = this.model.tokenizer;
    const lp = logSoftmax(logits);
    const top = this.spec.topLogprobs! > 0 ? [...topK(lp, this.spec.topLogprobs!)] : [];
    const entry: TokenLogprob = {
      ...tokenText(tok, id),
      logprob: lp[id],
      textOffset: this.#textLength,
      top: top.map((t) => ({ ...tokenText(tok, t), logprob: lp[t] })),
    };
    this.#pendingLogprobs.push({ entry, end: this.#textLength + pieceLength });
  }
}
