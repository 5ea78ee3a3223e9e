/**
 * The request scheduler: it owns the model. Requests wait in a bounded queue for one of
 * `parallel` slots; active sequences take turns round-robin, one forward each (a prompt chunk
 * or one decode token), with a yield after every step and a full event-loop turn at least every
 * FLUSH_INTERVAL_MS, so streamed chunks flush and aborts are seen. Every sequence has its own
 * RunState; none touches another's.
 *
 * Batching later: `StepRunner` takes a list of (state, tokens). Today each call carries one
 * sequence; a continuous-batching runner can take every decoding sequence of a round at once
 * without changing `Sequence` or the HTTP layer.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { RunState } from "../../core/forward.ts";
import type { Model } from "../../core/model.ts";
import { ApiError, toApiError } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import { Sequence, type SequenceEvent, type SequenceSpec } from "./sequence.ts";

/** One forward to run: feed `tokens` to `state`. */
export interface StepItem {
  /** The sequence's own KV cache. */
  state: RunState;
  /** Token ids to append: a prompt chunk or the last sampled token. */
  tokens: number[];
}

/** Runs one forward per item and returns each item's last-token logits `[n_vocab]`. */
export type StepRunner = (model: Model, items: readonly StepItem[]) => Float32Array[];

/** The plain runner: one `model.eval` per item. */
export const sequentialStep: StepRunner = (model, items) =>
  items.map((it) => model.eval(it.state, it.tokens));

/** Scheduler limits. */
export interface SchedulerOptions {
  /** Sequences generating at once, each with its own KV cache. */
  parallel: number;
  /** Requests that may wait for a slot; more are refused with 429. */
  maxQueue: number;
  /** Counters to update (prompt and generated tokens, step times, cancellations). */
  metrics?: Metrics;
  /** How forwards run (default: `sequentialStep`). */
  step?: StepRunner;
}

/**
 * Most milliseconds of work between full event-loop turns. Deno's HTTP writes and reads
 * progress only in a turn that polls I/O, which `setTimeout` gives and `setImmediate` does not
 * (measured: with `setImmediate` alone, streams arrive in one burst at the end); but a
 * `setTimeout(0)` costs 1–2 ms, which would halve a small model's throughput if taken after
 * every step. So: `setImmediate` between steps, a timer turn once this much time has passed.
 */
export const FLUSH_INTERVAL_MS = 10;

function immediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Queues requests and interleaves their generation on one model. */
export class Scheduler {
  readonly #waiting: Sequence[] = [];
  readonly #active: Sequence[] = [];
  readonly #step: StepRunner;
  #running = false;
  #closed = false;
  #lastTurn = 0; // performance.now() of the last full event-loop turn
  #idleWaiters: (() => void)[] = [];

  /**
   * Create an idle scheduler; it runs only while requests are queued or active.
   * @param model the model every request runs on
   * @param options slots, queue bound, metrics, step runner
   */
  constructor(readonly model: Model, readonly options: SchedulerOptions) {
    if (!(options.parallel >= 1)) {
      throw new Error(`parallel must be at least 1, got ${options.parallel}`);
    }
    if (!(options.maxQueue >= 0)) {
      throw new Error(`maxQueue must be at least 0, got ${options.maxQueue}`);
    }
    this.#step = options.step ?? sequentialStep;
  }

  /** Requests waiting for a slot. */
  get queueDepth(): number {
    return this.#waiting.length;
  }

  /** Sequences holding a slot. */
  get activeCount(): number {
    return this.#active.length;
  }

