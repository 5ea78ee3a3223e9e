/**
 * Server options: a zod schema for the plain settings (validated once at start), plus the
 * hooks scripts may pass to `createApp`.
 *
 * @module
 */

import { z } from "zod";
import type { StepRunner } from "./scheduler.ts";

/** Plain server settings with their defaults. */
export const serverOptionsSchema = z.object({
  /** The id clients send as `model` (default: the file name without `.gguf`). */
  modelId: z.string().min(1).optional(),
  /** Bearer key every route but `/health` requires; unset = no key. */
  apiKey: z.string().min(1).optional(),
  /** Send CORS headers (any origin); off by default. */
  cors: z.boolean().default(false),
  /** A built-in template name or Jinja source; default: the model's own, else ChatML. */
  chatTemplate: z.string().min(1).optional(),
  /** Sequences generating at once, each with its own KV cache. */
  parallel: z.number().int().min(1).max(256).default(4),
  /** Requests that may wait for a slot before new ones get 429. */
  maxQueue: z.number().int().min(0).default(64),
  /** Seconds a request may take from arrival to its last token; 0 = no limit. */
  timeoutS: z.number().min(0).default(300),
  /** Record the FFN active fraction for `/metrics` (costs some speed on sparse models). */
  sparsityStats: z.boolean().default(false),
  /** Largest request body in bytes. */
  maxBodyBytes: z.number().int().min(1024).default(1 << 20),
}).strict();

/** Settings as callers give them (every field optional). */
export type ServerSettings = z.input<typeof serverOptionsSchema>;

/** Options of `createApp`: the settings plus hooks. */
export interface AppOptions extends ServerSettings {
  /** Mean fraction of FFN neurons computed per token, for `/metrics` (default: see sparsity.ts). */
  ffnActiveFraction?: () => number;
  /** How forwards run; a batched runner can replace the per-sequence one. */
  step?: StepRunner;
}

/** Validate settings; throws an error naming the bad field. */
export function parseSettings(options: ServerSettings): z.infer<typeof serverOptionsSchema> {
  const r = serverOptionsSchema.safeParse(options);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`invalid server option ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  return r.data;
}
