/**
 * Reading a request through valibot schemas. Every body, path parameter and query goes through
 * one of these, so a malformed request is a 400 naming the field (`pipeline_run.variables`,
 * `query._limit`, `path.id`) before any handler code runs or anything is written.
 */
import { InstantSchema as CoreInstantSchema } from "@kiln/core/bound-schemas";
import { JSON_DEPTH_MESSAGE, jsonTextDepth, MAX_JSON_DEPTH } from "@kiln/core/bounds";
import { MAX_PAGE_OFFSET, type PageRequest } from "@kiln/core/store";
import * as v from "valibot";
import type { Context } from "hono";
import { ApiError, type ErrorDetail } from "./errors.ts";

function detailsOf(prefix: string, issues: readonly v.BaseIssue<unknown>[]): ErrorDetail[] {
  return issues.map((issue) => {
    const path = issue.path?.map((item) => String(item.key)).join(".") ?? "";
    const field = [prefix, path].filter(Boolean).join(".") || "body";
    return { field, message: issue.message };
  });
}

function invalid(prefix: string, issues: readonly v.BaseIssue<unknown>[]): ApiError {
  const details = detailsOf(prefix, issues);
  const first = details[0];
  return new ApiError("invalid_request", first ? `${first.field}: ${first.message}` : "invalid request", details);
}

/** Parses `value` with `schema`, or throws a 400 whose details name the fields under `prefix`. */
export function parseWith<S extends v.GenericSchema>(schema: S, value: unknown, prefix: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value, { abortPipeEarly: true });
  if (!result.success) throw invalid(prefix, result.issues);
  return result.output;
}

/** The JSON body, checked against `schema` (a missing or non-JSON body is a 400). */
export async function readBody<S extends v.GenericSchema>(c: Context, schema: S): Promise<v.InferOutput<S>> {
  const text = await c.req.text();
  return parseWith(schema, parseJsonText(text), "");
}

/** JSON text as a value: 400 when it is not JSON or nests deeper than MAX_JSON_DEPTH (checked before parsing, so no depth overflows a stack). */
export function parseJsonText(text: string): unknown {
  if (jsonTextDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new ApiError("invalid_json", `the request body is ${JSON_DEPTH_MESSAGE}`, [{ field: "body", message: JSON_DEPTH_MESSAGE }]);
  }
  let value: unknown;
  try {
    value = text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    throw new ApiError("invalid_json", "the request body is not valid JSON", [{ field: "body", message: "not valid JSON" }]);
  }
  return value;
}

/** The query string as an object of strings, checked against `schema`; unknown keys are refused. */
export function readQuery<S extends v.GenericSchema>(c: Context, schema: S): v.InferOutput<S> {
  return parseWith(schema, c.req.query(), "query");
}

/** A path parameter that must be a positive integer id. */
export function idParam(c: Context, name = "id"): number {
  const raw = c.req.param(name) ?? "";
  const id = /^[1-9][0-9]{0,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id)) throw new ApiError("invalid_request", `path.${name}: expected a positive integer id`, [{ field: `path.${name}`, message: "expected a positive integer id" }]);
  return id;
}

// ---------------------------------------------------------------------------------------------
// schema pieces shared by the routes

/** A JSON object (variables, settings, event payloads); valibot's record alone takes an array as an object. */
export const JsonObjectSchema = v.intersect(
  [v.record(v.string(), v.unknown()), v.custom<Record<string, unknown>>((value) => !Array.isArray(value), "expected a JSON object")],
  "expected a JSON object",
);

/** An instant: epoch milliseconds, ISO 8601, or Mage's `YYYY-MM-DD HH:MM:SS` (UTC), within kiln's bounds (core's one schema). */
export const InstantSchema = CoreInstantSchema;

/**
 * Query-string forms: `_limit` (1-1000), `_after` (the cursor given as metadata.after) and Mage's
 * `_offset` (up to MAX_PAGE_OFFSET rows skipped; not with `_after`).
 */
export const PageQuery = {
  _limit: v.optional(v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,3}$/, "expected an integer from 1 to 1000"), v.transform(Number), v.maxValue(1000, "expected an integer from 1 to 1000"))),
  _after: v.optional(v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,15}$/, "expected the cursor given as metadata.after"))),
  _offset: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^(0|[1-9][0-9]{0,4})$/, `expected an integer from 0 to ${MAX_PAGE_OFFSET} (deeper pages: _after)`),
      v.transform(Number),
      v.maxValue(MAX_PAGE_OFFSET, `expected an integer from 0 to ${MAX_PAGE_OFFSET} (deeper pages: _after)`),
    ),
  ),
};

/** A repeated query key such as Mage's `status[]` (its schema entry, so strict schemas accept the key). */
export const RepeatedQuery = v.optional(v.string());

/**
 * The values of a repeated query key (`status[]=a&status[]=b`, or `status[]=a,b`), each one of
 * `allowed`; undefined when the key is absent. A bad value is a 400 naming the key.
 */
export function repeatedQuery<T extends string>(c: Context, key: string, allowed: readonly T[]): T[] | undefined {
  const raw = c.req.queries(key);
  if (raw === undefined) return undefined;
  const values = raw.flatMap((value) => value.split(",")).map((value) => value.trim());
  for (const value of values) {
    if (!(allowed as readonly string[]).includes(value)) {
      const message = `expected each of ${allowed.join(", ")}`;
      throw new ApiError("invalid_request", `query.${key}: ${message}`, [{ field: `query.${key}`, message }]);
    }
  }
  return values as T[];
}

/** The page a list route asks the store for: `_limit` (default 40), and `_after` or `_offset` (a 400 for both). */
export function pageOf(query: { _limit?: number | undefined; _after?: string | undefined; _offset?: number | undefined }): PageRequest {
  if (query._after !== undefined && query._offset !== undefined) {
    throw new ApiError("invalid_request", "query._offset: not with _after (use one)", [{ field: "query._offset", message: "not with _after (use one)" }]);
  }
  return { limit: query._limit ?? 40, after: query._after ?? null, ...(query._offset !== undefined ? { offset: query._offset } : {}) };
}

/** An integer id in a query string. */
export const QueryId = v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,15}$/, "expected a positive integer id"), v.transform(Number));