  /**
   * Queue a generation; events arrive through `emit` (text pieces, then an end or an error).
   * @throws ApiError 429 when the queue is full, 503 after `close()`
   */
  submit(spec: SequenceSpec, emit: (event: SequenceEvent) => void): Sequence {
    const { parallel, maxQueue } = this.options;
    if (this.#closed) {
      throw new ApiError(503, "the server is shutting down", "server_error", null, "unavailable");
    }
    if (this.#active.length + this.#waiting.length >= parallel + maxQueue) {
      throw new ApiError(
        429,
        `the server is busy: ${parallel} requests generating and ${maxQueue} waiting; retry later`,
        "rate_limit_error",
        null,
        "queue_full",
      );
    }
    if (spec.signal?.aborted) {
      throw new ApiError(
        499,
        "the client closed the request",
        "invalid_request_error",
        null,
        "client_closed",
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => this.cancel(seq, "disconnect");
    const seq = new Sequence(this.model, spec, (event) => {
      if (event.type !== "text") {
        // the sequence has ended: release its timer and listener
        clearTimeout(timer);
        spec.signal?.removeEventListener("abort", onAbort);
      }
      if (event.type === "end" && this.options.metrics) {
        this.options.metrics.completionTokens += event.usage.completion_tokens;
      }
      emit(event);
    });
    spec.signal?.addEventListener("abort", onAbort, { once: true });
    if (spec.timeoutMs !== undefined) {
      timer = setTimeout(() => this.cancel(seq, "timeout"), spec.timeoutMs);
    }
    this.#waiting.push(seq);
    if (!this.#running) {
      this.#running = true;
      this.#loop();
    }
    return seq;
  }

  /**
   * Stop a sequence now and free its slot (its KV cache is dropped).
   * @param seq a sequence from `submit`
   * @param why "disconnect" (client gone) or "timeout" (past its time limit)
   */
  cancel(seq: Sequence, why: "disconnect" | "timeout"): void {
    if (seq.done) return;
    this.#remove(seq);
    const m = this.options.metrics;
    if (why === "timeout") {
      if (m) m.timedOut++;
      const s = (seq.spec.timeoutMs ?? 0) / 1000;
      seq.fail(
        new ApiError(
          504,
          `the request ran past the time limit of ${s} s`,
          "timeout_error",
          null,
          "timeout",
        ),
      );
    } else {
      if (m) m.cancelled++;
      seq.fail(
        new ApiError(
          499,
          "the client closed the request",
          "invalid_request_error",
          null,
          "client_closed",
        ),
      );
    }
  }

  /** Resolves once nothing is queued or running (the loop has stopped). */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Refuse new requests and end every queued and active one with 503. */
  close(): void {
    this.#closed = true;
    for (const seq of [...this.#waiting, ...this.#active]) {
      this.#remove(seq);
      seq.fail(
        new ApiError(503, "the server is shutting down", "server_error", null, "unavailable"),
      );
    }
  }

  /** Let other tasks run; poll I/O (flush streams, read requests, see aborts) every FLUSH_INTERVAL_MS. */
  async #yield(): Promise<void> {
    if (performance.now() - this.#lastTurn < FLUSH_INTERVAL_MS) return await immediate();
    await macrotask();
    this.#lastTurn = performance.now();
  }

  async #loop(): Promise<void> {
    await macrotask(); // submit() never emits before it returns
    this.#lastTurn = performance.now();
    for (;;) {
      this.#admit();
      if (this.#active.length === 0) {
        this.#running = false; // decided synchronously, so a later submit restarts the loop
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
        return;
      }
      for (const seq of [...this.#active]) {
        if (seq.done) continue; // cancelled earlier in this round
        this.#run(seq);
        if (seq.done) this.#remove(seq);
        await this.#yield();
      }
    }
  }

  /** Move waiting requests into free slots, oldest first. */
  #admit(): void {
    while (this.#active.length < this.options.parallel && this.#waiting.length > 0) {
      const seq = this.#waiting.shift()!;
      try {
        seq.start();
      } catch (err) {
        seq.fail(toApiError(err));
        continue;
      }
      if (this.options.metrics) this.options.metrics.promptTokens += seq.spec.promptIds.length;
      this.#active.push(seq);
    }
  }

  /** One forward of one sequence, timed into the prefill or decode metrics. */
  #run(seq: Sequence): void {
    const prefill = seq.prefilling;
    const tokens = seq.nextTokens();
    const t0 = performance.now();
    try {
      const [logits] = this.#step(this.model, [{ state: seq.state!, tokens }]);
      if (!seq.done) seq.accept(logits, tokens.length); // done: cancelled during the forward
    } catch (err) {
      if (!(err instanceof ApiError)) console.error("turbosparse serve: a forward failed:", err);
      seq.fail(toApiError(err));
    }
    const m = this.options.metrics;
    if (!m) return;
    const seconds = (performance.now() - t0) / 1000;
    if (prefill) {
      m.prefillTokens += tokens.length;
      m.prefillSeconds += seconds;
    } else {
      m.decodeTokens += 1;
      m.decodeSeconds += seconds;
    }
  }

  #remove(seq: Sequence): void {
    const w = this.#waiting.indexOf(seq);
    if (w >= 0) this.#waiting.splice(w, 1);
    const a = this.#active.indexOf(seq);
    if (a >= 0) this.#active.splice(a, 1);
  }
}
