/** A backfill's execution dates: every interval type, inclusive end, calendar months in UTC, limits. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  addUtcMonths,
  backfillExecutionDates,
  countBackfillExecutionDates,
  type BackfillRange,
} from "../../core/src/backfill/dates.ts";
import type { IntervalType } from "../../core/src/domain.ts";

const iso = (ms: number[]) => ms.map((d) => new Date(d).toISOString());
const range = (start: string, end: string, intervalType: IntervalType, intervalUnits = 1): BackfillRange => ({
  startDatetime: Date.parse(start),
  endDatetime: Date.parse(end),
  intervalType,
  intervalUnits,
});

describe("backfillExecutionDates", () => {
  test("minute, 2 units, end landing exactly is included", () => {
    expect(iso(backfillExecutionDates(range("2024-01-01T00:00:00Z", "2024-01-01T00:06:00Z", "minute", 2)))).toEqual([
      "2024-01-01T00:00:00.000Z",
      "2024-01-01T00:02:00.000Z",
      "2024-01-01T00:04:00.000Z",
      "2024-01-01T00:06:00.000Z",
    ]);
  });

  test("hour, 3 units, an end between two dates is not a date", () => {
    expect(iso(backfillExecutionDates(range("2024-03-10T01:30:00Z", "2024-03-10T09:00:00Z", "hour", 3)))).toEqual([
      "2024-03-10T01:30:00.000Z",
      "2024-03-10T04:30:00.000Z",
      "2024-03-10T07:30:00.000Z",
    ]);
  });

  test("day: inclusive of both ends, across a leap day", () => {
    expect(iso(backfillExecutionDates(range("2024-02-27T00:00:00Z", "2024-03-01T00:00:00Z", "day")))).toEqual([
      "2024-02-27T00:00:00.000Z",
      "2024-02-28T00:00:00.000Z",
      "2024-02-29T00:00:00.000Z",
      "2024-03-01T00:00:00.000Z",
    ]);
  });

  test("day: one millisecond short of the next date stops before it", () => {
    const r = range("2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z", "day");
    expect(backfillExecutionDates({ ...r, endDatetime: r.endDatetime - 1 })).toHaveLength(2);
  });

  test("week is 7 days", () => {
    expect(iso(backfillExecutionDates(range("2024-01-01T00:00:00Z", "2024-01-29T00:00:00Z", "week", 2)))).toEqual([
      "2024-01-01T00:00:00.000Z",
      "2024-01-15T00:00:00.000Z",
      "2024-01-29T00:00:00.000Z",
    ]);
  });

  test("month from Jan 31 clamps to the month's end, anchored on the start (no drift to the 28th)", () => {
    expect(iso(backfillExecutionDates(range("2024-01-31T06:00:00Z", "2024-06-30T06:00:00Z", "month")))).toEqual([
      "2024-01-31T06:00:00.000Z",
      "2024-02-29T06:00:00.000Z",
      "2024-03-31T06:00:00.000Z",
      "2024-04-30T06:00:00.000Z",
      "2024-05-31T06:00:00.000Z",
      "2024-06-30T06:00:00.000Z",
    ]);
    expect(iso(backfillExecutionDates(range("2023-01-31T00:00:00Z", "2023-03-31T00:00:00Z", "month")))).toEqual([
      "2023-01-31T00:00:00.000Z",
      "2023-02-28T00:00:00.000Z",
      "2023-03-31T00:00:00.000Z",
    ]);
  });

  test("month, 3 units, across a year end; the end in the last month but before its time is excluded", () => {
    expect(iso(backfillExecutionDates(range("2023-11-30T12:00:00Z", "2024-05-30T11:59:59Z", "month", 3)))).toEqual([
      "2023-11-30T12:00:00.000Z",
      "2024-02-29T12:00:00.000Z",
    ]);
  });

  test("year from Feb 29 gives Feb 28, back to Feb 29 in leap years", () => {
    expect(iso(backfillExecutionDates(range("2020-02-29T00:00:00Z", "2028-03-01T00:00:00Z", "year")))).toEqual([
      "2020-02-29T00:00:00.000Z",
      "2021-02-28T00:00:00.000Z",
      "2022-02-28T00:00:00.000Z",
      "2023-02-28T00:00:00.000Z",
      "2024-02-29T00:00:00.000Z",
      "2025-02-28T00:00:00.000Z",
      "2026-02-28T00:00:00.000Z",
      "2027-02-28T00:00:00.000Z",
      "2028-02-29T00:00:00.000Z",
    ]);
    expect(iso(backfillExecutionDates(range("2020-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "year", 2)))).toEqual([
      "2020-02-29T00:00:00.000Z",
      "2022-02-28T00:00:00.000Z",
      "2024-02-29T00:00:00.000Z",
      "2026-02-28T00:00:00.000Z",
      "2028-02-29T00:00:00.000Z",
    ]);
  });

  test("start equal to end is one date", () => {
    for (const t of ["minute", "hour", "day", "week", "month", "year"] as const) {
      expect(backfillExecutionDates(range("2024-05-05T05:05:05Z", "2024-05-05T05:05:05Z", t, 3))).toEqual([Date.parse("2024-05-05T05:05:05Z")]);
    }
  });

  test("years before 100 are not mistaken for the 1900s", () => {
    const start = addUtcMonths(Date.parse("2000-01-31T00:00:00Z"), -12 * 1950);
    expect(new Date(start).toISOString()).toBe("0050-01-31T00:00:00.000Z");
    expect(new Date(addUtcMonths(start, 1)).toISOString()).toBe("0050-02-28T00:00:00.000Z");
  });

  test("end before start is a RangeError naming both", () => {
    expect(() => backfillExecutionDates(range("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z", "day"))).toThrow(
      /end_datetime 2024-01-01T00:00:00.000Z is before start_datetime 2024-01-02/,
    );
    expect(() => backfillExecutionDates(range("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z", "day"))).toThrow(RangeError);
  });

  test("interval_units must be a positive integer", () => {
    for (const units of [0, -1, 1.5, Number.NaN]) {
      expect(() => backfillExecutionDates(range("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "day", units))).toThrow(
        /interval_units must be a positive integer/,
      );
    }
  });

  test("more dates than the cap is a RangeError naming the count, raised before listing them", () => {
    const r = range("2000-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "minute");
    expect(() => backfillExecutionDates(r)).toThrow(/has 12623041 execution dates, more than the limit of 100000/);
    expect(() => backfillExecutionDates(range("2024-01-01T00:00:00Z", "2024-01-11T00:00:00Z", "day"), 10)).toThrow(
      /has 11 execution dates, more than the limit of 10/,
    );
    expect(backfillExecutionDates(range("2024-01-01T00:00:00Z", "2024-01-10T00:00:00Z", "day"), 10)).toHaveLength(10);
  });

  test("the count matches the list, and every date is start + n steps, within [start, end]", () => {
    const types: IntervalType[] = ["minute", "hour", "day", "week", "month", "year"];
    fc.assert(
      fc.property(
        fc.integer({ min: Date.parse("1990-01-01T00:00:00Z"), max: Date.parse("2040-01-01T00:00:00Z") }),
        fc.integer({ min: 0, max: 40 * 86_400_000 * 31 }),
        fc.constantFrom(...types),
        fc.integer({ min: 1, max: 5 }),
        (start, span, intervalType, intervalUnits) => {
          const b = { startDatetime: start, endDatetime: start + span, intervalType, intervalUnits };
          let dates: number[];
          try {
            dates = backfillExecutionDates(b, 200_000);
          } catch {
            return; // too many minutes for the cap: covered above
          }
          expect(dates.length).toBe(countBackfillExecutionDates(b));
          expect(dates[0]).toBe(start);
          expect(dates.every((d, i) => i === 0 || d > dates[i - 1]!)).toBe(true);
          expect(dates[dates.length - 1]!).toBeLessThanOrEqual(b.endDatetime);
          // the next date would pass the end
          const n = dates.length;
          const next =
            intervalType === "month" || intervalType === "year"
              ? addUtcMonths(start, n * intervalUnits * (intervalType === "year" ? 12 : 1))
              : start + n * intervalUnits * { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 604_800_000 }[intervalType];
          expect(next).toBeGreaterThan(b.endDatetime);
        },
      ),
      { numRuns: 300 },
    );
  });
});
