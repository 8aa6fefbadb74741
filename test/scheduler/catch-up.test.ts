/**
 * Catch-up after downtime: an @hourly trigger ran at T, the scheduler was down for three days,
 * and its first tick back (T + 3 d + 1 min) creates what the trigger's catch_up policy says.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { DAY, HOUR, iso, MINUTE, gatedProject, runs, schedule, schedulerFixture, utc, waitForEngines, waitForQuiet, waitForRun } from "../helpers/scheduler.ts";

const T = utc(2026, 3, 2, 11);

/** Runs the trigger up to its run at T, then ticks once at T + 3 d + 1 min; returns the runs that tick created. */
async function outage(name: string, settings: Record<string, unknown>) {
  const clock = new FakeClock(T - 45 * MINUTE);
  const fx = await schedulerFixture(
    gatedProject(name, [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings }]),
    clock,
  );
  try {
    await fx.scheduler.tick();
    clock.advance(45 * MINUTE);
    await fx.scheduler.tick();
    const before = await runs(fx.client);
    expect(before.map((r) => iso(r.execution_date))).toEqual([iso(T)]);
    await waitForRun(fx.client, before[0]!.id);

    clock.advance(3 * DAY + MINUTE);
    const report = await fx.scheduler.tick();
    const after = (await runs(fx.client)).filter((r) => r.id > before[0]!.id);
    expect(report.runs.created).toBe(after.length);
    const all = await waitForQuiet(fx.client, 60_000);
    expect(all.every((r) => r.status === "completed")).toBe(true);
    return { created: after, schedule: await schedule(fx.client, "hourly") };
  } finally {
    await waitForEngines([fx.engine], 60_000);
    fx.cleanup();
  }
}

describe("catch-up after a 3-day outage of an @hourly trigger", () => {
  test("latest: one run, for the newest missed date", async () => {
    const { created, schedule: row } = await outage("cu-latest", { catch_up: "latest" });
    expect(created.map((r) => iso(r.execution_date))).toEqual([iso(T + 3 * DAY)]);
    expect(row.last_execution_date).toBe(T + 3 * DAY);
    expect(iso(row.next_run_at)).toBe(iso(T + 3 * DAY + HOUR));
  });

  test("latest is the default", async () => {
    const { created } = await outage("cu-default", {});
    expect(created.map((r) => iso(r.execution_date))).toEqual([iso(T + 3 * DAY)]);
  });

  test("none: no run for the missed dates (T + 3 d is a minute old, past the on-time grace)", async () => {
    const { created, schedule: row } = await outage("cu-none", { catch_up: "none" });
    expect(created).toEqual([]);
    expect(iso(row.next_run_at)).toBe(iso(T + 3 * DAY + HOUR));
  });

  test("all: 72 runs, oldest first (ids increase with execution_date)", async () => {
    const { created, schedule: row } = await outage("cu-all", { catch_up: "all" });
    expect(created.length).toBe(72);
    const expected = Array.from({ length: 72 }, (_, i) => iso(T + (i + 1) * HOUR));
    expect(created.map((r) => iso(r.execution_date))).toEqual(expected);
    for (let i = 1; i < created.length; i++) {
      expect(created[i]!.id).toBeGreaterThan(created[i - 1]!.id);
      expect(created[i]!.execution_date).toBeGreaterThan(created[i - 1]!.execution_date);
    }
    expect(new Set(created.map((r) => r.execution_partition)).size).toBe(72);
    expect(row.last_execution_date).toBe(T + 3 * DAY);
  });

  test("all with catch_up_window 36000 s: only the last 10 hours", async () => {
    const { created } = await outage("cu-window", { catch_up: "all", catch_up_window: 36000 });
    expect(created.map((r) => iso(r.execution_date))).toEqual(Array.from({ length: 10 }, (_, i) => iso(T + (63 + i) * HOUR)));
  });

  test("all with catch_up_cap 30: 30 a tick, oldest first, the rest on the next ticks", async () => {
    const clock = new FakeClock(T - 45 * MINUTE);
    const fx = await schedulerFixture(
      gatedProject("cu-cap", [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { catch_up: "all", catch_up_cap: 30 } }]),
      clock,
    );
    try {
      await fx.scheduler.tick();
      clock.advance(45 * MINUTE);
      await fx.scheduler.tick();
      clock.advance(3 * DAY + MINUTE);
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) {
        counts.push((await fx.scheduler.tick()).runs.created);
        clock.advance(1000);
      }
      expect(counts).toEqual([30, 30, 12, 0]);
      const created = (await runs(fx.client)).slice(1);
      expect(created.map((r) => iso(r.execution_date))).toEqual(Array.from({ length: 72 }, (_, i) => iso(T + (i + 1) * HOUR)));
      await waitForQuiet(fx.client, 60_000);
    } finally {
      await waitForEngines([fx.engine], 60_000);
      fx.cleanup();
    }
  });
});
