/**
 * Checking an event pattern before it is stored (API, triggers.yaml), so a typo is an error
 * naming its place instead of a trigger that silently never fires. The rules are match.ts's.
 */
import type { JsonObject } from "../domain.ts";
import { isJsonObject } from "./match.ts";
import { KilnError } from "../errors.ts";

/** A pattern kiln cannot match with; `path` names the place (`detail.size[0].numeric`). */
export class EventPatternError extends KilnError {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super("invalid_input", path ? `${path}: ${detail}` : detail, path || null, detail);
    this.name = "EventPatternError";
  }
}

const FILTERS = ["prefix", "suffix", "anything-but", "numeric", "exists"] as const;
const OPERATORS = ["=", "<", "<=", ">", ">="];
/** Deeper than this is a mistake (or an attack), not a pattern. */
const MAX_DEPTH = 32;

const isScalar = (value: unknown): boolean => value === null || ["string", "number", "boolean"].includes(typeof value);

/** Returns `value` as a pattern, or throws EventPatternError naming what is wrong. */
export function checkEventPattern(value: unknown): JsonObject {
  checkObject(value, "", 0);
  return value as JsonObject;
}

function join(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

function checkObject(value: unknown, path: string, depth: number): void {
  if (!isJsonObject(value)) throw new EventPatternError(path, "expected an object");
  if (depth > MAX_DEPTH) throw new EventPatternError(path, `nested deeper than ${MAX_DEPTH} levels`);
  for (const [key, expected] of Object.entries(value)) {
    const at = join(path, key);
    if (key === "$or") {
      if (!Array.isArray(expected) || expected.length === 0) throw new EventPatternError(at, "expected a non-empty list of patterns");
      expected.forEach((alternative, i) => checkObject(alternative, join(at, i), depth + 1));
    } else if (Array.isArray(expected)) {
      if (expected.length === 0) throw new EventPatternError(at, "an empty list matches nothing; list the values to match");
      expected.forEach((option, i) => checkOption(option, join(at, i)));
    } else if (isJsonObject(expected)) {
      checkObject(expected, at, depth + 1);
    } else if (!isScalar(expected)) {
      throw new EventPatternError(at, "expected a list, an object or a scalar");
    }
  }
}

/** One item of a list: a scalar, or a content filter with one key. */
function checkOption(option: unknown, path: string): void {
  if (isScalar(option)) return;
  if (!isJsonObject(option)) throw new EventPatternError(path, "expected a scalar or a content filter such as {\"prefix\": \"raw/\"}");
  const keys = Object.keys(option);
  const key = keys[0];
  if (keys.length !== 1 || key === undefined || !(FILTERS as readonly string[]).includes(key)) {
    throw new EventPatternError(path, `expected a content filter with one key of ${FILTERS.join(", ")}`);
  }
  checkFilter(key as (typeof FILTERS)[number], option[key], join(path, key));
}

function checkFilter(kind: (typeof FILTERS)[number], argument: unknown, path: string): void {
  switch (kind) {
    case "prefix":
    case "suffix":
      if (typeof argument !== "string") throw new EventPatternError(path, "expected a string");
      return;
    case "exists":
      if (typeof argument !== "boolean") throw new EventPatternError(path, "expected true or false");
      return;
    case "anything-but":
      if (isScalar(argument)) return;
      if (Array.isArray(argument) && argument.length > 0 && argument.every(isScalar)) return;
      if (isJsonObject(argument) && Object.keys(argument).length === 1 && ("prefix" in argument || "suffix" in argument)) {
        const inner = "prefix" in argument ? "prefix" : "suffix";
        checkFilter(inner, argument[inner], join(path, inner));
        return;
      }
      throw new EventPatternError(path, "expected a scalar, a non-empty list of scalars, or {\"prefix\": ...}");
    case "numeric": {
      const terms = argument;
      const valid =
        Array.isArray(terms) &&
        terms.length > 0 &&
        terms.length % 2 === 0 &&
        terms.length <= 4 &&
        terms.every((term, i) => (i % 2 === 0 ? OPERATORS.includes(term as string) : typeof term === "number" && Number.isFinite(term)));
      if (!valid) throw new EventPatternError(path, `expected [operator, number] or two such pairs, operators ${OPERATORS.join(" ")}`);
      return;
    }
  }
}

/** Mage's event matchers (`[{event_type, name, pattern}]`): one pattern, or `$or` of several. */
export function patternOfMatchers(matchers: readonly unknown[]): JsonObject {
  const patterns = matchers.map((matcher, i) => {
    if (!isJsonObject(matcher) || !("pattern" in matcher)) throw new EventPatternError(`[${i}]`, "expected an event matcher with a pattern");
    try {
      return checkEventPattern(matcher.pattern);
    } catch (error) {
      if (error instanceof EventPatternError) throw new EventPatternError(error.path ? `[${i}].pattern.${error.path}` : `[${i}].pattern`, error.detail);
      throw error;
    }
  });
  if (patterns.length === 0) throw new EventPatternError("", "expected at least one event matcher");
  return patterns.length === 1 ? (patterns[0] as JsonObject) : { $or: patterns };
}
