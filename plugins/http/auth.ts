/**
 * Bearer API-key middleware: `Authorization: Bearer KEY`, compared in constant time (both
 * sides hashed to SHA-256 first, so neither the content nor the length of the key leaks).
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";

/** True when `given` equals `expected`, in time independent of where they differ. */
export function keysMatch(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Require `Authorization: Bearer <apiKey>` on every path except those in `open`.
 * @param apiKey the key clients must send
 * @param open paths that need no key (e.g. `/health`)
 */
export function apiKeyAuth(apiKey: string, open: readonly string[] = []): MiddlewareHandler {
  return async (c, next) => {
    if (open.includes(c.req.path) || c.req.method === "OPTIONS") return await next();
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !keysMatch(match[1].trim(), apiKey)) {
      const message = match
        ? "incorrect API key provided"
        : "no API key provided: send the header 'Authorization: Bearer KEY'";
      const err = new ApiError(401, message, "invalid_request_error", null, "invalid_api_key");
      return c.json(err.body(), 401, { "www-authenticate": "Bearer" });
    }
    await next();
  };
}
