/**
 * `POST /v1/chat/completions`: messages rendered with the chat template, then generated.
 *
 * @module
 */

import type { Context } from "hono";
import type { TemplateMessage } from "./chat_template.ts";
import { fromZod, invalid } from "./errors.ts";
import { chatFormat } from "./format.ts";
import { encodePrompt } from "./prompt.ts";
import { checkModel, readJson, respond, samplingOptions, tokenBudget } from "./respond.ts";
import { type ChatMessage, chatRequestSchema } from "./schemas.ts";
import type { ServerState } from "./state.ts";

/**
 * Messages as templates see them: `developer` becomes `system`, text parts are joined by
 * newlines, missing content is empty.
 */
export function templateMessages(messages: ChatMessage[]): TemplateMessage[] {
  return messages.map((m) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: typeof m.content === "string"
      ? m.content
      : (m.content ?? []).map((p) => p.text).join("\n"),
  }));
}

/**
 * The handler of `POST /v1/chat/completions`.
 * @param s the server's model, scheduler and settings
 */
export function chatHandler(s: ServerState): (c: Context) => Promise<Response> {
  return async (c) => {
    const parsed = chatRequestSchema.safeParse(await readJson(c.req.raw));
    if (!parsed.success) throw fromZod(parsed.error);
    const req = parsed.data;
    checkModel(req.model, s.modelId);
    if (req.top_logprobs !== undefined && req.top_logprobs !== null && req.logprobs !== true) {
      throw invalid("top_logprobs needs logprobs: true", "top_logprobs");
    }
    const tok = s.model.tokenizer;
    const text = s.template.render(templateMessages(req.messages), {
      bos: tok.piece(tok.bos),
      eos: tok.piece(tok.eos),
    });
    const promptIds = encodePrompt(tok, s.specials, text);
    const limitParam = req.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
    const maxTokens = tokenBudget(
      promptIds.length,
      req.max_completion_tokens ?? req.max_tokens,
      s.model.contextLength,
      { prompt: "messages", limit: limitParam },
    );
    const userStops = typeof req.stop === "string" ? [req.stop] : req.stop ?? [];
    const stream = req.stream === true;
    const includeUsage = stream && req.stream_options?.include_usage === true;
    return await respond(
      {
        scheduler: s.scheduler,
        format: chatFormat(s.modelId, includeUsage),
        stream,
        includeUsage,
      },
      {
        promptIds,
        maxTokens,
        sampling: samplingOptions(req),
        stops: [...userStops, ...s.template.stops],
        topLogprobs: req.logprobs === true ? req.top_logprobs ?? 0 : undefined,
        signal: c.req.raw.signal,
        timeoutMs: s.timeoutMs,
      },
    );
  };
}
