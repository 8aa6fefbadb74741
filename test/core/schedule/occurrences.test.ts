/** Execution dates of each interval over a simulated month (UTC), start_time, @once, limits. */
import { describe, expect, test } from "bun:test";
import {
  InvalidTimeZoneError,
  nextOccurrence,
  occurrences,
  parseScheduleInterval,
  previousOccurrence,
  scheduleSpec,
  type ScheduleSpec,
} from "../../../core/src/schedule/index.ts";
import { DAY, HOUR, iso, MINUTE, utc } from "./helpers.ts";

// All of March 2026: the window (Mar 1 00:00 - 1 ms, Apr 1 00:00 - 1 ms] holds every instant of March.
const MARCH_FROM = utc(2026, 3, 1) - 1;
const MARCH_TO = utc(2026, 4, 1) - 1;
const march = (interval: string, extra: Partial<Parameters<typeof scheduleSpec>[0]> = {}) =>
  occurrences(scheduleSpec({ interval, ...extra }), MARCH_FROM, MARCH_TO);

describe("each interval over March 2026 (UTC)", () => {
  test("@hourly: 744 instants, each exactly on the hour", () => {
    const dates = march("@hourly");
    expect(dates.length).toBe(31 * 24);
    expect(dates.every((t, i) => t === utc(2026, 3, 1) + i * HOUR)).toBe(true);
  });

  test("@daily: 31 midnights", () => {
    const dates = march("@daily");
    expect(dates).toEqual(Array.from({ length: 31 }, (_, i) => utc(2026, 3, 1 + i)));
  });

  test("@weekly: the five Sundays at midnight", () => {
    expect(iso(march("@weekly"))).toEqual(iso([1, 8, 15, 22, 29].map((d) => utc(2026, 3, d))));
    expect(march("@weekly").every((t) => new Date(t).getUTCDay() === 0)).toBe(true);
  });

  test("@monthly: the 1st", () => {
    expect(march("@monthly")).toEqual([utc(2026, 3, 1)]);
    expect(occurrences(scheduleSpec({ interval: "@monthly" }), utc(2026, 1, 1) - 1, utc(2027, 1, 1) - 1)).toEqual(
      Array.from({ length: 12 }, (_, m) => utc(2026, m + 1, 1)),
    );
  });

  test("*/15 9-17 * * 1-5: 22 weekdays x 9 hours x 4 = 792, matching a brute-force count", () => {
    const dates = march("*/15 9-17 * * 1-5");
    expect(dates.length).toBe(792);
    const brute: number[] = [];
    for (let t = utc(2026, 3, 1); t < utc(2026, 4, 1); t += MINUTE) {
      const d = new Date(t);
      const dow = d.getUTCDay();
      if (dow >= 1 && dow <= 5 && d.getUTCHours() >= 9 && d.getUTCHours() <= 17 && d.getUTCMinutes() % 15 === 0) brute.push(t);
    }
    expect(dates).toEqual(brute);
  });

  test("every minute: 44 640", () => {
    expect(march("* * * * *").length).toBe(31 * 24 * 60);
  });

  test("@always_on has no calendar dates", () => {
    expect(march("@always_on")).toEqual([]);
    expect(nextOccurrence(scheduleSpec({ interval: "@always_on" }), utc(2026, 3, 1))).toBeNull();
  });
});

describe("start_time", () => {
  test("cuts off every earlier date, keeps one exactly at start_time", () => {
    expect(march("@daily", { startTime: utc(2026, 3, 20) })).toEqual(Array.from({ length: 12 }, (_, i) => utc(2026, 3, 20 + i)));
    expect(march("@daily", { startTime: utc(2026, 3, 20, 0, 0, 1) })[0]).toBe(utc(2026, 3, 21));
    expect(march("@hourly", { startTime: utc(2026, 3, 31, 20, 30) })).toEqual([21, 22, 23].map((h) => utc(2026, 3, 31, h)));
  });

  test("a start_time after the window leaves it empty", () => {
    expect(march("@hourly", { startTime: utc(2026, 5, 1) })).toEqual([]);
  });
});

