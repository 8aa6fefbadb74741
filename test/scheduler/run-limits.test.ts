/**
 * Run limits: a trigger's pipeline_run_limit with on_pipeline_run_limit_reached wait (runs queue
 * in initial and start in creation order) or skip (no run created while the limit is reached),
 * and a pipeline's concurrency_config.pipeline_run_limit_all_triggers across its triggers.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import {
  closeGate,
  gatedProject,
  iso,
  MINUTE,
  openGate,
  runs,
  schedulerFixture,
  utc,
  waitForEngines,
  waitForQuiet,
  waitForRun,
  type SchedulerFixture,
} from "../helpers/scheduler.ts";
import { until } from "../helpers/fixtures.ts";

const TEN = utc(2026, 3, 2, 10);
const ELEVEN = utc(2026, 3, 2, 11);
const TWELVE = utc(2026, 3, 2, 12);

async function tickAt(fx: SchedulerFixture, at: number) {
  fx.clock.advance(at - fx.clock.now());
  return fx.scheduler.tick();
}

const statuses = async (fx: SchedulerFixture) => (await runs(fx.client)).map((r) => [iso(r.execution_date), r.status]);

function hourly(name: string, settings: Record<string, unknown>) {
  return { name, schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { create_initial_pipeline_run: true, ...settings } };
}

async function withFixture(gateName: string, files: Record<string, string>, body: (fx: SchedulerFixture) => Promise<void>) {
  const gate = closeGate(gateName);
  const fx = await schedulerFixture(files, new FakeClock(utc(2026, 3, 2, 10, 15)));
  try {
    await body(fx);
  } finally {
    gate.open();
    await waitForEngines([fx.engine]);
    fx.cleanup();
  }
}

describe("pipeline_run_limit: 1 on a trigger", () => {
  test("wait: later runs wait in initial and start one at a time, in creation order", async () => {
    await withFixture("lim-wait", gatedProject("lim-wait", [hourly("hourly", { pipeline_run_limit: 1, on_pipeline_run_limit_reached: "wait" })]), async (fx) => {
      expect((await fx.scheduler.tick()).started).toBe(1);
      const [first] = await runs(fx.client);
      await waitForRun(fx.client, first!.id, ["running"]);

      const at11 = await tickAt(fx, ELEVEN);
      expect([at11.runs.created, at11.started]).toEqual([1, 0]);
      const at12 = await tickAt(fx, TWELVE);
      expect([at12.runs.created, at12.started]).toEqual([1, 0]);
      expect(await statuses(fx)).toEqual([
        [iso(TEN), "running"],
        [iso(ELEVEN), "initial"],
        [iso(TWELVE), "initial"],
      ]);

      openGate("lim-wait");
      await waitForRun(fx.client, first!.id);
      // one slot: the older waiting run goes first, the newer still waits
      expect((await tickAt(fx, TWELVE + MINUTE)).started).toBe(1);
      const [, eleven, twelve] = await runs(fx.client);
      expect(twelve!.status).toBe("initial");
      await waitForRun(fx.client, eleven!.id);
      expect((await tickAt(fx, TWELVE + 2 * MINUTE)).started).toBe(1);
      await waitForRun(fx.client, twelve!.id);
      const all = await runs(fx.client);
      expect(all.map((r) => r.status)).toEqual(["completed", "completed", "completed"]);
      expect(all[1]!.started_at).toBe(TWELVE + MINUTE);
      expect(all[2]!.started_at).toBe(TWELVE + 2 * MINUTE);
      // never two at once
      expect(all[1]!.started_at!).toBeGreaterThanOrEqual(all[0]!.completed_at!);
      expect(all[2]!.started_at!).toBeGreaterThanOrEqual(all[1]!.completed_at!);
    });
  });

  test("wait is the default", async () => {
    await withFixture("lim-default", gatedProject("lim-default", [hourly("hourly", { pipeline_run_limit: 1 })]), async (fx) => {
      await fx.scheduler.tick();
      const [first] = await runs(fx.client);
      await waitForRun(fx.client, first!.id, ["running"]);
      const at11 = await tickAt(fx, ELEVEN);
      expect([at11.runs.created, at11.started]).toEqual([1, 0]);
    });
  });

  test("skip: no run is created while one is running", async () => {
    await withFixture("lim-skip", gatedProject("lim-skip", [hourly("hourly", { pipeline_run_limit: 1, on_pipeline_run_limit_reached: "skip" })]), async (fx) => {
      await fx.scheduler.tick();
      const [first] = await runs(fx.client);
      await waitForRun(fx.client, first!.id, ["running"]);
      const at11 = await tickAt(fx, ELEVEN);
      expect([at11.runs.created, at11.runs.skipped, at11.started]).toEqual([0, 1, 0]);
      // the skipped date is visible: a cancelled run whose error says why (Mage's create-and-cancel)
      expect(await statuses(fx)).toEqual([
        [iso(TEN), "running"],
        [iso(ELEVEN), "cancelled"],
      ]);
      const [skipped] = await runs(fx.client, "execution_date = ?", [ELEVEN]);
      expect(JSON.parse(skipped!.metrics).error).toBe("skipped: the trigger's pipeline_run_limit (1) was reached (on_pipeline_run_limit_reached: skip)");
      expect(skipped!.completed_at).toBe(ELEVEN);
      expect(skipped!.started_at).toBeNull();

      openGate("lim-skip");
      await waitForRun(fx.client, first!.id);
      const at12 = await tickAt(fx, TWELVE);
      expect([at12.runs.created, at12.started]).toEqual([1, 1]);
      await waitForQuiet(fx.client);
      expect(await statuses(fx)).toEqual([
        [iso(TEN), "completed"],
        [iso(ELEVEN), "cancelled"],
        [iso(TWELVE), "completed"],
      ]);
    });
  });

  test("a limit of 2 lets two run at once, the third waits", async () => {
    await withFixture("lim-two", gatedProject("lim-two", [hourly("hourly", { pipeline_run_limit: 2 })]), async (fx) => {
      await fx.scheduler.tick();
      await tickAt(fx, ELEVEN);
      await tickAt(fx, TWELVE);
      await until(async () => (await runs(fx.client, "status = 'running'")).length === 2, "two runs running");
      expect(await statuses(fx)).toEqual([
        [iso(TEN), "running"],
        [iso(ELEVEN), "running"],
        [iso(TWELVE), "initial"],
      ]);
    });
  });
});

describe("concurrency_config.pipeline_run_limit_all_triggers", () => {
  test("1 across two triggers of one pipeline: the second trigger's run waits for the first's", async () => {
    const files = gatedProject("lim-all", [hourly("a", {}), hourly("b", {})], "concurrency_config:\n  pipeline_run_limit_all_triggers: 1\n");
    await withFixture("lim-all", files, async (fx) => {
      const report = await fx.scheduler.tick();
      expect([report.runs.created, report.started]).toEqual([2, 1]);
      const [a, b] = await runs(fx.client);
      await waitForRun(fx.client, a!.id, ["running"]);
      await tickAt(fx, utc(2026, 3, 2, 10, 20));
      expect((await runs(fx.client)).map((r) => r.status)).toEqual(["running", "initial"]);
      expect(a!.pipeline_schedule_id).not.toBe(b!.pipeline_schedule_id);

      // 11:00: each trigger has a new run; still only one of the pipeline's runs at a time
      const at11 = await tickAt(fx, ELEVEN);
      expect([at11.runs.created, at11.started]).toEqual([2, 0]);

      openGate("lim-all");
      await waitForRun(fx.client, a!.id);
      for (let i = 1; i <= 3; i++) {
        const tick = await tickAt(fx, ELEVEN + i * MINUTE);
        expect(tick.started).toBe(1);
        // whatever it started ends before the next tick (the gate is open)
        await until(async () => (await runs(fx.client, "status = 'completed'")).length === 1 + i, "the started run to end");
      }
      const all = await runs(fx.client);
      expect(all.map((r) => r.status)).toEqual(["completed", "completed", "completed", "completed"]);
      // started in creation order, one per tick
      expect(all.map((r) => r.started_at)).toEqual([utc(2026, 3, 2, 10, 15), ELEVEN + MINUTE, ELEVEN + 2 * MINUTE, ELEVEN + 3 * MINUTE]);
    });
  });

  test("without it both triggers' runs run at once", async () => {
    await withFixture("lim-none", gatedProject("lim-none", [hourly("a", {}), hourly("b", {})]), async (fx) => {
      const report = await fx.scheduler.tick();
      expect([report.runs.created, report.started]).toEqual([2, 2]);
      await until(async () => (await runs(fx.client, "status = 'running'")).length === 2, "both runs running");
    });
  });

  test("concurrency_config.pipeline_run_limit in metadata.yaml limits each trigger", async () => {
    const files = gatedProject("lim-meta", [hourly("a", {})], "concurrency_config:\n  pipeline_run_limit: 1\n");
    await withFixture("lim-meta", files, async (fx) => {
      await fx.scheduler.tick();
      const [first] = await runs(fx.client);
      await waitForRun(fx.client, first!.id, ["running"]);
      const at11 = await tickAt(fx, ELEVEN);
      expect([at11.runs.created, at11.started]).toEqual([1, 0]);
    });
  });
});
