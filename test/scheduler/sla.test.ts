/**
 * SLA: a run not completed `sla` seconds after its execution date is flagged passed_sla = 1,
 * once; a run that completes in time never is.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { closeGate, gatedProject, MINUTE, openGate, runs, schedulerFixture, utc, waitForEngines, waitForRun } from "../helpers/scheduler.ts";

const ELEVEN = utc(2026, 3, 2, 11);

describe("sla on a trigger", () => {
  test("a run still running sla seconds after its execution date is flagged once; one done in time is not", async () => {
    closeGate("sla");
    const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
    const fx = await schedulerFixture(
      gatedProject("sla", [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", sla: 600 }]),
      clock,
    );
    try {
      await fx.scheduler.tick();
      clock.advance(ELEVEN - clock.now());
      expect((await fx.scheduler.tick()).slaBreaches).toBe(0);
      const [run] = await runs(fx.client);
      await waitForRun(fx.client, run!.id, ["running"]);

      // exactly sla seconds after: not yet past it
      clock.advance(10 * MINUTE);
      expect((await fx.scheduler.tick()).slaBreaches).toBe(0);
      expect((await runs(fx.client))[0]!.passed_sla).toBe(0);

      clock.advance(1000);
      expect((await fx.scheduler.tick()).slaBreaches).toBe(1);
      expect((await runs(fx.client))[0]!.passed_sla).toBe(1);
      // once: later ticks do not flag it again
      clock.advance(MINUTE);
      expect((await fx.scheduler.tick()).slaBreaches).toBe(0);

      openGate("sla");
      const done = await waitForRun(fx.client, run!.id);
      expect(done.passed_sla).toBe(1);

      // the 12:00 run completes within its SLA: never flagged
      clock.advance(utc(2026, 3, 2, 12) - clock.now());
      await fx.scheduler.tick();
      const twelve = (await runs(fx.client))[1]!;
      await waitForRun(fx.client, twelve.id);
      clock.advance(30 * MINUTE);
      expect((await fx.scheduler.tick()).slaBreaches).toBe(0);
      expect((await runs(fx.client)).map((r) => r.passed_sla)).toEqual([1, 0]);
    } finally {
      openGate("sla");
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });

  test("a run waiting in initial past its SLA (held by a run limit) is flagged too", async () => {
    closeGate("sla-wait");
    const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
    const fx = await schedulerFixture(
      gatedProject("sla-wait", [
        {
          name: "hourly",
          schedule_type: "time",
          schedule_interval: "@hourly",
          status: "active",
          sla: 300,
          settings: { create_initial_pipeline_run: true, pipeline_run_limit: 1 },
        },
      ]),
      clock,
    );
    try {
      // created at 10:15, the 10:00 run is past its 5-minute SLA from the start: flagged by the tick that creates it
      expect((await fx.scheduler.tick()).slaBreaches).toBe(1);
      clock.advance(ELEVEN - clock.now());
      // the 11:00 run waits behind it (limit 1) and is not late yet
      expect((await fx.scheduler.tick()).slaBreaches).toBe(0);
      clock.advance(5 * MINUTE + 1000);
      expect((await fx.scheduler.tick()).slaBreaches).toBe(1);
      expect((await runs(fx.client)).map((r) => [r.status, r.passed_sla])).toEqual([
        ["running", 1],
        ["initial", 1],
      ]);
    } finally {
      openGate("sla-wait");
      await waitForEngines([fx.engine]);
      fx.cleanup();
    }
  });
});