describe("@once", () => {
  test("a single date at start_time, only in a window that holds it", () => {
    const spec = scheduleSpec({ interval: "@once", startTime: utc(2026, 3, 10, 14, 7, 3) });
    expect(occurrences(spec, MARCH_FROM, MARCH_TO)).toEqual([utc(2026, 3, 10, 14, 7, 3)]);
    expect(occurrences(spec, utc(2026, 3, 10, 14, 7, 3), MARCH_TO)).toEqual([]);
    expect(nextOccurrence(spec, utc(2026, 1, 1))).toBe(utc(2026, 3, 10, 14, 7, 3));
    expect(nextOccurrence(spec, utc(2026, 3, 11))).toBeNull();
  });

  test("without start_time there is no calendar date (the scheduler runs it on activation)", () => {
    expect(march("@once")).toEqual([]);
  });
});

describe("limits, next and previous", () => {
  const hourly = scheduleSpec({ interval: "@hourly" });

  test("limit returns the first n, across growing internal windows", () => {
    expect(occurrences(hourly, MARCH_FROM, MARCH_TO, 5)).toEqual([0, 1, 2, 3, 4].map((h) => utc(2026, 3, 1, h)));
    expect(occurrences(hourly, MARCH_FROM, MARCH_TO, 500)).toEqual(occurrences(hourly, MARCH_FROM, MARCH_TO).slice(0, 500));
    expect(occurrences(hourly, MARCH_FROM, MARCH_TO, 10_000).length).toBe(744);
    expect(occurrences(hourly, MARCH_FROM, MARCH_TO, 0)).toEqual([]);
  });

  test("the window is (from, to]", () => {
    expect(occurrences(hourly, utc(2026, 3, 1, 1), utc(2026, 3, 1, 3))).toEqual([utc(2026, 3, 1, 2), utc(2026, 3, 1, 3)]);
    expect(occurrences(hourly, utc(2026, 3, 1, 3), utc(2026, 3, 1, 1))).toEqual([]);
  });

  test("nextOccurrence is strictly after; previousOccurrence is at or before", () => {
    expect(nextOccurrence(hourly, utc(2026, 3, 1, 5))).toBe(utc(2026, 3, 1, 6));
    expect(nextOccurrence(hourly, utc(2026, 3, 1, 5) - 1)).toBe(utc(2026, 3, 1, 5));
    expect(previousOccurrence(hourly, utc(2026, 3, 1, 5))).toBe(utc(2026, 3, 1, 5));
    expect(previousOccurrence(hourly, utc(2026, 3, 1, 5) - 1)).toBe(utc(2026, 3, 1, 4));
    expect(previousOccurrence(hourly, utc(2026, 3, 1, 5) - 1, utc(2026, 3, 1, 4))).toBeNull();
  });

  test("a rare cron is found years away", () => {
    const leap = scheduleSpec({ interval: "0 12 29 2 *", timezone: "Europe/London" });
    expect(nextOccurrence(leap, utc(2026, 1, 1))).toBe(utc(2028, 2, 29, 12));
    expect(previousOccurrence(leap, utc(2026, 1, 1))).toBe(utc(2024, 2, 29, 12));
  });

  test("timezone shifts the calendar: @daily in Asia/Kolkata is 18:30 UTC", () => {
    const spec = scheduleSpec({ interval: "@daily", timezone: "Asia/Kolkata" });
    expect(nextOccurrence(spec, utc(2026, 3, 1))).toBe(utc(2026, 3, 1, 18, 30));
    expect(occurrences(spec, utc(2026, 3, 1), utc(2026, 3, 1) + 3 * DAY).length).toBe(3);
  });
});

describe("spec validation", () => {
  test("defaults: UTC, shift, first", () => {
    expect(scheduleSpec({ interval: "@daily" })).toEqual({
      interval: parseScheduleInterval("@daily"),
      timezone: "UTC",
      startTime: null,
      dstGap: "shift",
      dstOverlap: "first",
    });
  });

  test("an invalid timezone is named, in scheduleSpec and in occurrences", () => {
    expect(() => scheduleSpec({ interval: "@daily", timezone: "Europe/Atlantis" })).toThrow(InvalidTimeZoneError);
    expect(() => scheduleSpec({ interval: "@daily", timezone: "Europe/Atlantis" })).toThrow(/"Europe\/Atlantis"/);
    const spec: ScheduleSpec = { ...scheduleSpec({ interval: "@daily" }), timezone: "Nowhere/Land" };
    expect(() => occurrences(spec, 0, DAY)).toThrow(/"Nowhere\/Land"/);
  });

  test("invalid DST policies are named", () => {
    expect(() => scheduleSpec({ interval: "@daily", dstGap: "jump" as never })).toThrow(/dst_gap "jump"/);
    expect(() => scheduleSpec({ interval: "@daily", dstOverlap: "middle" as never })).toThrow(/dst_overlap "middle"/);
  });
});
