/**
 * The bounds of bounds.ts as valibot schemas, for the routes and loaders that parse with them.
 *
 * ```ts
 * v.parse(InstantSchema, "2024-01-01 00:00:00");   // 1704067200000 (Mage's form is UTC)
 * v.parse(InstantSchema, 8640000000000001);        // throws: outside 0001-01-01 .. 9999-12-31
 * ```
 */
import * as v from "valibot";
import { INSTANT_EXPECTED, nameProblem, parseInstant } from "./bounds.ts";

/** An instant in a JSON body or a file: epoch ms or ISO 8601 (see parseInstant), bounded. */
export const InstantSchema = v.pipe(
  v.union([v.number(), v.string()], INSTANT_EXPECTED),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const ms = parseInstant(dataset.value);
    if (ms === null) {
      addIssue({ message: INSTANT_EXPECTED });
      return NEVER;
    }
    return ms;
  }),
);

/** A whole number from `min` to `max` (both safe integers), e.g. a count, seconds or an id. */
export function boundedInteger(min: number, max: number, message = `expected a whole number from ${min} to ${max}`) {
  return v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message));
}

/** A name (trimmed): non-empty, at most MAX_NAME_LENGTH characters, no control or bidi characters. */
export const NameSchema = v.pipe(
  v.string("expected a name"),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const problem = nameProblem(dataset.value);
    if (problem) addIssue({ message: problem });
  }),
  v.trim(),
);
