/**
 * The bounds every input is held to before anything is written: instants, whole numbers,
 * names and JSON depth. One module, so the server's routes, the CLI's flags, the project loader
 * and the store refuse the same values with the same words; and the read side shows a stored
 * value outside them as invalid instead of throwing (a row written before these bounds held).
 *
 * The valibot schemas built on them are in bound-schemas.ts: @kiln/core's entry, which every
 * block process loads, imports these checks and not valibot.
 *
 * ```ts
 * parseInstant("2024-01-01 00:00:00");            // 1704067200000 (Mage's form is UTC)
 * parseInstant(8640000000000001);                 // null: outside 0001-01-01 .. 9999-12-31
 * nameProblem("a\u0000b");                          // "control character U+0000 ..."
 * jsonTextDepth('{"a":[[1]]}');                     // 3
 * ```
 */
import { KilnError } from "./errors.ts";

/** The earliest instant kiln accepts: 0001-01-01T00:00:00.000Z. */
export const MIN_INSTANT = -62_135_596_800_000;
/** The latest instant kiln accepts: 9999-12-31T23:59:59.999Z (ISO 8601's four-digit years, the partition's YYYYMMDD). */
export const MAX_INSTANT = 253_402_300_799_999;
/** How a refusal names the range. */
export const INSTANT_RANGE = "from 0001-01-01 to 9999-12-31 (UTC)";

/** The deepest JSON (objects and arrays nested) kiln reads from a request, a flag or a file. */
export const MAX_JSON_DEPTH = 64;

/** The largest count or number of seconds a setting takes (sla, timeout, limits): 100 years in seconds. */
export const MAX_SETTING_NUMBER = 3_153_600_000;

/** The longest name (trigger, backfill, user, API key, pipeline) kiln stores. */
export const MAX_NAME_LENGTH = 255;

/** An input outside kiln's bounds, found at a write path (the boundaries refuse it earlier, as a 400). */
export class BoundsError extends KilnError {
  declare readonly field: string;

  constructor(field: string, message: string) {
    super("malformed", `${field}: ${message}`, field, message);
    this.name = "BoundsError";
  }
}

/** True for whole epoch milliseconds within MIN_INSTANT..MAX_INSTANT. */
export function isInstant(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= MIN_INSTANT && value <= MAX_INSTANT;
}

/** Throws BoundsError naming `field` unless `value` is an instant (null passes when `nullable`). */
export function assertInstant(field: string, value: unknown, nullable = false): void {
  if (nullable && (value === null || value === undefined)) return;
  if (!isInstant(value)) throw new BoundsError(field, `expected a time ${INSTANT_RANGE} in whole epoch milliseconds, got ${String(value)}`);
}

/** The UTC ISO 8601 form of an instant; null for null, and for a stored value outside the bounds. */
export function isoOrNull(ms: number | null | undefined): string | null {
  return isInstant(ms) ? new Date(ms).toISOString() : null;
}

const MAGE_DATE_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?$/;
const NO_OFFSET_DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$/;

/**
 * Epoch ms of an instant given as epoch milliseconds or an ISO 8601 string (a date, or a
 * date-time; without an offset, and in Mage's `YYYY-MM-DD HH:MM:SS`, it is UTC); null when it is
 * neither, names a day its month lacks (Date.parse rolls Feb 30 over), or lies outside the bounds.
 */
export function parseInstant(value: unknown): number | null {
  if (typeof value === "number") return isInstant(value) ? value : null;
  if (typeof value !== "string" || value.length > 64) return null;
  // Date.parse reads an offset-less date-time in the process's zone: kiln speaks UTC
  const text = MAGE_DATE_TIME.test(value) || NO_OFFSET_DATE_TIME.test(value) ? `${value.replace(" ", "T")}Z` : value;
  const ms = Date.parse(text);
  const ymd = /^(\d{4})-(\d\d)-(\d\d)/.exec(value);
  if (ymd) {
    const [year, month, day] = [Number(ymd[1]), Number(ymd[2]), Number(ymd[3])];
    const days = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
    if (days === undefined || day < 1 || day > days) return null;
  }
  return isInstant(ms) ? ms : null;
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** What an instant input must be, for messages. */
export const INSTANT_EXPECTED = `expected an ISO 8601 date-time or whole epoch milliseconds, ${INSTANT_RANGE}`;

/** Characters a name may not hold: C0/C1 controls (NUL truncates in C code), and bidi controls that make text read other than it is stored. */
const FORBIDDEN_IN_NAMES = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/** Why `name` is not acceptable as a name, or null when it is. */
export function nameProblem(name: string): string | null {
  const found = FORBIDDEN_IN_NAMES.exec(name);
  if (found) {
    const code = `U+${(found[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
    const kind = /[\u0000-\u001f\u007f-\u009f]/.test(found[0]) ? "control character" : "bidirectional control character";
    return `must not contain the ${kind} ${code}`;
  }
  if (name.trim() === "") return "expected a non-empty name";
  if (name.length > MAX_NAME_LENGTH) return `expected at most ${MAX_NAME_LENGTH} characters`;
  return null;
}

/** Throws BoundsError naming `field` when `name` is no acceptable name. */
export function assertName(field: string, name: string): void {
  const problem = nameProblem(name);
  if (problem) throw new BoundsError(field, problem);
}

/**
 * How deeply objects and arrays nest in JSON text, counted without parsing (so text nested a
 * million deep costs a scan, not a stack overflow); stops counting past `limit`.
 */
export function jsonTextDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */ || ch === 91 /* [ */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (ch === 125 /* } */ || ch === 93 /* ] */) depth--;
  }
  return deepest;
}

/** How deeply objects and arrays nest in a parsed value (iterative: no recursion to overflow); stops counting past `limit`. */
export function jsonValueDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 0]];
  const seen = new Set<object>();
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const [node, depth] = item;
    if (node === null || typeof node !== "object" || seen.has(node)) continue;
    seen.add(node);
    const here = depth + 1;
    if (here > deepest) {
      deepest = here;
      if (deepest > limit) return deepest;
    }
    for (const child of Array.isArray(node) ? node : Object.values(node)) pending.push([child, here]);
  }
  return deepest;
}

/** The refusal for JSON nested too deeply. */
export const JSON_DEPTH_MESSAGE = `nested more than ${MAX_JSON_DEPTH} levels deep`;
