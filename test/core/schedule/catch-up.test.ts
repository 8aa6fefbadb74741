/** Catch-up after downtime (latest / none / all, window, cap), activation, @once, nextDueAt. */
import { describe, expect, test } from "bun:test";
import { dueExecutionDates, InvalidScheduleError, nextDueAt, scheduleSpec, type DueOptions } from "../../../core/src/schedule/index.ts";
import { HOUR, iso, MINUTE, utc } from "./helpers.ts";

const hourly = scheduleSpec({ interval: "@hourly" });
const T0 = utc(2026, 3, 10); // the last run before a 3-day outage
const AFTER_OUTAGE = T0 + 72 * HOUR + 30 * MINUTE; // the scheduler is back, half an hour after the 72nd missed date
const due = (options: Partial<DueOptions>, spec = hourly) =>
  dueExecutionDates(spec, { lastExecutionDate: T0, now: AFTER_OUTAGE, catchUp: "latest", ...options });

describe("catch-up after a 3-day outage of an @hourly schedule", () => {
  test("latest: one run, the newest missed date", () => {
    expect(due({ catchUp: "latest" })).toEqual([T0 + 72 * HOUR]);
  });

  test("latest: a tick a few seconds late creates every date still on time, not only the newest", () => {
    // a 10-second trigger (6-field cron) whose trigger went unevaluated for 12 s (a dead replica's
    // lease running out): the date before the one now due is late, not missed, and must run
    const every10s = scheduleSpec({ interval: "*/10 * * * * *" });
    const last = utc(2026, 3, 10, 12);
    const dates = dueExecutionDates(every10s, { lastExecutionDate: last, now: last + 21_500, catchUp: "latest" });
    expect(iso(dates)).toEqual(iso([last + 10_000, last + 20_000]));
    // past the grace, only the newest of the missed dates, then the on-time ones
    const later = dueExecutionDates(every10s, { lastExecutionDate: last, now: last + 5 * MINUTE + 500, catchUp: "latest" });
    expect(iso(later)).toEqual(iso([240_000, 250_000, 260_000, 270_000, 280_000, 290_000, 300_000].map((ms) => last + ms)));
  });

  test("none: nothing, every date was missed", () => {
    expect(due({ catchUp: "none" })).toEqual([]);
  });

  test("none: only the on-time date when the scheduler is back within the grace period", () => {
    expect(due({ catchUp: "none", now: T0 + 72 * HOUR + 10_000 })).toEqual([T0 + 72 * HOUR]);
    expect(due({ catchUp: "none", now: T0 + 72 * HOUR + 10 * MINUTE, graceMs: 15 * MINUTE })).toEqual([T0 + 72 * HOUR]);
    expect(due({ catchUp: "none", now: T0 + 72 * HOUR + 60_000 })).toEqual([]);
  });

  test("all: 72 runs, oldest first", () => {
    const dates = due({ catchUp: "all" });
    expect(dates.length).toBe(72);
    expect(dates).toEqual(Array.from({ length: 72 }, (_, i) => T0 + (i + 1) * HOUR));
  });

  test("catch_up_window of 10 hours keeps the 10 newest dates", () => {
    expect(due({ catchUp: "all", catchUpWindowSeconds: 3600 * 10 })).toEqual(Array.from({ length: 10 }, (_, i) => T0 + (63 + i) * HOUR));
    // the window applies to latest too: a newest date older than the window is not run
    expect(due({ catchUp: "latest", catchUpWindowSeconds: 60 })).toEqual([]);
    expect(due({ catchUp: "latest", catchUpWindowSeconds: 3600 })).toEqual([T0 + 72 * HOUR]);
  });

  test("cap: the oldest `cap` per call; the rest come on later calls as lastExecutionDate advances", () => {
    expect(due({ catchUp: "all", cap: 5 })).toEqual([1, 2, 3, 4, 5].map((h) => T0 + h * HOUR));
    const created: number[] = [];
    let last: number | null = T0;
    for (let tick = 0; tick < 20; tick++) {
      const dates = due({ catchUp: "all", cap: 10, lastExecutionDate: last, now: AFTER_OUTAGE + tick * 1000 });
      if (dates.length === 0) break;
      created.push(...dates);
      last = dates[dates.length - 1]!;
    }
    expect(created).toEqual(due({ catchUp: "all" }));
  });

  test("nothing is due twice: a tick after catching up returns nothing", () => {
    expect(due({ catchUp: "all", lastExecutionDate: T0 + 72 * HOUR })).toEqual([]);
    expect(due({ catchUp: "latest", lastExecutionDate: T0 + 72 * HOUR })).toEqual([]);
  });

  test("a normal tick returns the date that just came due, under every policy", () => {
    for (const catchUp of ["latest", "none", "all"] as const) {
      expect(due({ catchUp, lastExecutionDate: T0, now: T0 + HOUR + 500 })).toEqual([T0 + HOUR]);
      expect(due({ catchUp, lastExecutionDate: T0, now: T0 + HOUR - 1 })).toEqual([]);
    }
  });
});

