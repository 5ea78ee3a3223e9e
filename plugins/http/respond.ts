/**
 * Run a validated request through the scheduler and answer it: one JSON body, or an SSE
 * stream of chunks ending with `data: [DONE]`. A cancelled stream or an aborted request frees
 * the sequence's slot at once.
 *
 * @module
 */

import type { SamplerOptions } from "../../core/sampler.ts";
import { ApiError, invalid } from "./errors.ts";
import type { Formatter } from "./format.ts";
import type { Scheduler } from "./scheduler.ts";
import type { FinishReason, Sequence, SequenceSpec, TokenLogprob, Usage } from "./sequence.ts";

/** The sampling fields both endpoints share (OpenAI names plus llama.cpp extensions). */
export interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  repeat_penalty?: number | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
}

/**
 * Sampler options from request fields: OpenAI's defaults for its fields (temperature 1,
 * top_p 1, no penalties), llama.cpp's for the extensions (top_k 40, min_p 0.05).
 */
export function samplingOptions(r: SamplingFields): SamplerOptions {
  const topP = r.top_p ?? 1;
  return {
    temperature: topP === 0 ? 0 : r.temperature ?? 1, // top_p 0 keeps only the top token
    topP: topP === 0 ? 1 : topP,
    topK: r.top_k ?? 40,
    minP: r.min_p ?? 0.05,
    repeatPenalty: r.repeat_penalty ?? 1,
    presencePenalty: r.presence_penalty ?? 0,
    frequencyPenalty: r.frequency_penalty ?? 0,
    seed: r.seed === undefined || r.seed === null ? undefined : r.seed >>> 0,
  };
}

/**
 * Tokens to generate: the request's limit, else `fallback`; refuses prompts that do not fit.
 * @param promptTokens prompt length in tokens
 * @param requested max_tokens / max_completion_tokens, if given
 * @param contextLength the KV-cache length of a sequence
 * @param names the request fields named in errors: the prompt's and the limit's
 * @param fallback limit when none is requested (capped to what fits)
 */
export function tokenBudget(
  promptTokens: number,
  requested: number | null | undefined,
  contextLength: number,
  names: { prompt: string; limit: string },
  fallback = Infinity,
): number {
  const room = contextLength - promptTokens;
  if (room < 1) {
    throw invalid(
      `the prompt is ${promptTokens} tokens, which leaves no room in the context window of ` +
        `${contextLength} tokens`,
      names.prompt,
      "context_length_exceeded",
    );
  }
  if (requested === undefined || requested === null) return Math.min(fallback, room);
  if (promptTokens + requested > contextLength) {
    throw invalid(
      `the prompt (${promptTokens} tokens) plus ${names.limit} (${requested}) is ` +
        `${
          promptTokens + requested
        } tokens, more than the context window of ${contextLength} tokens`,
      names.limit,
      "context_length_exceeded",
    );
  }
  return requested;
}

/** What `respond` needs besides the sequence spec. */
export interface Exchange {
  scheduler: Scheduler;
  format: Formatter;
  stream: boolean;
  includeUsage: boolean;
}

/**
 * Submit `spec` and build the response (JSON, or SSE when `x.stream`).
 * @throws ApiError 429/503 when the scheduler refuses the request
 */
export function respond(x: Exchange, spec: SequenceSpec): Promise<Response> | Response {
  return x.stream ? streamResponse(x, spec) : jsonResponse(x, spec);
}

async function jsonResponse(x: Exchange, spec: SequenceSpec): Promise<Response> {
  const parts: string[] = [];
  const logprobs: TokenLogprob[] = [];
  const done = await new Promise<{ reason: FinishReason; usage: Usage }>((resolve, reject) => {
    x.scheduler.submit(spec, (event) => {
      if (event.type === "text") {
        parts.push(event.text);
        if (event.logprobs) logprobs.push(...event.logprobs);
      } else if (event.type === "end") resolve({ reason: event.finishReason, usage: event.usage });
      else reject(event.error);
    });
  });
  const lp = spec.topLogprobs === undefined ? undefined : logprobs;
  return Response.json(x.format.full(parts.join(""), lp, done.reason, done.usage));
}

function streamResponse(x: Exchange, spec: SequenceSpec): Response {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const write = (line: string) => {
    if (open) controller.enqueue(encoder.encode(line));
  };
  const send = (body: object) => write(`data: ${JSON.stringify(body)}\n\n`);
  const end = () => {
    if (!open) return;
    open = false;
    controller.close();
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      open = false;
      x.scheduler.cancel(seq, "disconnect"); // only runs once the body is returned: seq is set
    },
  });
  const seq: Sequence = x.scheduler.submit(spec, (event) => {
    if (event.type === "text") send(x.format.chunk(event.text, event.logprobs));
    else if (event.type === "end") {
      send(x.format.closing(event.finishReason));
      if (x.includeUsage) send(x.format.usage(event.usage));
      write("data: [DONE]\n\n");
      end();
    } else {
      if (event.error.code !== "client_closed") send(event.error.body());
      end();
    }
  });
  const opening = x.format.opening();
  if (opening) send(opening);
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}

/**
 * Parse a JSON body. It must be declared `application/json`: that makes a browser preflight
 * a cross-site request, which fails while CORS is off, so web pages cannot drive a local server.
 * A body that is not JSON is a 400 naming the problem.
 */
export async function readJson(req: Request): Promise<unknown> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new ApiError(
      415,
      `send the body as JSON with the header 'Content-Type: application/json' (got "${type}")`,
      "invalid_request_error",
      null,
      "unsupported_media_type",
    );
  }
  try {
    return await req.json();
  } catch (err) {
    throw invalid(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** 404 unless `requested` is this server's model id. */
export function checkModel(requested: string, modelId: string): void {
  if (requested !== modelId) {
    throw new ApiError(
      404,
      `the model "${requested}" does not exist; this server serves "${modelId}"`,
      "invalid_request_error",
      "model",
      "model_not_found",
    );
  }
}
