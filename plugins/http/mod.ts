/**
 * The OpenAI-compatible HTTP front end, on Hono: `createApp(model, options)` builds the app
 * (mount it anywhere, or test it with `app.request()` without a port) and `serve(model, opts)`
 * runs it on `Deno.serve`, bound to 127.0.0.1 unless told otherwise.
 *
 * Routes: `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions` (JSON or SSE),
 * `GET /health`, `GET /metrics` (Prometheus text). Middleware, in order: request metrics,
 * CORS (opt-in), bearer API key (opt-in, all but `/health`), body size limit.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "../../mod.ts";
 * import { createApp } from "./mod.ts";
 * const model = await loadModel("models/tiny-turbosparse.gguf");
 * const app = createApp(model, { apiKey: "secret" });
 * Deno.serve({ hostname: "127.0.0.1", port: 8080 }, app.fetch);
 * ```
 *
 * @module
 */

import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Model } from "../../core/model.ts";
import { apiKeyAuth } from "./auth.ts";
import { chatHandler } from "./chat.ts";
import { chooseChatTemplate } from "./chat_template.ts";
import { completionsHandler } from "./completions.ts";
import { ApiError, toApiError } from "./errors.ts";
import { Metrics } from "./metrics.ts";
import { type AppOptions, parseSettings } from "./options.ts";
import { specialsFromMetadata } from "./prompt.ts";
import { sparsityHooks } from "./sparsity.ts";
import { Scheduler } from "./scheduler.ts";
import type { ServerState } from "./state.ts";

export type { AppOptions, ServerSettings } from "./options.ts";
export { serverOptionsSchema } from "./options.ts";
export { FLUSH_INTERVAL_MS, Scheduler, sequentialStep } from "./scheduler.ts";
export type { SchedulerOptions, StepItem, StepRunner } from "./scheduler.ts";
export type { FinishReason, SequenceEvent, SequenceSpec, TokenLogprob, Usage } from "./sequence.ts";
export type { Sequence } from "./sequence.ts";
export type { MetricGauges, Metrics } from "./metrics.ts";
export type { ServerState } from "./state.ts";
export { BUILTIN_TEMPLATES, TEMPLATE_NAMES } from "./chat_template.ts";

/** Paths that never need the API key. */
const OPEN_PATHS = ["/health"];

/** The model id clients use: the file name without directories and `.gguf`. */
export function defaultModelId(model: Model): string {
  return model.source.replace(/^.*[\\/]/, "").replace(/\.gguf$/i, "") || "model";
}

/**
 * Build the app and the state behind it (scheduler, metrics), for callers that manage both.
 * @param model a loaded model; the app's scheduler owns it from now on
 * @param options settings and hooks (see `serverOptionsSchema`)
 */
export function buildApp(
  model: Model,
  options: AppOptions = {},
): { app: Hono; state: ServerState } {
  const { ffnActiveFraction, step, ...plain } = options;
  const settings = parseSettings(plain);
  const modelTemplate = model.file.metadata.get("tokenizer.chat_template");
  const template = chooseChatTemplate(
    typeof modelTemplate === "string" ? modelTemplate : undefined,
    settings.chatTemplate,
  );
  const sparsity = sparsityHooks(model, settings.sparsityStats);
  // the gauges read the scheduler lazily: it is created just below, with these metrics
  const metrics: Metrics = new Metrics({
    queueDepth: () => scheduler.queueDepth,
    activeSequences: () => scheduler.activeCount,
    ffnActiveFraction: ffnActiveFraction ?? sparsity.ffnActiveFraction,
  });
  const scheduler: Scheduler = new Scheduler(model, {
    parallel: settings.parallel,
    maxQueue: settings.maxQueue,
    metrics,
    step: step ?? sparsity.step,
  });
  const state: ServerState = {
    model,
    modelId: settings.modelId ?? defaultModelId(model),
    scheduler,
    metrics,
    template,
    specials: specialsFromMetadata(model.file.metadata),
    timeoutMs: settings.timeoutS > 0 ? settings.timeoutS * 1000 : undefined,
  };
  return { app: routes(state, settings), state };
}

