/**
 * Execution dates of a time schedule. croner only enumerates matching WALL times (it runs on
 * clock values, at UTC offset 0); each wall time is then mapped to instants here, so the DST
 * rules are kiln's and identical for every expression (croner's own DST handling differs
 * between hourly-style and daily-style expressions).
 */
import { Cron } from "croner";
import { InvalidScheduleError } from "./errors.ts";
import { cronMode, parseScheduleInterval, type ScheduleExpression } from "./interval.ts";
import { landingInterval } from "./landing.ts";
import { assertTimeZone, offsetTimeline, resolveClockValue, TIMELINE_PAD } from "./wall-time.ts";

/** A wall time the clock skips: `skip` it, or `shift` it to the instant the clock jumps. */
export type DstGapPolicy = "skip" | "shift";
/** A wall time that happens twice: fire at its `first` occurrence, its `last`, or `both`. */
export type DstOverlapPolicy = "first" | "last" | "both";

export const DST_GAP_POLICIES: readonly DstGapPolicy[] = ["skip", "shift"];
export const DST_OVERLAP_POLICIES: readonly DstOverlapPolicy[] = ["first", "last", "both"];
/** Defaults chosen so a daily job runs exactly once every local day. */
export const DEFAULT_DST_GAP: DstGapPolicy = "shift";
export const DEFAULT_DST_OVERLAP: DstOverlapPolicy = "first";

/** Everything the time math needs to know about a schedule. Times are UTC epoch ms. */
export interface ScheduleSpec {
  interval: ScheduleExpression;
  /** IANA name; wall times are read in this zone. */
  timezone: string;
  /** No execution date before this instant; for @once, the execution date itself. */
  startTime: number | null;
  dstGap: DstGapPolicy;
  dstOverlap: DstOverlapPolicy;
}

/** Settings as written in triggers.yaml; absent ones take kiln's defaults. */
export interface ScheduleSpecInput {
  interval: string | ScheduleExpression;
  timezone?: string | null;
  startTime?: number | null;
  dstGap?: DstGapPolicy | null;
  dstOverlap?: DstOverlapPolicy | null;
  /** landing_time_enabled: a preset's dates take start_time's time fields (see landing.ts). */
  landingTime?: boolean;
}

const HOUR = 3_600_000;
// nextOccurrence gives up after this long: any cron that can match at all does so well within
// (the rarest, Feb 29 on a given weekday, recurs within 28 years)
const SEARCH_HORIZON = 100 * 366 * 24 * HOUR;

/** Validates settings and fills defaults (UTC, shift, first); throws InvalidScheduleError. */
export function scheduleSpec(input: ScheduleSpecInput): ScheduleSpec {
  const parsed = typeof input.interval === "string" ? parseScheduleInterval(input.interval) : input.interval;
  const timezone = input.timezone ?? "UTC";
  assertTimeZone(timezone);
  const dstGap = input.dstGap ?? DEFAULT_DST_GAP;
  if (!DST_GAP_POLICIES.includes(dstGap)) throw new InvalidScheduleError(`invalid dst_gap ${JSON.stringify(dstGap)}: expected skip or shift`);
  const dstOverlap = input.dstOverlap ?? DEFAULT_DST_OVERLAP;
  if (!DST_OVERLAP_POLICIES.includes(dstOverlap)) {
    throw new InvalidScheduleError(`invalid dst_overlap ${JSON.stringify(dstOverlap)}: expected first, last or both`);
  }
  const startTime = input.startTime ?? null;
  if (startTime !== null && !Number.isFinite(startTime)) throw new InvalidScheduleError(`invalid start_time ${startTime}`);
  const interval = input.landingTime ? landingInterval(parsed, startTime, timezone) : parsed;
  return { interval, timezone, startTime, dstGap, dstOverlap };
}

const compiled = new Map<string, Cron>();

function cronFor(expression: string): Cron {
  let cron = compiled.get(expression);
  if (cron === undefined) {
    // utcOffset 0, not timezone "UTC": same clock, but croner skips Intl entirely (about 7x faster)
    cron = new Cron(expression, { utcOffset: 0, mode: cronMode(expression) });
    // a project has a handful of expressions; the bound only guards against unbounded growth
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(expression, cron);
  }
  return cron;
}

/**
 * Ascending execution dates in (fromExclusive, toInclusive]; with `limit`, only the first
 * `limit`. @once yields its startTime (none without one); @always_on yields none (the
 * scheduler starts it whenever no run is active).
 */
