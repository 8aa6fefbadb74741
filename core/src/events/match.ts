/**
 * Event patterns, EventBridge-style: does an event (any JSON object) match a trigger's pattern?
 *
 * - Every key of the pattern must be in the event (unless its list says `{"exists": false}`).
 * - A list means "one of": the event's value equals one of its scalars or passes one of its
 *   content filters: `{"prefix": "raw/"}`, `{"suffix": ".csv"}`, `{"anything-but": [...]}`,
 *   `{"numeric": [">", 0, "<=", 5]}`, `{"exists": true|false}`.
 * - An object recurses into the event's value at that key.
 * - Any other value (a scalar) must equal the event's value exactly (kiln's shorthand for a
 *   one-item list).
 * - `"$or": [pattern, ...]` at any level matches when one of its patterns does.
 * - Where the event holds a list, the pattern matches when one of its items does. That is how a
 *   pattern addresses S3 notification records: `{"Records": {"s3": {"bucket": {"name": ["b"]}}}}`
 *   matches when any record is in bucket b (one record must satisfy the whole sub-pattern).
 * - `{}` matches every event.
 *
 * Patterns are checked once with checkEventPattern (pattern.ts); this module assumes a valid one.
 */
import type { JsonObject } from "../domain.ts";

/** A JSON mapping (not a list, not null, not a Date or other class instance). */
export function isJsonObject(value: unknown): value is JsonObject {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Whether `event` matches `pattern`. */
export function matchesEvent(pattern: JsonObject, event: unknown): boolean {
  return matchObject(pattern, event);
}

function matchObject(pattern: JsonObject, value: unknown): boolean {
  if (Array.isArray(value)) return value.some((item) => matchObject(pattern, item));
  if (!isJsonObject(value)) return false;
  for (const [key, expected] of Object.entries(pattern)) {
    if (key === "$or") {
      if (!(expected as JsonObject[]).some((alternative) => matchObject(alternative, value))) return false;
      continue;
    }
    const present = Object.hasOwn(value, key);
    if (Array.isArray(expected)) {
      if (!matchList(expected, present, value[key])) return false;
    } else if (!present) {
      return false;
    } else if (isJsonObject(expected)) {
      if (!matchObject(expected, value[key])) return false;
    } else if (!matchScalar(expected, value[key])) {
      return false;
    }
  }
  return true;
}

/** A list: one of its items matches the value (or, for a list value, one of the value's items). */
function matchList(options: readonly unknown[], present: boolean, value: unknown): boolean {
  if (!present) return options.some((option) => isJsonObject(option) && option.exists === false);
  return options.some((option) => {
    if (isJsonObject(option) && "exists" in option) return option.exists === true;
    const values = Array.isArray(value) ? value : [value];
    return values.some((item) => (isJsonObject(option) ? matchFilter(option, item) : matchScalar(option, item)));
  });
}

function matchScalar(expected: unknown, value: unknown): boolean {
  if (Array.isArray(value)) return value.some((item) => item === expected);
  return value === expected;
}

/** One content filter (`{"prefix": "raw/"}`) against one scalar. */
function matchFilter(filter: JsonObject, value: unknown): boolean {
  if ("prefix" in filter) return typeof value === "string" && value.startsWith(filter.prefix as string);
  if ("suffix" in filter) return typeof value === "string" && value.endsWith(filter.suffix as string);
  if ("anything-but" in filter) {
    const excluded = filter["anything-but"];
    if (isJsonObject(excluded)) return !matchFilter(excluded, value);
    return !(Array.isArray(excluded) ? excluded : [excluded]).some((item) => item === value);
  }
  if ("numeric" in filter) {
    if (typeof value !== "number") return false;
    const terms = filter.numeric as Array<string | number>;
    for (let i = 0; i < terms.length; i += 2) {
      if (!compare(value, terms[i] as string, terms[i + 1] as number)) return false;
    }
    return true;
  }
  return false;
}

function compare(value: number, operator: string, bound: number): boolean {
  switch (operator) {
    case "=":
      return value === bound;
    case "<":
      return value < bound;
    case "<=":
      return value <= bound;
    case ">":
      return value > bound;
    case ">=":
      return value >= bound;
    default:
      return false;
  }
}
