/** Wall time <-> instants with Intl only: gaps give no instant, overlaps give two. */
import { describe, expect, test } from "bun:test";
import {
  assertTimeZone,
  clockValueOf,
  instantsOfWallTime,
  InvalidTimeZoneError,
  isValidTimeZone,
  offsetAt,
  offsetTimeline,
  resolveWallTime,
  wallTimeOf,
  wallTimeOfClockValue,
} from "../../../core/src/schedule/index.ts";
import { HOUR, iso, utc } from "./helpers.ts";

const wall = (year: number, month: number, day: number, hour: number, minute = 0, second = 0) => ({ year, month, day, hour, minute, second });

describe("wallTimeOf", () => {
  test("reads the civil clock of a zone, midnight as hour 0", () => {
    expect(wallTimeOf(utc(2026, 1, 1, 5), "America/New_York")).toEqual(wall(2026, 1, 1, 0));
    expect(wallTimeOf(utc(2026, 7, 1, 12, 34, 56), "Europe/London")).toEqual(wall(2026, 7, 1, 13, 34, 56));
    expect(wallTimeOf(utc(2026, 3, 1, 0), "Asia/Kolkata")).toEqual(wall(2026, 3, 1, 5, 30));
    expect(wallTimeOf(utc(2026, 12, 31, 23, 59, 59), "UTC")).toEqual(wall(2026, 12, 31, 23, 59, 59));
  });

  test("clock values round-trip, years below 100 included", () => {
    for (const w of [wall(2026, 3, 8, 2, 30), wall(1970, 1, 1, 0), wall(50, 6, 15, 12, 1, 2)]) {
      expect(wallTimeOfClockValue(clockValueOf(w))).toEqual(w);
    }
  });
});

describe("instantsOfWallTime", () => {
  test("an ordinary wall time has exactly one instant", () => {
    expect(iso(instantsOfWallTime(wall(2026, 3, 7, 2, 30), "America/New_York"))).toEqual(["2026-03-07T07:30:00.000Z"]);
    expect(iso(instantsOfWallTime(wall(2026, 6, 1, 9), "Europe/London"))).toEqual(["2026-06-01T08:00:00.000Z"]);
  });

  test("a wall time in the spring-forward gap has none; the gap ends at the jump instant", () => {
    expect(instantsOfWallTime(wall(2026, 3, 8, 2, 30), "America/New_York")).toEqual([]);
    expect(resolveWallTime(wall(2026, 3, 8, 2, 30), "America/New_York").gapEnd).toBe(utc(2026, 3, 8, 7));
    expect(instantsOfWallTime(wall(2026, 3, 29, 1, 30), "Europe/London")).toEqual([]);
    expect(resolveWallTime(wall(2026, 3, 29, 1, 30), "Europe/London").gapEnd).toBe(utc(2026, 3, 29, 1));
    // the end of the gap itself exists
    expect(iso(instantsOfWallTime(wall(2026, 3, 8, 3), "America/New_York"))).toEqual(["2026-03-08T07:00:00.000Z"]);
  });

  test("a wall time in the fall-back overlap has two, ascending", () => {
    expect(iso(instantsOfWallTime(wall(2026, 11, 1, 1, 30), "America/New_York"))).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-01T06:30:00.000Z"]);
    expect(iso(instantsOfWallTime(wall(2026, 10, 25, 1, 30), "Europe/London"))).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-25T01:30:00.000Z"]);
    expect(resolveWallTime(wall(2026, 11, 1, 1, 30), "America/New_York").gapEnd).toBeNull();
  });

  test("every instant of a DST year displays as a wall time that maps back to it", () => {
    for (const tz of ["America/New_York", "Europe/London", "Australia/Lord_Howe"]) {
      for (let t = utc(2026, 1, 1); t < utc(2027, 1, 1); t += 7 * HOUR + 13 * 60_000) {
        expect(instantsOfWallTime(wallTimeOf(t, tz), tz)).toContain(t);
      }
    }
  });
});

describe("offsets and timelines", () => {
  test("offsetAt gives ms east of UTC", () => {
    expect(offsetAt(utc(2026, 1, 15), "America/New_York")).toBe(-5 * HOUR);
    expect(offsetAt(utc(2026, 7, 15), "America/New_York")).toBe(-4 * HOUR);
    expect(offsetAt(utc(2026, 1, 15), "Asia/Kolkata")).toBe(5.5 * HOUR);
  });

  test("offsetTimeline finds both 2026 transitions to the second", () => {
    const ny = offsetTimeline("America/New_York", utc(2026, 1, 1), utc(2027, 1, 1));
    expect(ny.map((s) => [new Date(s.start).toISOString(), s.offset / HOUR])).toEqual([
      ["2026-01-01T00:00:00.000Z", -5],
      ["2026-03-08T07:00:00.000Z", -4],
      ["2026-11-01T06:00:00.000Z", -5],
    ]);
    const london = offsetTimeline("Europe/London", utc(2026, 1, 1), utc(2027, 1, 1));
    expect(london.map((s) => s.start).slice(1)).toEqual([utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)]);
  });
});

describe("timezone validation", () => {
  test("IANA names are valid, anything else is not", () => {
    expect(isValidTimeZone("UTC")).toBe(true);
    expect(isValidTimeZone("Europe/London")).toBe(true);
    expect(isValidTimeZone("Mars/Olympus_Mons")).toBe(false);
    expect(isValidTimeZone("")).toBe(false);
  });

  test("errors name the timezone", () => {
    expect(() => assertTimeZone("Mars/Olympus_Mons")).toThrow(InvalidTimeZoneError);
    expect(() => assertTimeZone("Mars/Olympus_Mons")).toThrow(/"Mars\/Olympus_Mons"/);
    expect(() => wallTimeOf(0, "Not/AZone")).toThrow(/"Not\/AZone"/);
  });
});
