/**
 * Landing time: a @daily trigger with landing_time_enabled starts early enough to be done by its
 * landing instant (start_time's time of day in its zone; midnight without a start_time):
 * next_run_at = landing - (mean + stddev / 2) of its 7 most recent completed runtimes.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { type SqlClient } from "@kiln/core/store";
import { syncTriggers } from "@kiln/scheduler";
import { DAY, gatedProject, iso, MINUTE, runs, schedule, schedulerFixture, utc, waitForEngines, waitForRun } from "../helpers/scheduler.ts";

const NOW = utc(2026, 3, 2, 10, 15);
const MIDNIGHT = utc(2026, 3, 3);

async function insertRun(client: SqlClient, scheduleId: number, executionDate: number, status: string, runtimeMs: number) {
  const startedAt = executionDate + 5 * MINUTE;
  await client.execute({
    sql: `INSERT INTO pipeline_runs (pipeline_schedule_id, pipeline_uuid, execution_date, execution_partition, status,
            started_at, completed_at, created_at, updated_at)
          VALUES (?, 'p', ?, ?, ?, ?, ?, ?, ?)`,
    args: [scheduleId, executionDate, `${scheduleId}/history-${executionDate}`, status, startedAt, startedAt + runtimeMs, startedAt, startedAt + runtimeMs],
  });
}

const daily = (name: string) => ({ name, schedule_type: "time", schedule_interval: "@daily", status: "active", settings: { landing_time_enabled: true } });

describe("landing_time_enabled on a @daily trigger", () => {
  test("with 7 completed runs of 10..16 min, next_run_at is midnight minus (mean + stddev/2) = 14 min; without history, midnight", async () => {
    const clock = new FakeClock(NOW);
    const fx = await schedulerFixture(gatedProject("landing", [daily("landing"), daily("fresh")]), clock);
    try {
      // the triggers exist (and are due now) before the first tick evaluates them
      await syncTriggers(fx.store, fx.project);
      const landing = await schedule(fx.client, "landing");
      // runtimes 10..16 minutes on the 7 days before today: mean 13 min, stddev 2 min
      for (let i = 0; i < 7; i++) await insertRun(fx.client, landing.id, MIDNIGHT - (8 - i) * DAY, "completed", (10 + i) * MINUTE);
      // not in the sample: an older completed run (only the 7 most recent count) and a failed one
      await insertRun(fx.client, landing.id, MIDNIGHT - 20 * DAY, "completed", 300 * MINUTE);
      await insertRun(fx.client, landing.id, MIDNIGHT - 1 * DAY, "failed", 500 * MINUTE);

      const report = await fx.scheduler.tick();
      expect(report.runs.created).toBe(0);
      expect(iso((await schedule(fx.client, "landing")).next_run_at)).toBe(iso(MIDNIGHT - 14 * MINUTE));
      expect(iso((await schedule(fx.client, "fresh")).next_run_at)).toBe(iso(MIDNIGHT));

      // a tick just before does nothing; at 23:46 the run for midnight is created and started
      clock.advance(MIDNIGHT - 14 * MINUTE - 1000 - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      clock.advance(1000);
      const early = await fx.scheduler.tick();
      expect(early.runs.created).toBe(1);
      expect(early.runs.late).toBe(0);
      const created = await runs(fx.client, "pipeline_schedule_id = ? AND status NOT IN ('completed', 'failed')", [landing.id]);
      expect(created.map((r) => iso(r.execution_date))).toEqual([iso(MIDNIGHT)]);
      const done = await waitForRun(fx.client, created[0]!.id);
      expect(done.started_at).toBe(MIDNIGHT - 14 * MINUTE);
      expect(done.execution_partition).toBe(`${landing.id}/20260303T000000`);
      // the history trigger's next landing is tomorrow's midnight minus the new estimate; the fresh one runs at midnight
      const next = await schedule(fx.client, "landing");
      expect(next.last_execution_date).toBe(MIDNIGHT);
      expect(next.next_run_at!).toBeGreaterThan(MIDNIGHT + DAY - 60 * MINUTE);
      expect(next.next_run_at!).toBeLessThan(MIDNIGHT + DAY);
      clock.advance(MIDNIGHT - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("in Europe/Paris with start_time 09:00 Paris time, it lands at 09:00 Paris time on both sides of the DST change", async () => {
    // Saturday March 28, 2026; Paris moves to summer time on Sunday the 29th
    const clock = new FakeClock(utc(2026, 3, 28, 10, 15));
    const trigger = (name: string) => ({ ...daily(name), timezone: "Europe/Paris", start_time: "2026-03-20T09:00:00+01:00" });
    const fx = await schedulerFixture(gatedProject("landing-paris", [trigger("paris"), trigger("paris-fresh")]), clock);
    try {
      await syncTriggers(fx.store, fx.project);
      const paris = await schedule(fx.client, "paris");
      // runtimes 10..16 minutes: lead 14 min
      for (let i = 0; i < 7; i++) await insertRun(fx.client, paris.id, utc(2026, 3, 20, 8) + i * DAY, "completed", (10 + i) * MINUTE);
      await fx.scheduler.tick();
      // Sunday 09:00 CEST is 07:00 UTC; without history it starts at the landing instant itself
      const sunday = utc(2026, 3, 29, 7);
      expect(iso((await schedule(fx.client, "paris")).next_run_at)).toBe(iso(sunday - 14 * MINUTE));
      expect(iso((await schedule(fx.client, "paris-fresh")).next_run_at)).toBe(iso(sunday));

      clock.advance(sunday - 14 * MINUTE - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      const created = await runs(fx.client, "pipeline_schedule_id = ? AND status NOT IN ('completed', 'failed')", [paris.id]);
      expect(created.map((r) => iso(r.execution_date))).toEqual([iso(sunday)]);
      const done = await waitForRun(fx.client, created[0]!.id);
      expect(done.started_at).toBe(sunday - 14 * MINUTE);
      // Monday's landing is 09:00 CEST again, started early by the new estimate
      const next = await schedule(fx.client, "paris");
      expect(next.next_run_at!).toBeGreaterThan(sunday + DAY - 60 * MINUTE);
      expect(next.next_run_at!).toBeLessThan(sunday + DAY);
      clock.advance(sunday - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      const fresh = await runs(fx.client, "pipeline_schedule_id = ?", [(await schedule(fx.client, "paris-fresh")).id]);
      expect(fresh.map((r) => iso(r.execution_date))).toEqual([iso(sunday)]);
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("without landing_time_enabled the history is ignored", async () => {
    const clock = new FakeClock(NOW);
    const fx = await schedulerFixture(
      gatedProject("landing-off", [{ name: "daily", schedule_type: "time", schedule_interval: "@daily", status: "active" }]),
      clock,
    );
    try {
      await syncTriggers(fx.store, fx.project);
      const row = await schedule(fx.client, "daily");
      for (let i = 0; i < 7; i++) await insertRun(fx.client, row.id, MIDNIGHT - (8 - i) * DAY, "completed", (10 + i) * MINUTE);
      await fx.scheduler.tick();
      expect(iso((await schedule(fx.client, "daily")).next_run_at)).toBe(iso(MIDNIGHT));
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });
});
