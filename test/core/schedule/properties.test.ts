/**
 * Property tests: for random simple crons, zones (with odd DST rules), DST policies and
 * windows, occurrences() equals a brute-force oracle built minute by minute from Intl offsets,
 * and cutting the window, limiting it or asking for the next date never changes the answer.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  dueExecutionDates,
  nextOccurrence,
  occurrences,
  offsetAt,
  offsetTimeline,
  scheduleSpec,
  type DstGapPolicy,
  type DstOverlapPolicy,
  type ScheduleSpec,
} from "../../../core/src/schedule/index.ts";
import { DAY, HOUR, MINUTE, utc } from "./helpers.ts";

// Lord Howe moves 30 min, Chatham at 02:45 / 03:45 local, Santiago at midnight.
const ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago", "Asia/Kolkata"];

/** A cron field as a list of allowed values (null = "*"), plus its text. */
interface Field {
  text: string;
  values: number[] | null;
}

/** Values min..max; "*\/k" steps over the field's whole range (days up to 31) even where lists stop at max. */
function field(max: number, min = 0, fullMax = max): fc.Arbitrary<Field> {
  const star = fc.constant<Field>({ text: "*", values: null });
  const step = fc.integer({ min: 2, max: Math.min(30, max) }).map<Field>((k) => ({
    text: `*/${k}`,
    values: Array.from({ length: fullMax + 1 - min }, (_, i) => i + min).filter((v) => (v - min) % k === 0),
  }));
  const list = fc.uniqueArray(fc.integer({ min, max }), { minLength: 1, maxLength: 3 }).map<Field>((vs) => ({ text: vs.join(","), values: vs }));
  const range = fc.tuple(fc.integer({ min, max }), fc.integer({ min, max })).map<Field>(([a, b]) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    return { text: `${lo}-${hi}`, values: Array.from({ length: hi - lo + 1 }, (_, i) => lo + i) };
  });
  return fc.oneof(star, step, list, range);
}

interface SimpleCron {
  minute: Field;
  hour: Field;
  dom: Field;
  dow: Field;
}

const simpleCron: fc.Arbitrary<SimpleCron> = fc.record({
  minute: field(59),
  hour: field(23),
  dom: fc.oneof({ weight: 3, arbitrary: fc.constant<Field>({ text: "*", values: null }) }, { weight: 1, arbitrary: field(28, 1, 31) }),
  dow: fc.oneof({ weight: 3, arbitrary: fc.constant<Field>({ text: "*", values: null }) }, { weight: 1, arbitrary: field(6) }),
});

const cronText = (c: SimpleCron) => `${c.minute.text} ${c.hour.text} ${c.dom.text} * ${c.dow.text}`;

/** Standard (Vixie) cron matching of a clock value: day-of-month OR day-of-week when both are set. */
function matches(c: SimpleCron, clock: number): boolean {
  const d = new Date(clock);
  const has = (f: Field, v: number) => f.values === null || f.values.includes(v);
  if (!has(c.minute, d.getUTCMinutes()) || !has(c.hour, d.getUTCHours())) return false;
  if (c.dom.values !== null && c.dow.values !== null) return has(c.dom, d.getUTCDate()) || has(c.dow, d.getUTCDay());
  return has(c.dom, d.getUTCDate()) && has(c.dow, d.getUTCDay());
}

/** The oracle: every minute's offset from Intl, then the DST rules applied by brute force. */
function bruteForce(c: SimpleCron, spec: ScheduleSpec, from: number, to: number): number[] {
  const margin = 3 * HOUR; // wider than any overlap in these zones
  const first = Math.ceil((from - margin) / MINUTE) * MINUTE;
  const offsets = new Map<number, number>();
  for (let m = first; m <= to + margin; m += MINUTE) offsets.set(m, offsetAt(m, spec.timezone));
  const distinct = [...new Set(offsets.values())];
  const out = new Set<number>();
  for (let m = Math.floor(from / MINUTE) * MINUTE + MINUTE; m <= to; m += MINUTE) {
    const off = offsets.get(m)!;
    const clock = m + off;
    if (matches(c, clock)) {
      const same = distinct
        .map((o) => clock - o)
        .filter((p) => offsets.get(p) !== undefined && offsets.get(p)! + p === clock)
        .sort((a, b) => a - b);
      const chosen = same.length === 1 || spec.dstOverlap === "both" ? same : spec.dstOverlap === "first" ? [same[0]!] : [same[same.length - 1]!];
      if (chosen.includes(m)) out.add(m);
    }
    const before = offsets.get(m - MINUTE)!;
    if (spec.dstGap === "shift" && off > before) {
      // the clock jumped at m over the clock values [m + before, m + off)
      for (let skipped = m + before; skipped < m + off; skipped += MINUTE) {
        if (matches(c, skipped)) {
          out.add(m);
          break;
        }
      }
    }
  }
  return [...out].sort((a, b) => a - b);
}

