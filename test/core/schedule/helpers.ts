/** Shared helpers for the schedule tests: UTC instants from calendar fields, local-day windows. */
import { instantsOfWallTime, occurrences, resolveWallTime, type ScheduleSpec } from "../../../core/src/schedule/index.ts";

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A UTC instant; month is 1-12. */
export function utc(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

/** ISO strings, for readable assertion failures. */
export function iso(instants: readonly number[]): string[] {
  return instants.map((t) => new Date(t).toISOString());
}

/** The instant a local day starts (its first instant; the jump instant if midnight is skipped). */
export function localMidnight(tz: string, year: number, month: number, day: number): number {
  const wall = { year, month, day, hour: 0, minute: 0, second: 0 };
  const instants = instantsOfWallTime(wall, tz);
  return instants[0] ?? resolveWallTime(wall, tz).gapEnd!;
}

/** Execution dates whose instants fall on the given local day in the spec's timezone. */
export function runsOnLocalDay(spec: ScheduleSpec, year: number, month: number, day: number): number[] {
  const start = localMidnight(spec.timezone, year, month, day);
  const next = new Date(Date.UTC(year, month - 1, day + 1));
  const end = localMidnight(spec.timezone, next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate());
  return occurrences(spec, start - 1, end - 1);
}
