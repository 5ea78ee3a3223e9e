/**
 * What every route handler shares: the model, its scheduler and metrics, the chat template
 * and the settings that shape requests.
 *
 * @module
 */

import type { Model } from "../../core/model.ts";
import type { ChatTemplate } from "./chat_template.ts";
import type { Metrics } from "./metrics.ts";
import type { Specials } from "./prompt.ts";
import type { Scheduler } from "./scheduler.ts";

/** One server's shared state. */
export interface ServerState {
  /** The model every request runs on. */
  readonly model: Model;
  /** The id clients send as `model`. */
  readonly modelId: string;
  /** Owns the model: queues and interleaves requests. */
  readonly scheduler: Scheduler;
  /** Counters behind `/metrics`. */
  readonly metrics: Metrics;
  /** Renders chat messages into prompt text. */
  readonly template: ChatTemplate;
  /** Control pieces of the vocabulary, matched in prompt text. */
  readonly specials: Specials;
  /** Per-request time limit in milliseconds; undefined = none. */
  readonly timeoutMs: number | undefined;
}
