/**
 * DST rules applied uniformly to every expression: America/New_York (8 March / 1 November
 * 2026) and Europe/London (29 March / 25 October 2026), under each dst_gap / dst_overlap.
 */
import { describe, expect, test } from "bun:test";
import { occurrences, scheduleSpec, wallTimeOf, type DstGapPolicy, type DstOverlapPolicy } from "../../../core/src/schedule/index.ts";
import { DAY, iso, MINUTE, runsOnLocalDay, utc } from "./helpers.ts";

const NY = "America/New_York";
const LONDON = "Europe/London";
const GAPS: DstGapPolicy[] = ["shift", "skip"];
const OVERLAPS: DstOverlapPolicy[] = ["first", "last", "both"];

describe("America/New_York, spring forward (8 March 2026, 02:00 EST -> 03:00 EDT at 07:00Z)", () => {
  const daily0230 = (dstGap: DstGapPolicy) =>
    iso(occurrences(scheduleSpec({ interval: "30 2 * * *", timezone: NY, dstGap }), utc(2026, 3, 7), utc(2026, 3, 10)));

  test("daily 02:30 with shift runs at the jump instant, 07:00Z (03:00 EDT); 02:30 local on the days around", () => {
    expect(daily0230("shift")).toEqual(["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]);
  });

  test("daily 02:30 with skip does not run that day", () => {
    expect(daily0230("skip")).toEqual(["2026-03-07T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]);
  });

  test("@hourly gives 23 runs that local day under either gap policy", () => {
    for (const dstGap of GAPS) {
      const runs = runsOnLocalDay(scheduleSpec({ interval: "@hourly", timezone: NY, dstGap }), 2026, 3, 8);
      expect(runs.length).toBe(23);
      // the 02:00 run shifted onto 03:00 EDT coincides with the 03:00 run: one run, not two
      expect(runs.filter((t) => t === utc(2026, 3, 8, 7)).length).toBe(1);
    }
  });

  test("every minute of the gap hour is one shifted run under shift, none under skip", () => {
    const gapHour = (dstGap: DstGapPolicy) => runsOnLocalDay(scheduleSpec({ interval: "* 2 * * *", timezone: NY, dstGap }), 2026, 3, 8);
    expect(iso(gapHour("shift"))).toEqual(["2026-03-08T07:00:00.000Z"]);
    expect(gapHour("skip")).toEqual([]);
  });

  test("every minute all day: 23 h of minutes under either policy (the shifted run is 03:00's own instant)", () => {
    for (const dstGap of GAPS) {
      const all = runsOnLocalDay(scheduleSpec({ interval: "* * * * *", timezone: NY, dstGap }), 2026, 3, 8);
      expect(all.length).toBe(23 * 60);
      expect(all.every((t, i) => i === 0 || t - all[i - 1]! === MINUTE)).toBe(true);
    }
  });
});

describe("America/New_York, fall back (1 November 2026, 02:00 EDT -> 01:00 EST at 06:00Z)", () => {
  const daily0130 = (dstOverlap: DstOverlapPolicy) =>
    iso(occurrences(scheduleSpec({ interval: "30 1 * * *", timezone: NY, dstOverlap }), utc(2026, 10, 31), utc(2026, 11, 3)));

  test("daily 01:30: first -> 05:30Z, last -> 06:30Z, both -> both", () => {
    expect(daily0130("first")).toEqual(["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
    expect(daily0130("last")).toEqual(["2026-10-31T05:30:00.000Z", "2026-11-01T06:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
    expect(daily0130("both")).toEqual([
      "2026-10-31T05:30:00.000Z",
      "2026-11-01T05:30:00.000Z",
      "2026-11-01T06:30:00.000Z",
      "2026-11-02T06:30:00.000Z",
    ]);
  });

  test("@hourly gives 24 runs with first or last, 25 with both", () => {
    const count = (dstOverlap: DstOverlapPolicy) =>
      runsOnLocalDay(scheduleSpec({ interval: "@hourly", timezone: NY, dstOverlap }), 2026, 11, 1).length;
    expect(count("first")).toBe(24);
    expect(count("last")).toBe(24);
    expect(count("both")).toBe(25);
  });

  test("every minute: 1440 with first or last, 1500 with both", () => {
    const day = (dstOverlap: DstOverlapPolicy) => runsOnLocalDay(scheduleSpec({ interval: "* * * * *", timezone: NY, dstOverlap }), 2026, 11, 1);
    const first = day("first");
    const last = day("last");
    expect(first.length).toBe(1440);
    expect(last.length).toBe(1440);
    expect(day("both").length).toBe(1500);
    // first keeps the EDT pass of 01:xx (05:xxZ) and drops the EST pass (06:xxZ); last the reverse
    expect(first.includes(utc(2026, 11, 1, 5, 30)) && !first.includes(utc(2026, 11, 1, 6, 30))).toBe(true);
    expect(!last.includes(utc(2026, 11, 1, 5, 30)) && last.includes(utc(2026, 11, 1, 6, 30))).toBe(true);
  });
});

describe("Europe/London (29 March: 01:00 GMT -> 02:00 BST at 01:00Z; 25 October: 02:00 BST -> 01:00 GMT at 01:00Z)", () => {
  test("daily 01:30 on the spring day: shift -> 01:00Z, skip -> no run", () => {
    const run = (dstGap: DstGapPolicy) =>
      iso(occurrences(scheduleSpec({ interval: "30 1 * * *", timezone: LONDON, dstGap }), utc(2026, 3, 28), utc(2026, 3, 31)));
    expect(run("shift")).toEqual(["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]);
    expect(run("skip")).toEqual(["2026-03-28T01:30:00.000Z", "2026-03-30T00:30:00.000Z"]);
  });

  test("daily 01:30 on the autumn day: first -> 00:30Z, last -> 01:30Z, both -> both", () => {
    const run = (dstOverlap: DstOverlapPolicy) =>
      iso(occurrences(scheduleSpec({ interval: "30 1 * * *", timezone: LONDON, dstOverlap }), utc(2026, 10, 25), utc(2026, 10, 25, 12)));
    expect(run("first")).toEqual(["2026-10-25T00:30:00.000Z"]);
    expect(run("last")).toEqual(["2026-10-25T01:30:00.000Z"]);
    expect(run("both")).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-25T01:30:00.000Z"]);
  });

  test("@hourly: 23 runs on the spring day; 24 / 24 / 25 on the autumn day", () => {
    for (const dstGap of GAPS) expect(runsOnLocalDay(scheduleSpec({ interval: "@hourly", timezone: LONDON, dstGap }), 2026, 3, 29).length).toBe(23);
    const autumn = (dstOverlap: DstOverlapPolicy) =>
      runsOnLocalDay(scheduleSpec({ interval: "@hourly", timezone: LONDON, dstOverlap }), 2026, 10, 25).length;
    expect([autumn("first"), autumn("last"), autumn("both")]).toEqual([24, 24, 25]);
  });

  test("every minute of the gap hour: one shifted run at 01:00Z, or none", () => {
    const run = (dstGap: DstGapPolicy) => runsOnLocalDay(scheduleSpec({ interval: "* 1 * * *", timezone: LONDON, dstGap }), 2026, 3, 29);
    expect(iso(run("shift"))).toEqual(["2026-03-29T01:00:00.000Z"]);
    expect(run("skip")).toEqual([]);
  });
});

describe("a skipped midnight (America/Santiago, 6 September 2026: 00:00 -> 01:00)", () => {
  test("@daily shifts to 01:00 local (04:00Z) or skips the day", () => {
    const run = (dstGap: DstGapPolicy) =>
      iso(occurrences(scheduleSpec({ interval: "@daily", timezone: "America/Santiago", dstGap }), utc(2026, 9, 5, 12), utc(2026, 9, 7, 12)));
    expect(run("shift")).toEqual(["2026-09-06T04:00:00.000Z", "2026-09-07T03:00:00.000Z"]);
    expect(run("skip")).toEqual(["2026-09-07T03:00:00.000Z"]);
  });
});

describe("defaults (shift, first): a daily job runs exactly once every local day of 2026", () => {
  for (const tz of [NY, LONDON, "Australia/Lord_Howe", "America/Santiago"]) {
    for (const cron of ["0 0 * * *", "30 1 * * *", "30 2 * * *", "0 3 * * *"]) {
      test(`${tz}, ${cron}`, () => {
        const spec = scheduleSpec({ interval: cron, timezone: tz });
        const perDay = new Map<string, number>();
        for (const t of occurrences(spec, utc(2025, 12, 30), utc(2027, 1, 3))) {
          const w = wallTimeOf(t, tz);
          const key = `${w.year}-${w.month}-${w.day}`;
          perDay.set(key, (perDay.get(key) ?? 0) + 1);
        }
        const wrong: string[] = [];
        for (let d = utc(2026, 1, 1); d < utc(2027, 1, 1); d += DAY) {
          const day = new Date(d);
          const count = perDay.get(`${day.getUTCFullYear()}-${day.getUTCMonth() + 1}-${day.getUTCDate()}`) ?? 0;
          if (count !== 1) wrong.push(`${day.toISOString().slice(0, 10)}: ${count}`);
        }
        expect(wrong).toEqual([]);
      });
    }
  }
});

describe("windows do not change the answer", () => {
  test("overlap dates are the same whether a window edge cuts the overlap or not", () => {
    for (const dstOverlap of OVERLAPS) {
      const spec = scheduleSpec({ interval: "*/20 * * * *", timezone: NY, dstOverlap });
      const end = utc(2026, 11, 2);
      const whole = occurrences(spec, utc(2026, 11, 1), end);
      const pieces: number[] = [];
      for (let a = utc(2026, 11, 1); a < end; a += 17 * MINUTE) pieces.push(...occurrences(spec, a, Math.min(a + 17 * MINUTE, end)));
      expect(iso(pieces)).toEqual(iso(whole));
    }
  });

  test("a gap's shifted run belongs to the window holding the jump instant", () => {
    const spec = scheduleSpec({ interval: "* 2 * * *", timezone: NY });
    expect(occurrences(spec, utc(2026, 3, 8, 6), utc(2026, 3, 8, 7) - 1)).toEqual([]);
    expect(occurrences(spec, utc(2026, 3, 8, 7) - 1, utc(2026, 3, 8, 7))).toEqual([utc(2026, 3, 8, 7)]);
    expect(occurrences(spec, utc(2026, 3, 8, 7), utc(2026, 3, 8, 8))).toEqual([]);
  });
});
