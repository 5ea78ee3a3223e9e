/**
 * Errors in OpenAI's shape, `{ "error": { "message", "type", "param", "code" } }`, with the
 * HTTP status each kind maps to.
 *
 * @module
 */

import type { z } from "zod";

/** OpenAI's error body. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error a handler throws to answer with `status` and an OpenAI error body. */
export class ApiError extends Error {
  /**
   * @param status HTTP status (400, 401, 404, 413, 429, 503, 504, 500)
   * @param message what went wrong, naming the field and what was expected
   * @param type OpenAI's error type, e.g. "invalid_request_error"
   * @param param the request field at fault, if any
   * @param code a machine-readable code, if any
   */
  constructor(
    readonly status: number,
    message: string,
    readonly type = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** The JSON body clients parse. */
  body(): ErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}

/** 400 for a bad field. */
export function invalid(
  message: string,
  param: string | null = null,
  code: string | null = null,
): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}

/** 400 naming the first zod issue's field and message. */
export function fromZod(error: z.ZodError): ApiError {
  const issue = error.issues[0];
  const param = issue.path.length ? issue.path.join(".") : null;
  const where = param ? `${param}: ` : "";
  return invalid(`${where}${issue.message}`, param);
}

/** Any thrown value as an ApiError; unknown errors become 500 without leaking a stack. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(500, `internal error: ${message}`, "server_error", null, "internal_error");
}
