/**
 * @once as Mage runs it: one run at start_time (or at once when start_time is absent or past and
 * it never ran); the trigger becomes inactive when that run ends; switching it on again does not
 * fire it again, a new start_time does. Through triggers.yaml and through the schedule API.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { createSchedule, updateSchedule } from "@kiln/core/api";
import { syncTriggers } from "@kiln/scheduler";
import { closeGate, gatedProject, iso, MINUTE, openGate, runs, schedule, schedulerFixture, triggersYaml, utc, waitForEngines, waitForRun } from "../helpers/scheduler.ts";
import { until } from "../helpers/fixtures.ts";

const NOW = utc(2026, 5, 4, 10);

describe("@once", () => {
  test("fires once at its start_time, stays active while the run runs, becomes inactive when it ends; a second activation does not refire", async () => {
    const gate = closeGate("once-gate");
    const clock = new FakeClock(NOW);
    const start = NOW + 30 * MINUTE;
    const trigger = { name: "once", schedule_type: "time", schedule_interval: "@once", status: "active", start_time: new Date(start).toISOString() };
    const fx = await schedulerFixture(gatedProject("once-gate", [trigger]), clock);
    try {
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      expect(iso((await schedule(fx.client, "once")).next_run_at)).toBe(iso(start));
      clock.advance(start - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      const [run] = await runs(fx.client);
      expect(iso(run!.execution_date)).toBe(iso(start));
      await until(() => gate.arrivals === 1, "the block to reach the gate");
      // running: still active, and ticks (with syncs) neither refire it nor switch it off
      for (let i = 0; i < 3; i++) {
        clock.advance(MINUTE);
        expect((await fx.scheduler.tick()).runs.created).toBe(0);
      }
      expect((await schedule(fx.client, "once")).status).toBe("active");
      openGate("once-gate");
      await waitForRun(fx.client, run!.id);
      clock.advance(MINUTE);
      await fx.scheduler.tick();
      expect((await schedule(fx.client, "once")).status).toBe("inactive");
      // the file still says active: ten syncs leave it inactive
      for (let i = 0; i < 10; i++) {
        clock.advance(31_000);
        await fx.scheduler.tick();
        await syncTriggers(fx.store, fx.project, clock.now());
      }
      expect((await schedule(fx.client, "once")).status).toBe("inactive");
      // switched on again through the API: no second run, and it is switched off again
      const row = await schedule(fx.client, "once");
      await updateSchedule(fx.store, row.id, { status: "active" });
      clock.advance(MINUTE);
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      expect((await schedule(fx.client, "once")).status).toBe("inactive");
      expect((await runs(fx.client)).length).toBe(1);

      // a new start_time in the file re-arms it: one more run, then inactive again
      const later = clock.now() + 10 * MINUTE;
      await fx.edit({ "pipelines/p/triggers.yaml": triggersYaml([{ ...trigger, start_time: new Date(later).toISOString() }]) });
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      expect((await schedule(fx.client, "once")).status).toBe("active");
      clock.advance(later - clock.now());
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      const all = await runs(fx.client);
      expect(all.map((r) => iso(r.execution_date))).toEqual([iso(start), iso(later)]);
      await waitForRun(fx.client, all[1]!.id);
      clock.advance(MINUTE);
      await fx.scheduler.tick();
      expect((await schedule(fx.client, "once")).status).toBe("inactive");
    } finally {
      openGate("once-gate");
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("without start_time, or with one in the past, it fires at once on its first tick; an API edit of start_time re-arms it", async () => {
    const clock = new FakeClock(NOW);
    const fx = await schedulerFixture(
      gatedProject("once-now", [
        { name: "no-start", schedule_type: "time", schedule_interval: "@once", status: "active" },
        { name: "past", schedule_type: "time", schedule_interval: "@once", status: "active", start_time: "2026-01-01T00:00:00Z" },
      ]),
      clock,
    );
    try {
      expect((await fx.scheduler.tick()).runs.created).toBe(2);
      const created = await runs(fx.client);
      expect(created.map((r) => iso(r.execution_date)).sort()).toEqual([iso(utc(2026, 1, 1)), iso(NOW)]);
      for (const r of created) await waitForRun(fx.client, r.id);
      clock.advance(MINUTE);
      await fx.scheduler.tick();
      expect((await schedule(fx.client, "no-start")).status).toBe("inactive");
      expect((await schedule(fx.client, "past")).status).toBe("inactive");
      // a trigger made through the API: same start_time again is not re-armed; a new one fires
      const api = await createSchedule(fx.store, fx.project, {
        name: "api-once", pipelineUuid: "p", scheduleType: "time", scheduleInterval: "@once", status: "active", startTime: utc(2026, 1, 2),
      });
      clock.advance(MINUTE);
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      const [apiRun] = await runs(fx.client, "pipeline_schedule_id = ?", [api.id]);
      await waitForRun(fx.client, apiRun!.id);
      clock.advance(MINUTE);
      await fx.scheduler.tick();
      expect((await schedule(fx.client, "api-once")).status).toBe("inactive");
      await updateSchedule(fx.store, api.id, { status: "active", startTime: utc(2026, 1, 2) });
      clock.advance(MINUTE);
      expect((await fx.scheduler.tick()).runs.created).toBe(0);
      expect((await schedule(fx.client, "api-once")).status).toBe("inactive");
      await updateSchedule(fx.store, api.id, { status: "active", startTime: clock.now() + MINUTE });
      clock.advance(MINUTE);
      expect((await fx.scheduler.tick()).runs.created).toBe(1);
      expect((await runs(fx.client, "pipeline_schedule_id = ?", [api.id])).length).toBe(2);
    } finally {
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });
});
