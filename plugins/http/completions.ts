/**
 * `POST /v1/completions`: a raw prompt (text, or token ids) continued by the model.
 *
 * @module
 */

import type { Context } from "hono";
import { fromZod, invalid } from "./errors.ts";
import { completionFormat } from "./format.ts";
import { encodePrompt } from "./prompt.ts";
import { checkModel, readJson, respond, samplingOptions, tokenBudget } from "./respond.ts";
import { completionRequestSchema } from "./schemas.ts";
import type { ServerState } from "./state.ts";

/** OpenAI's default `max_tokens` for completions. */
export const COMPLETION_DEFAULT_MAX_TOKENS = 16;

/**
 * The handler of `POST /v1/completions`.
 * @param s the server's model, scheduler and settings
 */
export function completionsHandler(s: ServerState): (c: Context) => Promise<Response> {
  return async (c) => {
    const parsed = completionRequestSchema.safeParse(await readJson(c.req.raw));
    if (!parsed.success) throw fromZod(parsed.error);
    const req = parsed.data;
    checkModel(req.model, s.modelId);
    const tok = s.model.tokenizer;
    let promptIds: number[];
    if (typeof req.prompt === "string") promptIds = encodePrompt(tok, s.specials, req.prompt);
    else if (typeof req.prompt[0] === "string") {
      promptIds = encodePrompt(tok, s.specials, req.prompt[0]);
    } else promptIds = checkIds(req.prompt as number[], s.model.config.nVocab);
    const maxTokens = tokenBudget(
      promptIds.length,
      req.max_tokens,
      s.model.contextLength,
      { prompt: "prompt", limit: "max_tokens" },
      COMPLETION_DEFAULT_MAX_TOKENS,
    );
    const stream = req.stream === true;
    const includeUsage = stream && req.stream_options?.include_usage === true;
    return await respond(
      {
        scheduler: s.scheduler,
        format: completionFormat(s.modelId, includeUsage),
        stream,
        includeUsage,
      },
      {
        promptIds,
        maxTokens,
        sampling: samplingOptions(req),
        stops: typeof req.stop === "string" ? [req.stop] : req.stop ?? [],
        topLogprobs: req.logprobs ?? undefined,
        signal: c.req.raw.signal,
        timeoutMs: s.timeoutMs,
      },
    );
  };
}

/** Token prompts must be vocabulary ids. */
function checkIds(ids: number[], nVocab: number): number[] {
  const bad = ids.findIndex((id) => id >= nVocab);
  if (bad >= 0) {
    const message = `token id ${ids[bad]} is outside the vocabulary of ${nVocab}`;
    throw invalid(`prompt.${bad}: ${message}`, `prompt.${bad}`);
  }
  return ids;
}
