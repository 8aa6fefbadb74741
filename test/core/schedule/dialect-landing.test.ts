/**
 * Mage's cron dialect (@yearly, @annually, @midnight, 6-field with seconds) under kiln's DST
 * rules, and landing-time instants taken from start_time's time fields in the trigger's zone.
 */
import { describe, expect, test } from "bun:test";
import { landingInterval, occurrences, parseScheduleInterval, scheduleSpec } from "../../../core/src/schedule/index.ts";
import { DAY, iso, utc } from "./helpers.ts";

const PARIS = "Europe/Paris";
// 2026 in Paris: clocks jump 02:00 -> 03:00 on March 29 (01:00 UTC), fall back 03:00 -> 02:00 on October 25 (01:00 UTC)

describe("cron dialect", () => {
  test("@yearly and @annually fire on January 1st, local midnight", () => {
    for (const preset of ["@yearly", "@annually"]) {
      const spec = scheduleSpec({ interval: preset, timezone: PARIS });
      expect(iso(occurrences(spec, utc(2025, 6, 1), utc(2028, 6, 1)))).toEqual([
        "2025-12-31T23:00:00.000Z",
        "2026-12-31T23:00:00.000Z",
        "2027-12-31T23:00:00.000Z",
      ]);
    }
  });

  test("@midnight is @daily", () => {
    const a = occurrences(scheduleSpec({ interval: "@midnight", timezone: PARIS }), utc(2026, 3, 27), utc(2026, 4, 1));
    const b = occurrences(scheduleSpec({ interval: "@daily", timezone: PARIS }), utc(2026, 3, 27), utc(2026, 4, 1));
    expect(a).toEqual(b);
    expect(a.length).toBe(5);
  });

  test("6-field cron fires at its second", () => {
    const spec = scheduleSpec({ interval: "15,45 * * * * *", timezone: "UTC" });
    expect(iso(occurrences(spec, utc(2026, 1, 1), utc(2026, 1, 1, 0, 1)))).toEqual(["2026-01-01T00:00:15.000Z", "2026-01-01T00:00:45.000Z"]);
  });

  test("6-field cron across the spring gap: shifted to the jump by default, skipped with dst_gap: skip", () => {
    const from = utc(2026, 3, 27, 12);
    const to = utc(2026, 3, 30, 12);
    const shift = scheduleSpec({ interval: "30 15 2 * * *", timezone: PARIS });
    expect(iso(occurrences(shift, from, to))).toEqual([
      "2026-03-28T01:15:30.000Z", // 02:15:30 CET
      "2026-03-29T01:00:00.000Z", // 02:15:30 does not exist: the jump instant, 03:00 CEST
      "2026-03-30T00:15:30.000Z", // 02:15:30 CEST
    ]);
    const skip = scheduleSpec({ interval: "30 15 2 * * *", timezone: PARIS, dstGap: "skip" });
    expect(iso(occurrences(skip, from, to))).toEqual(["2026-03-28T01:15:30.000Z", "2026-03-30T00:15:30.000Z"]);
  });

  test("6-field cron across the autumn overlap: first by default, both when asked", () => {
    const from = utc(2026, 10, 24, 12);
    const to = utc(2026, 10, 25, 12);
    const first = scheduleSpec({ interval: "30 15 2 * * *", timezone: PARIS });
    expect(iso(occurrences(first, from, to))).toEqual(["2026-10-25T00:15:30.000Z"]);
    const both = scheduleSpec({ interval: "30 15 2 * * *", timezone: PARIS, dstOverlap: "both" });
    expect(iso(occurrences(both, from, to))).toEqual(["2026-10-25T00:15:30.000Z", "2026-10-25T01:15:30.000Z"]);
    const last = scheduleSpec({ interval: "30 15 2 * * *", timezone: PARIS, dstOverlap: "last" });
    expect(iso(occurrences(last, from, to))).toEqual(["2026-10-25T01:15:30.000Z"]);
  });

  test("a seconds cron every hour through the autumn overlap fires at both 02:00:05", () => {
    const hourly = scheduleSpec({ interval: "5 0 * * * *", timezone: PARIS, dstOverlap: "both" });
    // 00:00:05 UTC .. 02:00:05 UTC on Oct 25: local 02:00:05 CEST, 02:00:05 CET, 03:00:05 CET
    expect(iso(occurrences(hourly, utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 30)))).toEqual([
      "2026-10-25T00:00:05.000Z",
      "2026-10-25T01:00:05.000Z",
      "2026-10-25T02:00:05.000Z",
    ]);
  });
});