export function occurrences(spec: ScheduleSpec, fromExclusive: number, toInclusive: number, limit?: number): number[] {
  assertTimeZone(spec.timezone);
  if (!Number.isFinite(fromExclusive) || !Number.isFinite(toInclusive)) {
    throw new RangeError(`occurrences: window bounds must be finite (got ${fromExclusive}, ${toInclusive})`);
  }
  const from = spec.startTime === null ? fromExclusive : Math.max(fromExclusive, spec.startTime - 1);
  if (from >= toInclusive || (limit !== undefined && limit <= 0)) return [];
  const interval = spec.interval;
  if (interval.kind === "always_on") return [];
  if (interval.kind === "once") return spec.startTime !== null && spec.startTime > from && spec.startTime <= toInclusive ? [spec.startTime] : [];
  if (limit === undefined) return cronWindow(spec, interval, from, toInclusive);
  // Growing windows: a dense cron fills `limit` in the first hour, a sparse one is not
  // enumerated across the whole range just to find a few dates.
  const out: number[] = [];
  let span = HOUR;
  for (let a = from; a < toInclusive; a += span, span *= 2) {
    const b = Math.min(toInclusive, a + span);
    for (const t of cronWindow(spec, interval, a, b)) {
      out.push(t);
      if (out.length >= limit) return out;
    }
    if (b === toInclusive) break;
  }
  return out;
}

/** The first execution date strictly after `after`, or null if there is none. */
export function nextOccurrence(spec: ScheduleSpec, after: number): number | null {
  return occurrences(spec, after, after + SEARCH_HORIZON, 1)[0] ?? null;
}

/** The last execution date in (notBeforeExclusive, atOrBefore], or null if there is none. */
export function previousOccurrence(spec: ScheduleSpec, atOrBefore: number, notBeforeExclusive = atOrBefore - SEARCH_HORIZON): number | null {
  let span = HOUR;
  // Growing windows backwards, for the same reason as occurrences' limit
  for (let b = atOrBefore; b > notBeforeExclusive; b -= span, span *= 2) {
    const a = Math.max(notBeforeExclusive, b - span);
    const found = occurrences(spec, a, b);
    if (found.length > 0) return found[found.length - 1]!;
    if (a === notBeforeExclusive) break;
  }
  return null;
}

/** Whether a clock value falls on `day` of its month, or on the last day of a month without it. */
function isMonthDay(clock: number, day: number): boolean {
  const d = new Date(clock);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  return d.getUTCDate() === Math.min(day, last);
}

/** Dates of a cron in (from, to]: enumerate wall times, map each to instants by the DST rules. */
function cronWindow(spec: ScheduleSpec, interval: ScheduleExpression & { kind: "cron" }, from: number, to: number): number[] {
  // The timeline reaches past the window so an overlap straddling an edge is seen whole:
  // "first"/"last" must pick the same instant whichever window a wall time is looked at from.
  const segments = offsetTimeline(spec.timezone, from - TIMELINE_PAD, to + TIMELINE_PAD);
  let minOffset = Infinity;
  let maxOffset = -Infinity;
  for (const seg of segments) {
    // a segment ending right at from + 1 still counts: a gap ending at that instant shows its offset
    if (seg.end < from + 1 || seg.start > to) continue;
    minOffset = Math.min(minOffset, seg.offset);
    maxOffset = Math.max(maxOffset, seg.offset);
  }
  // every instant in the window, and every gap whose jump is in it, shows a wall time in this range
  const clockLo = from + 1 + minOffset;
  const clockHi = to + maxOffset;
  const cron = cronFor(interval.cron);
  const monthDay = interval.monthDay;
  const out: number[] = [];
  const keep = (t: number) => {
    if (t > from && t <= to) out.push(t);
  };
  // nextRun is strictly after its argument, and croner counts whole seconds
  for (let next = cron.nextRun(new Date(clockLo - 1)); next !== null; next = cron.nextRun(next)) {
    const clock = next.getTime();
    if (clock > clockHi) break;
    if (monthDay !== undefined && !isMonthDay(clock, monthDay)) continue;
    const { instants, gapEnd } = resolveClockValue(segments, clock);
    if (instants.length === 0) {
      if (gapEnd !== null && spec.dstGap === "shift") keep(gapEnd);
    } else if (instants.length === 1 || spec.dstOverlap === "both") {
      for (const t of instants) keep(t);
    } else {
      keep(spec.dstOverlap === "first" ? instants[0]! : instants[instants.length - 1]!);
    }
  }
  // overlaps map later wall times to earlier instants, and a gap maps many to one
  out.sort((a, b) => a - b);
  return out.filter((t, i) => i === 0 || t !== out[i - 1]);
}
