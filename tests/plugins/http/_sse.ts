/**
 * Helpers for the HTTP tests: JSON posts through `app.request()` and SSE body parsing.
 *
 * @module
 */

import type { Hono } from "hono";

/** POST `body` as JSON to `path` of `app`, without a port. */
export function post(
  app: Hono,
  path: string,
  body: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return Promise.resolve(app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...init.headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: init.signal,
  }));
}

/** The `data:` payloads of an SSE body, JSON-parsed, and whether it ended with `[DONE]`. */
export async function readSse(
  res: Response,
): Promise<{ events: Record<string, unknown>[]; done: boolean }> {
  const text = await res.text();
  const datas = text.split("\n\n").filter((b) => b.startsWith("data: ")).map((b) => b.slice(6));
  const done = datas.at(-1) === "[DONE]";
  return { events: datas.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d)), done };
}
