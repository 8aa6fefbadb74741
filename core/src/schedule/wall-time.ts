/**
 * Wall time (the civil clock in a timezone) and its mapping to UTC instants, with
 * Intl.DateTimeFormat only, so it runs anywhere JavaScript does.
 *
 * A "clock value" is a wall time encoded as if it were UTC (Date.UTC of its fields): it lets
 * wall times be compared, sorted and fed to croner as plain numbers.
 */
import { InvalidTimeZoneError } from "./errors.ts";

/** A civil date and time as shown by a clock in some timezone (month 1-12). */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** A stretch [start, end) of UTC instants during which a zone keeps one UTC offset (ms). */
export interface OffsetSegment {
  start: number;
  end: number;
  offset: number;
}

/** How a clock value maps to instants: 0 instants with `gapEnd` set means it was skipped. */
export interface WallResolution {
  /** Ascending instants that display as this wall time: 1 normally, 2 in an overlap. */
  instants: number[];
  /** In a gap, the instant the clock jumped over it (the transition); otherwise null. */
  gapEnd: number | null;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Offsets are sampled this often and transitions found by bisection: tzdb has no two
// transitions that cancel out within six hours, so none is missed.
const SAMPLE_STEP = 6 * HOUR;
// Every UTC offset in tzdb (LMT included) is under 16 h and no backward jump exceeds a day,
// so a day on each side covers every instant a wall time can name.
const ZONE_PAD = DAY;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (f === undefined) {
    try {
      // h23: some engines render midnight as "24" with hour12: false
      f = new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      throw new InvalidTimeZoneError(tz);
    }
    formatters.set(tz, f);
  }
  return f;
}

/** True if `tz` is an IANA timezone this runtime knows. */
export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== "string" || tz === "") return false;
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

/** Throws InvalidTimeZoneError (naming it) unless `tz` is a known IANA timezone. */
export function assertTimeZone(tz: string): void {
  if (!isValidTimeZone(tz)) throw new InvalidTimeZoneError(String(tz));
}

/** The wall time that `instant` (UTC ms) displays in `tz`, to the second. */
export function wallTimeOf(instant: number, tz: string): WallTime {
  const wall: WallTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(tz).formatToParts(instant)) {
    switch (part.type) {
      case "year":
      case "month":
      case "day":
      case "hour":
      case "minute":
      case "second":
        wall[part.type] = Number(part.value);
        break;
    }
  }
  return wall;
}

/** Encodes a wall time as a clock value (its fields read as UTC). */
export function clockValueOf(wall: WallTime): number {
  const ms = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  // Date.UTC maps years 0-99 to 1900-1999
  if (wall.year >= 0 && wall.year < 100) {
    const d = new Date(ms);
    d.setUTCFullYear(wall.year);
    return d.getTime();
  }
  return ms;
}

/** Decodes a clock value back into a wall time. */
export function wallTimeOfClockValue(clock: number): WallTime {
  const d = new Date(clock);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

/** The UTC offset (ms east of Greenwich) in force in `tz` at `instant`. */
export function offsetAt(instant: number, tz: string): number {
  const wholeSecond = instant - (((instant % 1000) + 1000) % 1000);
  return clockValueOf(wallTimeOf(instant, tz)) - wholeSecond;
}

/** The offsets `tz` keeps over the instants [from, to], split at each transition. */
export function offsetTimeline(tz: string, from: number, to: number): OffsetSegment[] {
  assertTimeZone(tz);
  const segments: OffsetSegment[] = [];
  let start = from;
  let offset = offsetAt(from, tz);
  let probe = from;
  while (probe < to) {
    const next = Math.min(to, probe + SAMPLE_STEP);
    if (offsetAt(next, tz) === offset) {
      probe = next;
      continue;
    }
    // bisect for the first instant with another offset; transitions fall on whole seconds
    let lo = probe;
    let hi = next;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offsetAt(mid, tz) === offset) lo = mid;
      else hi = mid;
    }
    segments.push({ start, end: hi, offset });
    start = hi;
    offset = offsetAt(hi, tz);
    probe = hi;
  }
  segments.push({ start, end: to + 1, offset });
  return segments;
}

/** Maps a clock value to instants using a timeline that covers them (see offsetTimeline). */
export function resolveClockValue(segments: readonly OffsetSegment[], clock: number): WallResolution {
  const instants: number[] = [];
  let gapEnd: number | null = null;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const t = clock - seg.offset;
    if (t >= seg.start && t < seg.end) instants.push(t);
    const prev = i > 0 ? segments[i - 1] : undefined;
    // a forward jump at seg.start skips the clock values [start + old offset, start + new offset)
    if (prev !== undefined && seg.offset > prev.offset && clock >= seg.start + prev.offset && clock < seg.start + seg.offset) {
      gapEnd = seg.start;
    }
  }
  return { instants, gapEnd };
}

/** Maps a wall time in `tz` to its instants and, if it falls in a gap, the jump instant. */
export function resolveWallTime(wall: WallTime, tz: string): WallResolution {
  const clock = clockValueOf(wall);
  return resolveClockValue(offsetTimeline(tz, clock - ZONE_PAD, clock + ZONE_PAD), clock);
}

/** The UTC instants that display as `wall` in `tz`: none in a DST gap, two in an overlap. */
export function instantsOfWallTime(wall: WallTime, tz: string): number[] {
  return resolveWallTime(wall, tz).instants;
}

/** Padding (ms) a timeline needs around a window so overlaps straddling it are seen whole. */
export const TIMELINE_PAD = ZONE_PAD;
