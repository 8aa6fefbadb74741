/**
 * Errors by code: every core error code has one HTTP status (server/src/errors.ts), a core error
 * becomes the API's envelope by its code and field alone, and no server module decides what an
 * error means by reading its message.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { ERROR_CODES, KilnError, type ErrorCode } from "@kiln/core";
import { ScheduleInputError } from "@kiln/core/api";
import { PasswordCostError, UserInputError } from "@kiln/core/auth";
import { BoundsError } from "@kiln/core/bounds";
import { IllegalTransitionError } from "@kiln/core/engine";
import { EventPatternError } from "@kiln/core/events";
import { InvalidScheduleError } from "@kiln/core/schedule";
import { apiErrorOf, ApiError, rethrowUnder, statusOf, toApiError } from "../../server/src/errors.ts";

const ROOT = join(import.meta.dir, "..", "..");

describe("the code → status table", () => {
  test("every core code has the status the API documents", () => {
    const expected: Record<ErrorCode, [number, string]> = {
      invalid_input: [422, "unprocessable"],
      malformed: [400, "invalid_request"],
      not_found: [404, "not_found"],
      conflict: [409, "conflict"],
      illegal_transition: [409, "conflict"],
      unauthenticated: [401, "unauthenticated"],
      forbidden: [403, "forbidden"],
      rate_limited: [429, "too_many_requests"],
      too_large: [413, "payload_too_large"],
      unsupported: [409, "conflict"],
      unavailable: [503, "unavailable"],
    };
    expect([...ERROR_CODES].sort() as string[]).toEqual(Object.keys(expected).sort());
    for (const code of ERROR_CODES) {
      const api = toApiError(new KilnError(code, "refused"));
      const got: { code: string; status: number; api: [number, string] } = { code, status: statusOf(code), api: [api.status, api.code] };
      expect(got).toEqual({ code, status: expected[code][0], api: expected[code] });
    }
  });

  test("an ApiError's status follows from its code", () => {
    expect(new ApiError("not_found", "x").status).toBe(404);
    expect(new ApiError("invalid_json", "x").status).toBe(400);
    expect(new ApiError("too_many_requests", "x").status).toBe(429);
    expect(toApiError(new Error("a bug")).status).toBe(500);
    expect(toApiError(new Error("a bug")).message).toBe("internal error");
  });

  test("core's error classes carry the codes their refusals mean", () => {
    const cases: Array<[KilnError, ErrorCode, number]> = [
      [new ScheduleInputError("name", "expected a non-empty name"), "invalid_input", 422],
      [new ScheduleInputError("id", "no pipeline schedule 3", "not_found"), "not_found", 404],
      [new BoundsError("execution_date", "expected a time"), "malformed", 400],
      [new UserInputError("username", "bob is taken", "conflict"), "conflict", 409],
      [new UserInputError("password", "expected at least 8 characters"), "malformed", 400],
      [new IllegalTransitionError("pipeline_run", "pipeline run 1", "completed", "running"), "illegal_transition", 409],
      [new PasswordCostError(600_000, 100_000), "unsupported", 409],
      [new InvalidScheduleError("bad cron"), "invalid_input", 422],
      [new EventPatternError("detail.size", "expected a list"), "invalid_input", 422],
    ];
    for (const [error, code, status] of cases) {
      const got: { name: string; code: string; status: number } = { name: error.name, code: error.code, status: toApiError(error).status };
      expect(got).toEqual({ name: error.name, code, status });
    }
  });
});

describe("a core error as the API's envelope", () => {
  const body = (e: ApiError) => ({ status: e.status, code: e.code, message: e.message, details: e.details });

  test("not found: the message alone", () => {
    expect(body(apiErrorOf(new KilnError("not_found", "backfill 9 does not exist", "id"), "backfill"))).toEqual({
      status: 404,
      code: "not_found",
      message: "backfill 9 does not exist",
      details: [],
    });
  });

  test("invalid input: the field named under the body's key, its problem without the field's name", () => {
    const error = new KilnError("invalid_input", "block_uuid: pipeline p has no block \"x\"", "block_uuid");
    expect(body(apiErrorOf(error, "backfill"))).toEqual({
      status: 422,
      code: "unprocessable",
      message: 'backfill.block_uuid: pipeline p has no block "x"',
      details: [{ field: "backfill.block_uuid", message: 'pipeline p has no block "x"' }],
    });
    // without a key the field is named as the core error names it
    expect(body(apiErrorOf(new ScheduleInputError("sla", "expected a positive number")))).toEqual({
      status: 422,
      code: "unprocessable",
      message: "sla: expected a positive number",
      details: [{ field: "sla", message: "expected a positive number" }],
    });
  });

  test("a conflict under a key lists the field with the whole sentence; a state-machine refusal has no field", () => {
    expect(body(apiErrorOf(new KilnError("conflict", "backfill 3 is running: cancel it before deleting it", "status"), "backfill"))).toEqual({
      status: 409,
      code: "conflict",
      message: "backfill 3 is running: cancel it before deleting it",
      details: [{ field: "backfill.status", message: "backfill 3 is running: cancel it before deleting it" }],
    });
    const illegal = new IllegalTransitionError("backfill", "backfill 3", "completed", "running");
    expect(body(apiErrorOf(illegal, "backfill"))).toEqual({ status: 409, code: "conflict", message: illegal.message, details: [] });
  });

  test("out of bounds: a 400 naming the field", () => {
    expect(body(toApiError(new BoundsError("execution_date", "expected a time")))).toEqual({
      status: 400,
      code: "invalid_request",
      message: "execution_date: expected a time",
      details: [{ field: "execution_date", message: "expected a time" }],
    });
  });

  test("rethrowUnder rethrows core errors as ApiErrors and anything else as it was", () => {
    const bug = new TypeError("a bug");
    expect(() => rethrowUnder("pipeline_run")(bug)).toThrow(bug);
    let thrown: unknown;
    try {
      rethrowUnder("pipeline_run")(new KilnError("invalid_input", "from_block_uuid: pipeline p has no block x", "from_block_uuid"));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).details).toEqual([{ field: "pipeline_run.from_block_uuid", message: "pipeline p has no block x" }]);
  });
});

/** Every .ts/.tsx file under `dir`. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (/\.tsx?$/.test(name)) out.push(path);
  }
  return out;
}

/** Ways of deciding what an error is by its text or its class's name instead of its code or class. */
const BY_TEXT: Array<[string, RegExp]> = [
  ["a regular expression tested against a message", /\.test\([^)]*\bmessage\b/],
  ["a regular expression run over a message", /\.exec\([^)]*\bmessage\b/],
  ["a message matched, searched or compared by its start or end", /\bmessage\s*\.\s*(match|matchAll|search|startsWith|endsWith|includes|replace|replaceAll)\s*\(/],
  ["an error told by its name string", /\b(error|err|e|cause)\.name\s*[!=]==?/],
];

describe("no status is chosen by an error's message", () => {
  test("server/src (errors.ts, the API's routes, the UI) never reads an error's text to decide", () => {
    const found: string[] = [];
    for (const file of sources(join(ROOT, "server", "src"))) {
      const lines = readFileSync(file, "utf8").split("\n");
      lines.forEach((line, i) => {
        for (const [what, pattern] of BY_TEXT) if (pattern.test(line)) found.push(`${relative(ROOT, file)}:${i + 1}: ${what}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });

  test("the check finds what it forbids", () => {
    const samples = [
      'if (error instanceof Error && /UNIQUE constraint failed/.test(error.message)) {',
      'if (/^no /.test(error.message.replace(/^[^:]+: /, ""))) return x;',
      'if (error.name === "ScheduleInputError") throw y;',
      'const m = /^(\\w+): /.exec(error.message);',
    ];
    for (const sample of samples) expect({ sample, caught: BY_TEXT.some(([, p]) => p.test(sample)) }).toEqual({ sample, caught: true });
  });
});
