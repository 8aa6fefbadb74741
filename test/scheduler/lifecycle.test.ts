/**
 * start() and stop(): ticks on the scheduler's clock (a fake one here, so a tick happens only
 * when the test moves time), a heartbeat per tick, and a stop that lets a running run finish,
 * claims nothing new and removes the heartbeat.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { until } from "../helpers/fixtures.ts";
import { closeGate, gatedProject, iso, openGate, runs, schedulerFixture, utc, waitForEngines, waitForRun } from "../helpers/scheduler.ts";

async function heartbeat(fx: { client: { execute(sql: string): Promise<{ rows: Array<Record<string, unknown>> }> } }): Promise<number | null> {
  const rs = await fx.client.execute("SELECT heartbeat_at FROM schedulers WHERE id = 'scheduler-main'");
  return rs.rows[0] ? Number(rs.rows[0].heartbeat_at) : null;
}

describe("Scheduler.start() and stop()", () => {
  test("ticks every tickIntervalMs of its clock; stop lets the running run finish, then removes the heartbeat", async () => {
    closeGate("life");
    const clock = new FakeClock(utc(2026, 3, 2, 10, 59, 58));
    const fx = await schedulerFixture(
      gatedProject("life", [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active" }]),
      clock,
      { tickIntervalMs: 1000 },
    );
    try {
      fx.scheduler.start();
      // the first tick runs at once
      await until(async () => (await heartbeat(fx)) === utc(2026, 3, 2, 10, 59, 58), "the first heartbeat");
      await until(() => clock.pendingTimers > 0, "the next tick to be scheduled");
      clock.advance(1000);
      await until(async () => (await heartbeat(fx)) === utc(2026, 3, 2, 10, 59, 59), "the second heartbeat");
      expect(await runs(fx.client)).toEqual([]);
      await until(() => clock.pendingTimers > 0, "the next tick to be scheduled");
      clock.advance(1000);
      await until(async () => (await runs(fx.client, "status = 'running'")).length === 1, "the 11:00 run to start");
      const [run] = await runs(fx.client);
      expect(iso(run!.execution_date)).toBe(iso(utc(2026, 3, 2, 11)));
      expect(fx.scheduler.activeRuns).toBe(1);
      expect(fx.scheduler.skippedTicks).toBe(0);

      // stop while the run is held: it waits for it (up to the grace period)
      let stopped = false;
      const stopping = fx.scheduler.stop(20_000).then(() => (stopped = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(stopped).toBe(false);
      openGate("life");
      await stopping;
      expect((await waitForRun(fx.client, run!.id)).status).toBe("completed");
      expect(await heartbeat(fx)).toBeNull();
      // no more ticks: moving time on creates nothing and writes no heartbeat
      clock.advance(2 * 3_600_000);
      await new Promise((r) => setTimeout(r, 50));
      expect((await runs(fx.client)).length).toBe(1);
      expect(await heartbeat(fx)).toBeNull();
    } finally {
      openGate("life");
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("stop with a run still running past the grace period leaves it to another scheduler at once (heartbeat removed)", async () => {
    closeGate("life-grace");
    const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
    const fx = await schedulerFixture(
      gatedProject("life-grace", [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { create_initial_pipeline_run: true } }]),
      clock,
    );
    try {
      await fx.scheduler.tick();
      const [run] = await runs(fx.client);
      await waitForRun(fx.client, run!.id, ["running"]);
      await fx.scheduler.stop(100);
      expect(await heartbeat(fx)).toBeNull();
      // the run is still running, owned by a scheduler that is gone: an orphan for the next one, without waiting orphan_after
      const orphans = await fx.client.execute(
        "SELECT pr.id FROM pipeline_runs pr LEFT JOIN schedulers s ON s.id = pr.owner WHERE pr.status = 'running' AND s.id IS NULL",
      );
      expect(orphans.rows.map((r) => Number(r.id))).toEqual([run!.id]);
    } finally {
      openGate("life-grace");
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });
});
