/**
 * OpenAI response bodies and stream chunks for both endpoints: `text_completion` and
 * `chat.completion(.chunk)`, with `usage` and `logprobs` in each API's own shape.
 *
 * @module
 */

import type { FinishReason, TokenLogprob, Usage } from "./sequence.ts";

/** Builds the bodies of one request. */
export interface Formatter {
  /** The chunk that opens a stream (chat: the assistant role), if any. */
  opening(): object | undefined;
  /** A stream chunk carrying `text`. */
  chunk(text: string, logprobs: TokenLogprob[] | undefined): object;
  /** The stream chunk carrying the finish reason. */
  closing(reason: FinishReason): object;
  /** The usage-only chunk of `stream_options.include_usage`. */
  usage(usage: Usage): object;
  /** The whole non-streaming response. */
  full(
    text: string,
    logprobs: TokenLogprob[] | undefined,
    reason: FinishReason,
    usage: Usage,
  ): object;
}

/** A random id with OpenAI's prefix, e.g. `chatcmpl-3f9a...`. */
export function responseId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Bodies of `/v1/completions`.
 * @param model the model id
 * @param withUsageField put `usage: null` on every chunk (include_usage was asked for)
 */
export function completionFormat(model: string, withUsageField: boolean): Formatter {
  const head = { id: responseId("cmpl"), object: "text_completion", created: now(), model };
  const usageField = withUsageField ? { usage: null } : {};
  const choice = (text: string, lp: TokenLogprob[] | undefined, reason: FinishReason | null) => ({
    text,
    index: 0,
    logprobs: lp ? legacyLogprobs(lp) : null,
    finish_reason: reason,
  });
  return {
    opening: () => undefined,
    chunk: (text, lp) => ({ ...head, choices: [choice(text, lp, null)], ...usageField }),
    closing: (reason) => ({ ...head, choices: [choice("", undefined, reason)], ...usageField }),
    usage: (usage) => ({ ...head, choices: [], usage }),
    full: (text, lp, reason, usage) => ({ ...head, choices: [choice(text, lp, reason)], usage }),
  };
}

/**
 * Bodies of `/v1/chat/completions`.
 * @param model the model id
 * @param withUsageField put `usage: null` on every chunk (include_usage was asked for)
 */
export function chatFormat(model: string, withUsageField: boolean): Formatter {
  const id = responseId("chatcmpl"), created = now();
  const chunkHead = {
    id,
    object: "chat.completion.chunk",
    created,
    model,
    system_fingerprint: null,
  };
  const usageField = withUsageField ? { usage: null } : {};
  const delta = (d: object, lp: TokenLogprob[] | undefined, reason: FinishReason | null) => ({
    ...chunkHead,
    choices: [{
      index: 0,
      delta: d,
      logprobs: lp ? chatLogprobs(lp) : null,
      finish_reason: reason,
    }],
    ...usageField,
  });
  return {
    opening: () => delta({ role: "assistant", content: "" }, undefined, null),
    chunk: (text, lp) => delta({ content: text }, lp, null),
    closing: (reason) => delta({}, undefined, reason),
    usage: (usage) => ({ ...chunkHead, choices: [], usage }),
    full: (text, lp, reason, usage) => ({
      id,
      object: "chat.completion",
      created,
      model,
      system_fingerprint: null,
      choices: [{
        index: 0,
        message: { role: "assistant", content: text, refusal: null },
        logprobs: lp ? chatLogprobs(lp) : null,
        finish_reason: reason,
      }],
      usage,
    }),
  };
}

/** The completions API's logprobs: parallel arrays. */
function legacyLogprobs(lp: TokenLogprob[]): object {
  return {
    tokens: lp.map((t) => t.token),
    token_logprobs: lp.map((t) => t.logprob),
    top_logprobs: lp.map((t) => Object.fromEntries(t.top.map((a) => [a.token, a.logprob]))),
    text_offset: lp.map((t) => t.textOffset),
  };
}

/** The chat API's logprobs: one entry per token. */
function chatLogprobs(lp: TokenLogprob[]): object {
  return {
    content: lp.map((t) => ({
      token: t.token,
      logprob: t.logprob,
      bytes: t.bytes,
      top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes })),
    })),
    refusal: null,
  };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
