/**
 * The API's error envelope: `{"error": {"code", "message", "details"}}` with a real status code.
 * User mistakes are ApiErrors (or core KilnErrors mapped here) and never reach the 500 path; a 500
 * means a bug in kiln, and its answer carries no stack and no input.
 *
 * Where an error becomes an HTTP status: the one place, for the API and the web UI alike (a
 * page or route that answers a refusal itself takes its status from STATUS here): a core
 * error's code picks the API's code (WIRE_CODE), and the API's code picks the status (STATUS).
 * Nothing here reads an error's message to decide.
 */
import { KilnError, type ErrorCode } from "@kiln/core";
import { isDatabaseUnavailable } from "@kiln/core/store";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** One problem with the request, by field path (`pipeline_run.variables`, `query._limit`). */
export interface ErrorDetail {
  field: string;
  message: string;
}

/** The codes an API error body carries (the wire vocabulary, older than core's codes and kept for clients). */
export type ApiErrorCode =
  | "invalid_json"
  | "invalid_request"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "unprocessable"
  | "too_many_requests"
  | "unavailable"
  | "database_unavailable"
  | "internal";

/** The HTTP status of each API error code. */
export const STATUS: Readonly<Record<ApiErrorCode, ContentfulStatusCode>> = {
  invalid_json: 400,
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unprocessable: 422,
  too_many_requests: 429,
  unavailable: 503,
  database_unavailable: 503,
  internal: 500,
};

/** The API error code of each core error code. */
export const WIRE_CODE: Readonly<Record<ErrorCode, ApiErrorCode>> = {
  invalid_input: "unprocessable",
  malformed: "invalid_request",
  not_found: "not_found",
  conflict: "conflict",
  illegal_transition: "conflict",
  unauthenticated: "unauthenticated",
  forbidden: "forbidden",
  rate_limited: "too_many_requests",
  too_large: "payload_too_large",
  unsupported: "conflict",
  unavailable: "unavailable",
};

/** The HTTP status a core error code answers with. */
export function statusOf(code: ErrorCode): ContentfulStatusCode {
  return STATUS[WIRE_CODE[code]];
}

export class ApiError extends Error {
  readonly status: ContentfulStatusCode;

  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = "ApiError";
    this.status = STATUS[code];
  }
}

/** 404 for a record that does not exist: `notFound("pipeline run", 12)`. */
export function notFound(what: string, id: string | number): ApiError {
  return new ApiError("not_found", `no ${what} ${id}`);
}

/** 422 naming the field whose value is well-formed but not acceptable. */
export function unprocessable(field: string, message: string): ApiError {
  return new ApiError("unprocessable", `${field}: ${message}`, [{ field, message }]);
}

/** The API code of an HTTPException's status (hono's body limit, a bad request). */
function codeOfHttpStatus(status: number): ApiErrorCode {
  if (status === 413) return "payload_too_large";
  if (status === 401) return "unauthenticated";
  if (status === 404) return "not_found";
  return "invalid_request";
}

/**
 * A core error as the API answers it. With `under` (the body's key: `backfill`, `pipeline_run`)
 * the field is named as the request spells it, `backfill.start_datetime`, and listed in details.
 */
export function apiErrorOf(error: KilnError, under?: string): ApiError {
  const code = WIRE_CODE[error.code];
  // a missing record, or a move the state machine refuses, is named by the message alone: there is no field to correct
  if (error.code === "not_found" || error.code === "illegal_transition") return new ApiError(code, error.message);
  const field = under === undefined ? error.field : error.field !== null ? `${under}.${error.field}` : under;
  if (field === null) return new ApiError(code, error.message);
  if (code === "unprocessable") return unprocessable(field, error.detail);
  // a refusal of the record's state reads as a sentence; its detail is the whole of it
  if (code === "conflict" && under !== undefined) return new ApiError(code, error.message, [{ field, message: error.message }]);
  return new ApiError(code, `${field}: ${error.detail}`, [{ field, message: error.detail }]);
}

/** Rethrows a core error as the API answers it, with fields named under `under` (for a route's `.catch`). */
export function rethrowUnder(under: string): (error: unknown) => never {
  return (error: unknown) => {
    throw error instanceof KilnError ? apiErrorOf(error, under) : error;
  };
}

/** Seconds a client is told to wait before retrying while the database cannot be reached. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** 503: the database could not be reached (down, restarting, locked); nothing was done, the request can be retried. */
export class DatabaseUnavailableApiError extends ApiError {
  readonly retryAfterMs = DATABASE_RETRY_AFTER_SECONDS * 1000;
  constructor() {
    super("database_unavailable", `kiln cannot reach its database right now; try again in ${DATABASE_RETRY_AFTER_SECONDS} s`);
  }
}

/** Turns what a handler threw into an ApiError; anything unknown is a 500 (a bug, logged by the caller). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof HTTPException) return new ApiError(codeOfHttpStatus(error.status), error.message || "bad request");
  if (error instanceof KilnError) return apiErrorOf(error);
  // not a bug: the database is down or restarting (a 503 the client may retry), said without its details
  if (isDatabaseUnavailable(error)) return new DatabaseUnavailableApiError();
  return new ApiError("internal", "internal error");
}

/** The JSON answer for an error. */
export function errorResponse(c: Context, error: ApiError): Response {
  // a refusal for a while (sign-in throttling, the database out of reach) says how long, as HTTP clients expect
  if ((error.status === 429 || error.status === 503) && "retryAfterMs" in error && typeof error.retryAfterMs === "number") {
    c.header("Retry-After", String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
  }
  return c.json({ error: { code: error.code, message: error.message, details: error.details } }, error.status);
}