describe("landing time instants (start_time is the target completion time)", () => {
  // a Friday, 09:00:00 in Paris (winter time)
  const start = utc(2026, 3, 20, 8);

  test("@daily lands at start_time's time of day in the trigger's zone, on both sides of the DST change", () => {
    const spec = scheduleSpec({ interval: "@daily", timezone: PARIS, startTime: start, landingTime: true });
    expect(iso(occurrences(spec, utc(2026, 3, 27, 12), utc(2026, 3, 31, 12)))).toEqual([
      "2026-03-28T08:00:00.000Z", // 09:00 CET
      "2026-03-29T07:00:00.000Z", // 09:00 CEST
      "2026-03-30T07:00:00.000Z",
      "2026-03-31T07:00:00.000Z",
    ]);
    // and in autumn, back to 08:00 UTC
    expect(iso(occurrences(spec, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)))).toEqual(["2026-10-25T08:00:00.000Z", "2026-10-26T08:00:00.000Z"]);
    // without landing time the same trigger fires at local midnight
    const plain = scheduleSpec({ interval: "@daily", timezone: PARIS, startTime: start });
    expect(iso(occurrences(plain, utc(2026, 3, 27, 12), utc(2026, 3, 29, 12)))).toEqual(["2026-03-27T23:00:00.000Z", "2026-03-28T23:00:00.000Z"]);
  });

  test("@hourly lands at start_time's minute and second", () => {
    const spec = scheduleSpec({ interval: "@hourly", timezone: "Asia/Kolkata", startTime: utc(2026, 3, 20, 8, 15, 30), landingTime: true });
    // Kolkata is +05:30: 13:45:30 local, so every hour at :45:30 local = :15:30 UTC
    expect(iso(occurrences(spec, utc(2026, 3, 21), utc(2026, 3, 21, 3)))).toEqual([
      "2026-03-21T00:15:30.000Z",
      "2026-03-21T01:15:30.000Z",
      "2026-03-21T02:15:30.000Z",
    ]);
  });

  test("@weekly lands on start_time's weekday and time, across the DST change", () => {
    const spec = scheduleSpec({ interval: "@weekly", timezone: PARIS, startTime: start, landingTime: true });
    expect(iso(occurrences(spec, start - 1, start + 15 * DAY))).toEqual([
      "2026-03-20T08:00:00.000Z",
      "2026-03-27T08:00:00.000Z",
      "2026-04-03T07:00:00.000Z",
    ]);
  });

  test("@monthly lands on start_time's day of month, the last day in months too short for it", () => {
    const spec = scheduleSpec({ interval: "@monthly", timezone: PARIS, startTime: utc(2026, 1, 31, 8), landingTime: true });
    expect(iso(occurrences(spec, utc(2026, 1, 1), utc(2026, 5, 1)))).toEqual([
      "2026-01-31T08:00:00.000Z",
      "2026-02-28T08:00:00.000Z",
      "2026-03-31T07:00:00.000Z",
      "2026-04-30T07:00:00.000Z",
    ]);
    const mid = scheduleSpec({ interval: "@monthly", timezone: PARIS, startTime: utc(2026, 1, 15, 8), landingTime: true });
    expect(iso(occurrences(mid, utc(2026, 1, 1), utc(2026, 4, 1)))).toEqual(["2026-01-15T08:00:00.000Z", "2026-02-15T08:00:00.000Z", "2026-03-15T08:00:00.000Z"]);
  });

  test("landing time leaves cron expressions, @once and presets without start_time alone", () => {
    const cron = parseScheduleInterval("0 6 * * *");
    expect(landingInterval(cron, start, PARIS)).toBe(cron);
    const once = parseScheduleInterval("@once");
    expect(landingInterval(once, start, PARIS)).toBe(once);
    const daily = parseScheduleInterval("@daily");
    expect(landingInterval(daily, null, PARIS)).toBe(daily);
  });
});
