/**
 * The API's error envelope: `{"error": {"code", "message", "details"}}` with a real status code.
 * User mistakes are ApiErrors (or core errors mapped here) and never reach the 500 path; a 500
 * means a bug in kiln, and its answer carries no stack and no input.
 */
import { BackfillError, BoundsError, IllegalTransitionError, PasswordCostError, ScheduleInputError } from "@kiln/core";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** One problem with the request, by field path (`pipeline_run.variables`, `query._limit`). */
export interface ErrorDetail {
  field: string;
  message: string;
}

export type ErrorCode =
  | "invalid_json"
  | "invalid_request"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "unprocessable"
  | "too_many_requests"
  | "internal";

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** 404 for a record that does not exist: `notFound("pipeline run", 12)`. */
export function notFound(what: string, id: string | number): ApiError {
  return new ApiError(404, "not_found", `no ${what} ${id}`);
}

/** 422 naming the field whose value is well-formed but not acceptable. */
export function unprocessable(field: string, message: string): ApiError {
  return new ApiError(422, "unprocessable", `${field}: ${message}`, [{ field, message }]);
}

/** Turns what a handler threw into an ApiError; anything unknown is a 500 (a bug, logged by the caller). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode;
    const code: ErrorCode = status === 413 ? "payload_too_large" : status === 401 ? "unauthenticated" : status === 404 ? "not_found" : "invalid_request";
    return new ApiError(status, code, error.message || "bad request");
  }
  if (error instanceof ScheduleInputError) {
    if (error.field === "id" || error.field === "pipeline_schedule_id") {
      if (/^no /.test(error.message.replace(/^[^:]+: /, ""))) return new ApiError(404, "not_found", error.message);
    }
    return unprocessable(error.field, error.message.replace(/^[^:]+: /, ""));
  }
  if (error instanceof BackfillError) {
    if (error.code === "not_found") return new ApiError(404, "not_found", error.message);
    return new ApiError(422, "unprocessable", error.message, error.field ? [{ field: error.field, message: error.message }] : []);
  }
  // a write path's last check (the routes refuse the same values first, with the same words)
  if (error instanceof BoundsError) return new ApiError(400, "invalid_request", error.message, [{ field: error.field, message: error.message.replace(/^[^:]+: /, "") }]);
  if (error instanceof IllegalTransitionError) return new ApiError(409, "conflict", error.message);
  if (error instanceof PasswordCostError) return new ApiError(409, "conflict", error.message);
  return new ApiError(500, "internal", "internal error");
}

/** The JSON answer for an error. */
export function errorResponse(c: Context, error: ApiError): Response {
  // a refusal for a while (sign-in throttling) says how long, as HTTP clients expect
  if (error.status === 429 && "retryAfterMs" in error && typeof error.retryAfterMs === "number") {
    c.header("Retry-After", String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
  }
  return c.json({ error: { code: error.code, message: error.message, details: error.details } }, error.status);
}
