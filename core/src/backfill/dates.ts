/**
 * A backfill's execution dates: from start_datetime, one every `interval_units` intervals, up to
 * end_datetime inclusive. All arithmetic is in UTC. Month and year steps are calendar steps
 * anchored on the start (the n-th date is start + n×units months, its day clamped to the month's
 * length), so Jan 31 monthly gives Feb 28/29, then Mar 31 — never a drift to the 28th.
 */
import { INTERVAL_TYPES, type IntervalType } from "../domain.ts";

/** The most execution dates one backfill may have: each becomes a pipeline run row. */
export const MAX_BACKFILL_DATES = 100_000;

/** What fixes a backfill's dates (a Backfill satisfies it). */
export interface BackfillRange {
  startDatetime: number;
  endDatetime: number;
  intervalType: IntervalType;
  intervalUnits: number;
}

const DAY_MS = 86_400_000;
// the largest |epoch ms| a Date can hold
const MAX_TIME = 8.64e15;

const FIXED_MS: Partial<Record<IntervalType, number>> = {
  minute: 60_000,
  hour: 3_600_000,
  day: DAY_MS,
  week: 7 * DAY_MS,
};
const MONTHS: Partial<Record<IntervalType, number>> = { month: 1, year: 12 };

const iso = (ms: number) => new Date(ms).toISOString();

// Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
function utcDate(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  return d.getTime();
}

/** `epochMs` plus `months` calendar months in UTC, the day of month clamped to the target month's length. */
export function addUtcMonths(epochMs: number, months: number): number {
  const d = new Date(epochMs);
  const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  const lastDay = new Date(utcDate(year, month + 1, 0)).getUTCDate();
  const timeOfDay = ((epochMs % DAY_MS) + DAY_MS) % DAY_MS;
  return utcDate(year, month, Math.min(d.getUTCDate(), lastDay)) + timeOfDay;
}

function check(b: BackfillRange): void {
  for (const field of ["startDatetime", "endDatetime"] as const) {
    const v = b[field];
    if (!Number.isInteger(v) || Math.abs(v) > MAX_TIME) {
      throw new RangeError(`backfill ${field === "startDatetime" ? "start_datetime" : "end_datetime"} must be a time in epoch milliseconds, got ${v}`);
    }
  }
  if (!INTERVAL_TYPES.includes(b.intervalType)) {
    throw new RangeError(`backfill interval_type must be one of ${INTERVAL_TYPES.join(", ")}, got ${String(b.intervalType)}`);
  }
  if (!Number.isSafeInteger(b.intervalUnits) || b.intervalUnits < 1) {
    throw new RangeError(`backfill interval_units must be a positive integer, got ${b.intervalUnits}`);
  }
  if (b.endDatetime < b.startDatetime) {
    throw new RangeError(`backfill end_datetime ${iso(b.endDatetime)} is before start_datetime ${iso(b.startDatetime)}`);
  }
}

/** How many execution dates a backfill has, computed without listing them; throws RangeError on a bad range. */
export function countBackfillExecutionDates(b: BackfillRange): number {
  check(b);
  const step = FIXED_MS[b.intervalType];
  if (step !== undefined) return Math.floor((b.endDatetime - b.startDatetime) / (step * b.intervalUnits)) + 1;
  const stepMonths = (MONTHS[b.intervalType] ?? 1) * b.intervalUnits;
  const s = new Date(b.startDatetime);
  const e = new Date(b.endDatetime);
  const monthsApart = (e.getUTCFullYear() - s.getUTCFullYear()) * 12 + (e.getUTCMonth() - s.getUTCMonth());
  // start + m months grows with m and stays in an earlier calendar month than the end while
  // m < monthsApart; so only the last whole step can overshoot the end (by its day or time)
  const k = Math.floor(monthsApart / stepMonths);
  return addUtcMonths(b.startDatetime, k * stepMonths) <= b.endDatetime ? k + 1 : k;
}

/**
 * The execution dates (UTC epoch ms, ascending) from start_datetime to end_datetime inclusive.
 * Throws RangeError if end < start, interval_units is not a positive integer, or there would be
 * more than `cap` dates (checked before any is listed).
 */
export function backfillExecutionDates(b: BackfillRange, cap: number = MAX_BACKFILL_DATES): number[] {
  const count = countBackfillExecutionDates(b);
  if (count > cap) {
    throw new RangeError(
      `backfill from ${iso(b.startDatetime)} to ${iso(b.endDatetime)} every ${b.intervalUnits} ${b.intervalType}(s) ` +
        `has ${count} execution dates, more than the limit of ${cap}: narrow the range or raise interval_units`,
    );
  }
  const dates = new Array<number>(count);
  const step = FIXED_MS[b.intervalType];
  const stepMonths = (MONTHS[b.intervalType] ?? 1) * b.intervalUnits;
  // each date is computed from the start, never from the previous date: no accumulated drift
  for (let n = 0; n < count; n++) {
    dates[n] = step !== undefined ? b.startDatetime + n * step * b.intervalUnits : addUtcMonths(b.startDatetime, n * stepMonths);
  }
  return dates;
}