describe("activation", () => {
  const daily = scheduleSpec({ interval: "@daily" });
  const activatedAt = utc(2026, 3, 10, 15);

  test("a daily schedule activated at 15:00 that never ran does not fire today's midnight date", () => {
    for (const catchUp of ["latest", "none", "all"] as const) {
      expect(dueExecutionDates(daily, { lastExecutionDate: null, now: activatedAt + 5000, catchUp, lastEnabledAt: activatedAt })).toEqual([]);
    }
  });

  test("with createInitialPipelineRun it fires exactly that one date", () => {
    for (const catchUp of ["latest", "none", "all"] as const) {
      const dates = dueExecutionDates(daily, {
        lastExecutionDate: null,
        now: activatedAt + 5000,
        catchUp,
        lastEnabledAt: activatedAt,
        createInitialPipelineRun: true,
      });
      expect(iso(dates)).toEqual(["2026-03-10T00:00:00.000Z"]);
    }
  });

  test("the next midnight fires normally, with or without the initial run", () => {
    const next = utc(2026, 3, 11);
    expect(dueExecutionDates(daily, { lastExecutionDate: null, now: next + 1000, catchUp: "latest", lastEnabledAt: activatedAt })).toEqual([next]);
    expect(
      dueExecutionDates(daily, { lastExecutionDate: utc(2026, 3, 10), now: next + 1000, catchUp: "latest", lastEnabledAt: activatedAt, createInitialPipelineRun: true }),
    ).toEqual([next]);
  });

  test("dates while the schedule was switched off are not caught up after re-enabling", () => {
    const reEnabled = utc(2026, 3, 20, 9);
    expect(dueExecutionDates(daily, { lastExecutionDate: utc(2026, 3, 12), now: reEnabled + 1000, catchUp: "all", lastEnabledAt: reEnabled })).toEqual([]);
  });

  test("start_time bounds a schedule that never ran; without any bound only on-time dates fire", () => {
    const started = scheduleSpec({ interval: "@daily", startTime: utc(2026, 3, 5) });
    expect(dueExecutionDates(started, { lastExecutionDate: null, now: utc(2026, 3, 8, 12), catchUp: "all" })).toEqual(
      [5, 6, 7, 8].map((d) => utc(2026, 3, d)),
    );
    expect(dueExecutionDates(daily, { lastExecutionDate: null, now: utc(2026, 3, 8, 12), catchUp: "all" })).toEqual([]);
    expect(dueExecutionDates(daily, { lastExecutionDate: null, now: utc(2026, 3, 8) + 2000, catchUp: "all" })).toEqual([utc(2026, 3, 8)]);
  });
});

describe("@once and @always_on", () => {
  test("@once runs once at start_time however late, never again", () => {
    const once = scheduleSpec({ interval: "@once", startTime: utc(2026, 3, 1, 9) });
    expect(dueExecutionDates(once, { lastExecutionDate: null, now: utc(2026, 3, 1, 8), catchUp: "none" })).toEqual([]);
    expect(dueExecutionDates(once, { lastExecutionDate: null, now: utc(2026, 3, 5), catchUp: "none" })).toEqual([utc(2026, 3, 1, 9)]);
    expect(dueExecutionDates(once, { lastExecutionDate: utc(2026, 3, 1, 9), now: utc(2026, 3, 5), catchUp: "all" })).toEqual([]);
  });

  test("@once without start_time runs at activation", () => {
    const once = scheduleSpec({ interval: "@once" });
    expect(dueExecutionDates(once, { lastExecutionDate: null, now: utc(2026, 3, 5), catchUp: "latest", lastEnabledAt: utc(2026, 3, 4) })).toEqual([utc(2026, 3, 4)]);
  });

  test("@always_on has no calendar dates: the scheduler starts it whenever no run is active", () => {
    const always = scheduleSpec({ interval: "@always_on" });
    expect(dueExecutionDates(always, { lastExecutionDate: null, now: utc(2026, 3, 5), catchUp: "all" })).toEqual([]);
    expect(nextDueAt(always, null, utc(2026, 3, 5))).toBeNull();
  });
});

describe("nextDueAt", () => {
  test("the first date after both the last run and now", () => {
    expect(nextDueAt(hourly, T0, T0 + 10 * MINUTE)).toBe(T0 + HOUR);
    expect(nextDueAt(hourly, T0, AFTER_OUTAGE)).toBe(T0 + 73 * HOUR);
    expect(nextDueAt(hourly, null, T0 + HOUR)).toBe(T0 + 2 * HOUR);
  });

  test("in the schedule's timezone, DST included", () => {
    const ny = scheduleSpec({ interval: "30 2 * * *", timezone: "America/New_York" });
    expect(nextDueAt(ny, utc(2026, 3, 7, 7, 30), utc(2026, 3, 7, 8))).toBe(utc(2026, 3, 8, 7));
  });

  test("@once: its start_time until it ran, then never", () => {
    const once = scheduleSpec({ interval: "@once", startTime: utc(2026, 3, 1, 9) });
    expect(nextDueAt(once, null, utc(2026, 3, 1))).toBe(utc(2026, 3, 1, 9));
    expect(nextDueAt(once, utc(2026, 3, 1, 9), utc(2026, 3, 1, 10))).toBeNull();
  });
});

describe("option validation", () => {
  test("bad policies and limits are named", () => {
    expect(() => due({ catchUp: "some" as never })).toThrow(InvalidScheduleError);
    expect(() => due({ catchUp: "some" as never })).toThrow(/catch_up "some"/);
    expect(() => due({ cap: 0 })).toThrow(/cap 0/);
    expect(() => due({ catchUpWindowSeconds: -5 })).toThrow(/catch_up_window -5/);
  });
});