const YEAR_START = utc(2026, 1, 1);
const YEAR_END = utc(2027, 1, 1);
const transitions = new Map(ZONES.map((tz) => [tz, offsetTimeline(tz, YEAR_START, YEAR_END).slice(1).map((s) => s.start)]));

interface Case {
  cron: SimpleCron;
  tz: string;
  dstGap: DstGapPolicy;
  dstOverlap: DstOverlapPolicy;
  from: number;
  length: number;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    cron: simpleCron,
    tz: fc.constantFrom(...ZONES),
    dstGap: fc.constantFrom<DstGapPolicy>("skip", "shift"),
    dstOverlap: fc.constantFrom<DstOverlapPolicy>("first", "last", "both"),
    // most windows sit on a DST change of their zone, some anywhere in the year
    nearTransition: fc.boolean(),
    which: fc.nat(),
    shift: fc.integer({ min: -36 * HOUR, max: 12 * HOUR }),
    anywhere: fc.integer({ min: YEAR_START, max: YEAR_END - 2 * DAY }),
    length: fc.integer({ min: 1, max: 2 * DAY }),
  })
  .map(({ cron, tz, dstGap, dstOverlap, nearTransition, which, shift, anywhere, length }) => {
    const ts = transitions.get(tz)!;
    const from = nearTransition && ts.length > 0 ? ts[which % ts.length]! + shift : anywhere;
    return { cron, tz, dstGap, dstOverlap, from, length };
  });

const specOf = (c: Case) => scheduleSpec({ interval: cronText(c.cron), timezone: c.tz, dstGap: c.dstGap, dstOverlap: c.dstOverlap });

describe("occurrences, property-based", () => {
  test("equal the brute-force oracle (so: strictly increasing, in the window, each matching its wall time or shifted out of a gap)", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const spec = specOf(c);
        const got = occurrences(spec, c.from, c.from + c.length);
        expect(got.every((t, i) => t > c.from && t <= c.from + c.length && (i === 0 || t > got[i - 1]!))).toBe(true);
        expect(got).toEqual(bruteForce(c.cron, spec, c.from, c.from + c.length));
      }),
      { numRuns: 150 },
    );
  });

  test("cutting the window anywhere, limiting it, or asking for the next date gives the same dates", () => {
    fc.assert(
      fc.property(caseArb, fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 50 }), (c, cut, limit) => {
        const spec = specOf(c);
        const to = c.from + c.length;
        const whole = occurrences(spec, c.from, to);
        const mid = c.from + Math.floor(cut * c.length);
        expect([...occurrences(spec, c.from, mid), ...occurrences(spec, mid, to)]).toEqual(whole);
        expect(occurrences(spec, c.from, to, limit)).toEqual(whole.slice(0, limit));
        if (whole.length > 0) expect(nextOccurrence(spec, c.from)).toBe(whole[0]!);
      }),
      { numRuns: 150 },
    );
  });
});

describe("dueExecutionDates, property-based", () => {
  test("all / latest / none are the due dates; the newest missed one and the on-time part; the on-time part", () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: 10 * MINUTE }), (c, graceMs) => {
        const spec = specOf(c);
        const now = c.from + c.length;
        const dates = occurrences(spec, c.from, now);
        const base = { lastExecutionDate: c.from, now, graceMs, cap: 100_000 };
        expect(dueExecutionDates(spec, { ...base, catchUp: "all" })).toEqual(dates);
        const onTime = dates.filter((t) => t > now - graceMs);
        const missed = dates.filter((t) => t <= now - graceMs);
        expect(dueExecutionDates(spec, { ...base, catchUp: "latest" })).toEqual([...missed.slice(-1), ...onTime]);
        expect(dueExecutionDates(spec, { ...base, catchUp: "none" })).toEqual(onTime);
      }),
      { numRuns: 100 },
    );
  });
});
