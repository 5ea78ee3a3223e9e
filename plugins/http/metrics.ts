/**
 * Server counters and their Prometheus text exposition (`GET /metrics`).
 *
 * @module
 */

/** Endpoints counted by name; anything else is counted as "other" (bounded label values). */
const ENDPOINTS = new Set([
  "/v1/models",
  "/v1/completions",
  "/v1/chat/completions",
  "/health",
  "/metrics",
]);

/** Live gauges the metrics read when rendered. */
export interface MetricGauges {
  /** Requests waiting for a slot. */
  queueDepth(): number;
  /** Sequences generating now. */
  activeSequences(): number;
  /** Mean fraction of FFN neurons computed per token (1 for dense models). */
  ffnActiveFraction(): number;
}

/** Counters of one server; the scheduler and the request middleware update them. */
export class Metrics {
  readonly #requests = new Map<string, number>();
  /** Prompt tokens of admitted requests. */
  promptTokens = 0;
  /** Tokens generated. */
  completionTokens = 0;
  /** Single-token decode steps. */
  decodeTokens = 0;
  /** Seconds the decode steps took. */
  decodeSeconds = 0;
  /** Prompt tokens prefilled. */
  prefillTokens = 0;
  /** Seconds the prefill took. */
  prefillSeconds = 0;
  /** Requests cancelled by a client disconnect. */
  cancelled = 0;
  /** Requests stopped by the time limit. */
  timedOut = 0;

  /** @param gauges live values read at render time */
  constructor(readonly gauges: MetricGauges) {}

  /** Count a finished HTTP exchange. */
  countRequest(path: string, status: number): void {
    const key = `${ENDPOINTS.has(path) ? path : "other"}|${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** Requests counted so far with this endpoint and status. */
  requests(path: string, status: number): number {
    return this.#requests.get(`${path}|${status}`) ?? 0;
  }

  /** Decode throughput over the server's life, tokens per second of decode steps. */
  decodeTokensPerSecond(): number {
    return this.decodeSeconds > 0 ? this.decodeTokens / this.decodeSeconds : 0;
  }

  /** The Prometheus text format, version 0.0.4. */
  render(): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${formatValue(value)}`);
    };
    const requests: [string, number][] = [...this.#requests].sort().map(([key, n]) => {
      const [endpoint, status] = key.split("|");
      return [`{endpoint="${endpoint}",status="${status}"}`, n];
    });
    metric(
      "turbosparse_requests_total",
      "counter",
      "HTTP requests by endpoint and status.",
      requests,
    );
    metric("turbosparse_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", [
      ["", this.promptTokens],
    ]);
    metric("turbosparse_completion_tokens_total", "counter", "Tokens generated.", [[
      "",
      this.completionTokens,
    ]]);
    metric("turbosparse_decode_seconds_total", "counter", "Seconds spent in decode steps.", [
      ["", this.decodeSeconds],
    ]);
    metric("turbosparse_prefill_seconds_total", "counter", "Seconds spent in prompt prefill.", [
      ["", this.prefillSeconds],
    ]);
    metric(
      "turbosparse_decode_tokens_per_second",
      "gauge",
      "Decode tokens per second of decode time.",
      [
        ["", this.decodeTokensPerSecond()],
      ],
    );
    metric("turbosparse_queue_depth", "gauge", "Requests waiting for a generation slot.", [
      ["", this.gauges.queueDepth()],
    ]);
    metric("turbosparse_active_sequences", "gauge", "Sequences generating now.", [
      ["", this.gauges.activeSequences()],
    ]);
    metric(
      "turbosparse_ffn_active_fraction",
      "gauge",
      "Mean fraction of FFN neurons computed (1 = dense).",
      [
        ["", this.gauges.ffnActiveFraction()],
      ],
    );
    metric("turbosparse_cancelled_total", "counter", "Requests stopped by a client disconnect.", [
      ["", this.cancelled],
    ]);
    metric("turbosparse_timed_out_total", "counter", "Requests stopped by the time limit.", [[
      "",
      this.timedOut,
    ]]);
    return out.join("\n") + "\n";
  }
}

/** Prometheus sample values: Go's float syntax accepts JavaScript's shortest form. */
function formatValue(v: number): string {
  return Number.isNaN(v) ? "NaN" : Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : "-Inf";
}
