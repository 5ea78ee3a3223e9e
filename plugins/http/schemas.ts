/**
 * zod schemas of the request bodies: `/v1/completions` and `/v1/chat/completions`, with the
 * sampling fields both share. Unknown fields are ignored (clients send many); features this
 * server does not have (tools, JSON mode, n > 1, logit_bias, ...) are refused by name.
 *
 * @module
 */

import { z } from "zod";

/** A stop string or up to four of them (OpenAI's limit). */
const stop = z.union([z.string(), z.array(z.string())], {
  error: "stop must be a string or a list of strings",
})
  .refine((v) => typeof v === "string" || v.length <= 4, { message: "at most 4 stop sequences" })
  .refine((v) => (typeof v === "string" ? [v] : v).every((s) => s.length > 0), {
    message: "stop strings must not be empty",
  })
  .nullable().optional();

/** Refuse a field unless it holds its "off" value. */
function unsupported(what: string) {
  return z.unknown().optional().refine(
    (v) => v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0),
    { message: `${what} is not supported by this server` },
  );
}

/** Sampling and streaming fields shared by both endpoints (OpenAI names, plus extensions). */
const shared = {
  model: z.string({ error: "model is required (see GET /v1/models)" }),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  /** Extension (llama.cpp): keep the k most likely tokens, 0 = off. */
  top_k: z.number().int().min(0).nullable().optional(),
  /** Extension (llama.cpp): drop tokens below min_p × the top probability. */
  min_p: z.number().min(0).max(1).nullable().optional(),
  /** Extension (llama.cpp): repetition penalty, 1 = off. */
  repeat_penalty: z.number().gt(0).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  stop,
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  n: z.number().int().nullable().optional().refine(
    (v) => v === undefined || v === null || v === 1,
    {
      message: "only n = 1 is supported; send one request per choice",
    },
  ),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  logit_bias: z.record(z.string(), z.number()).nullable().optional().refine(
    (v) => !v || Object.keys(v).length === 0,
    { message: "logit_bias is not supported by this server" },
  ),
  user: z.string().optional(),
};

/** Body of `POST /v1/completions`. */
export const completionRequestSchema = z.object({
  ...shared,
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.number().int().min(0))], {
    error: "prompt must be a string, a list of one string, or a list of token ids",
  })
    .refine((p) => typeof p === "string" || p.length > 0, { message: "prompt must not be empty" })
    .refine((p) => typeof p === "string" || typeof p[0] !== "string" || p.length === 1, {
      message: "only one prompt per request (n = 1)",
    }),
  /** Top alternatives per token, 0..5 (0 = the chosen token's logprob only). */
  logprobs: z.number().int().min(0).max(5).nullable().optional(),
  echo: unsupported("echo"),
  suffix: unsupported("suffix"),
  best_of: z.number().int().nullable().optional().refine(
    (v) => v === undefined || v === null || v === 1,
    {
      message: "only best_of = 1 is supported",
    },
  ),
});

/** A text part of a message's content. */
const contentPart = z.object({ type: z.string(), text: z.string().optional() }).refine(
  (p) => p.type === "text" && typeof p.text === "string",
  { message: "only text content parts are supported" },
);

/** One chat message. */
const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(contentPart)]).nullable().optional(),
  name: z.string().optional(),
});

/** Body of `POST /v1/chat/completions`. */
export const chatRequestSchema = z.object({
  ...shared,
  messages: z.array(message).min(1, "messages must hold at least one message"),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  /** Top alternatives per token, 0..20; needs `logprobs: true`. */
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  tools: unsupported("tools"),
  functions: unsupported("functions"),
  tool_choice: z.unknown().optional().refine((v) => v === undefined || v === null || v === "none", {
    message: "tool_choice is not supported by this server",
  }),
  response_format: z.object({ type: z.string() }).nullable().optional().refine(
    (v) => !v || v.type === "text",
    { message: "response_format other than text is not supported by this server" },
  ),
});

/** A parsed completions request. */
export type CompletionRequest = z.infer<typeof completionRequestSchema>;
/** A parsed chat request. */
export type ChatRequest = z.infer<typeof chatRequestSchema>;
/** A chat message as the request gives it. */
export type ChatMessage = z.infer<typeof message>;