/**
 * The OpenAI-compatible app for `model`.
 * @param model a loaded model; the app's scheduler owns it from now on
 * @param options settings and hooks (see `serverOptionsSchema`)
 */
export function createApp(model: Model, options: AppOptions = {}): Hono {
  return buildApp(model, options).app;
}

function routes(s: ServerState, settings: ReturnType<typeof parseSettings>): Hono {
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    s.metrics.countRequest(c.req.path, c.res.status);
  });
  if (settings.cors) {
    app.use(cors({ origin: "*", allowHeaders: ["Authorization", "Content-Type"], maxAge: 600 }));
  }
  if (settings.apiKey) app.use(apiKeyAuth(settings.apiKey, OPEN_PATHS));
  app.use(bodyLimit({
    maxSize: settings.maxBodyBytes,
    onError: (c) => {
      const err = new ApiError(
        413,
        `the request body is larger than ${settings.maxBodyBytes} bytes`,
      );
      return c.json(err.body(), 413);
    },
  }));

  app.get("/health", (c) =>
    c.json({
      status: "ok",
      model: s.modelId,
      queue_depth: s.scheduler.queueDepth,
      active: s.scheduler.activeCount,
    }));
  app.get(
    "/metrics",
    (c) =>
      c.body(s.metrics.render(), 200, {
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
      }),
  );
  app.get("/v1/models", (c) => c.json({ object: "list", data: [modelCard(s)] }));
  app.get("/v1/models/:id{.+}", (c) => {
    if (c.req.param("id") !== s.modelId) {
      throw new ApiError(
        404,
        `the model "${c.req.param("id")}" does not exist`,
        undefined,
        "model",
        "model_not_found",
      );
    }
    return c.json(modelCard(s));
  });
  app.post("/v1/completions", completionsHandler(s));
  app.post("/v1/chat/completions", chatHandler(s));

  app.notFound((c) => {
    const err = new ApiError(
      404,
      `no route ${c.req.method} ${c.req.path}`,
      "invalid_request_error",
      null,
      "not_found",
    );
    return c.json(err.body(), 404);
  });
  app.onError((thrown, c) => {
    const err = toApiError(thrown);
    if (!(thrown instanceof ApiError)) {
      // unexpected: log with the stack (the client gets only the message)
      console.error(`turbosparse serve: ${c.req.method} ${c.req.path}:`, thrown);
    }
    const headers: Record<string, string> = err.status === 429 ? { "retry-after": "1" } : {};
    return c.json(err.body(), err.status as ContentfulStatusCode, headers);
  });
  return app;
}

function modelCard(s: ServerState) {
  return {
    id: s.modelId,
    object: "model",
    created: 0,
    owned_by: "turbosparse",
    context_length: s.model.contextLength,
  };
}

/** Options of `serve`: the app's, plus where to listen. */
export interface ServeOptions extends AppOptions {
  /** Address to bind (default 127.0.0.1: loopback only). */
  hostname?: string;
  /** Port; 0 picks a free one (default 8080). */
  port?: number;
  /** Called once listening, with the bound address. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A running server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Scheduler, metrics and settings behind the app. */
  readonly state: ServerState;
  /** Refuse new requests, end running ones with 503 and stop listening. */
  shutdown(): Promise<void>;
}

/**
 * Serve `model` on `Deno.serve` (needs `--allow-net` for the address).
 * @param model a loaded model; the server owns it until shutdown
 * @param options where to listen, settings and hooks
 */
export function serve(model: Model, options: ServeOptions = {}): RunningServer {
  const { hostname = "127.0.0.1", port = 8080, onListen, ...appOptions } = options;
  const { app, state } = buildApp(model, appOptions);
  const server = Deno.serve({ hostname, port, onListen: onListen ?? (() => {}) }, app.fetch);
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    url: `http://${host}:${addr.port}`,
    addr,
    state,
    async shutdown() {
      state.scheduler.close();
      await server.shutdown();
    },
  };
}
