/**
 * Overlap policies against a long-running run: the trigger's 10:00 run is held at a gate (an
 * in-process block awaiting a promise on globalThis) while the 11:00 and 12:00 dates come due.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import {
  blockRunRows,
  closeGate,
  gatedProject,
  HOUR,
  iso,
  MINUTE,
  openGate,
  runs,
  schedule,
  schedulerFixture,
  utc,
  waitForEngines,
  waitForQuiet,
  waitForRun,
  type RunRow,
  type SchedulerFixture,
} from "../helpers/scheduler.ts";
import { until } from "../helpers/fixtures.ts";

const TEN = utc(2026, 3, 2, 10);
const ELEVEN = utc(2026, 3, 2, 11);
const TWELVE = utc(2026, 3, 2, 12);

/**
 * A fixture whose @hourly trigger (with `settings`) was activated at 10:15 with
 * create_initial_pipeline_run, so its 10:00 run is running and held at the gate.
 */
async function withLongRun(gateName: string, settings: Record<string, unknown>, body: (fx: SchedulerFixture, first: RunRow) => Promise<void>): Promise<void> {
  const gate = closeGate(gateName);
  const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
  const fx = await schedulerFixture(
    gatedProject(gateName, [
      { name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { create_initial_pipeline_run: true, ...settings } },
    ]),
    clock,
  );
  try {
    const report = await fx.scheduler.tick();
    expect(report.started).toBe(1);
    const [first] = await runs(fx.client);
    expect(iso(first!.execution_date)).toBe(iso(TEN));
    await waitForRun(fx.client, first!.id, ["running"]);
    await until(() => gate.arrivals === 1, "the 10:00 run's block to reach the gate");
    await body(fx, first!);
  } finally {
    openGate(gateName);
    await waitForEngines([fx.engine]);
    fx.cleanup();
  }
}

async function tickAt(fx: SchedulerFixture, at: number) {
  fx.clock.advance(at - fx.clock.now());
  return fx.scheduler.tick();
}

async function skipBehaviour(fx: SchedulerFixture, first: RunRow, gateName: string) {
  const report = await tickAt(fx, ELEVEN);
  expect(report.runs.created).toBe(0);
  expect(report.runs.skipped).toBe(1);
  expect(report.started).toBe(0);
  // the skipped date is visible: a cancelled run whose error says why (Mage's create-and-cancel)
  expect((await runs(fx.client)).map((r) => [iso(r.execution_date), r.status])).toEqual([
    [iso(TEN), "running"],
    [iso(ELEVEN), "cancelled"],
  ]);
  const [skipped] = await runs(fx.client, "execution_date = ?", [ELEVEN]);
  expect(JSON.parse(skipped!.metrics).error).toBe("skipped: a previous run of the trigger was still running (overlap: skip / skip_if_previous_running)");
  expect((await blockRunRows(fx.client, "pipeline_run_id = ?", [skipped!.id])).length).toBe(0);
  // the skipped date is dealt with: it is not made up once the run ends
  expect((await schedule(fx.client, "hourly")).last_execution_date).toBe(ELEVEN);
  await tickAt(fx, ELEVEN + 30 * MINUTE);
  expect((await runs(fx.client)).length).toBe(2);

  openGate(gateName);
  await waitForRun(fx.client, first.id);
  const next = await tickAt(fx, TWELVE);
  expect(next.runs.created).toBe(1);
  expect(next.started).toBe(1);
  const all = await waitForQuiet(fx.client);
  expect(all.map((r) => [iso(r.execution_date), r.status])).toEqual([
    [iso(TEN), "completed"],
    [iso(ELEVEN), "cancelled"],
    [iso(TWELVE), "completed"],
  ]);
}

describe("overlap policies while the trigger's previous run is still running", () => {
  test("skip: a date that comes due while the run is live creates no run", async () => {
    await withLongRun("ov-skip", { overlap: "skip" }, (fx, first) => skipBehaviour(fx, first, "ov-skip"));
  });

  test("skip_if_previous_running: true behaves as overlap: skip", async () => {
    await withLongRun("ov-legacy", { skip_if_previous_running: true }, (fx, first) => skipBehaviour(fx, first, "ov-legacy"));
  });

  test("buffer_one: exactly one run waits in initial, and starts once the running one ends", async () => {
    await withLongRun("ov-buffer", { overlap: "buffer_one" }, async (fx, first) => {
      const at11 = await tickAt(fx, ELEVEN);
      expect(at11.runs.created).toBe(1);
      expect(at11.started).toBe(0);
      const at12 = await tickAt(fx, TWELVE);
      expect(at12.runs.created).toBe(0);
      expect(at12.started).toBe(0);
      await tickAt(fx, TWELVE + 10 * MINUTE);
      const waiting = await runs(fx.client);
      expect(waiting.map((r) => [iso(r.execution_date), r.status])).toEqual([
        [iso(TEN), "running"],
        [iso(ELEVEN), "initial"],
        [iso(TWELVE), "cancelled"],
      ]);
      expect(JSON.parse(waiting[2]!.metrics).error).toContain("overlap: buffer_one");

      openGate("ov-buffer");
      const firstDone = await waitForRun(fx.client, first.id);
      const after = await tickAt(fx, TWELVE + 11 * MINUTE);
      expect(after.started).toBe(1);
      const buffered = await waitForRun(fx.client, waiting[1]!.id);
      expect(buffered.started_at).toBeGreaterThan(firstDone.completed_at!);
      expect((await runs(fx.client)).length).toBe(3);
    });
  });

  test("cancel_previous: the live run is cancelled and a new run is created (and started)", async () => {
    await withLongRun("ov-cancel", { overlap: "cancel_previous" }, async (fx, first) => {
      const report = await tickAt(fx, ELEVEN);
      expect(report.runs.created).toBe(1);
      expect(report.started).toBe(1);
      const [old, fresh] = await runs(fx.client);
      expect(old!.id).toBe(first.id);
      expect(old!.status).toBe("cancelled");
      expect(old!.completed_at).toBe(ELEVEN);
      expect(JSON.parse(old!.metrics).error).toContain("cancel_previous");
      expect((await blockRunRows(fx.client, "pipeline_run_id = ?", [first.id])).map((b) => b.status)).toEqual(["cancelled"]);
      expect(iso(fresh!.execution_date)).toBe(iso(ELEVEN));
      await waitForRun(fx.client, fresh!.id, ["running"]);
      // the engine executing the old run notices the cancel (it watches the database) and lets it go
      await until(() => !fx.engine.activeRunIds().includes(first.id), "the engine to drop the cancelled run");
      expect((await runs(fx.client, "id = ?", [first.id]))[0]!.status).toBe("cancelled");

      openGate("ov-cancel");
      await waitForRun(fx.client, fresh!.id);
      await waitForEngines([fx.engine]);
      // the engine that was running the old run stopped it without undoing the cancel
      const final = await runs(fx.client);
      expect(final.map((r) => [iso(r.execution_date), r.status])).toEqual([
        [iso(TEN), "cancelled"],
        [iso(ELEVEN), "completed"],
      ]);
      expect((await blockRunRows(fx.client, "pipeline_run_id = ?", [first.id])).map((b) => b.status)).toEqual(["cancelled"]);
    });
  });

  test("allow: runs overlap", async () => {
    await withLongRun("ov-allow", { overlap: "allow" }, async (fx, first) => {
      const report = await tickAt(fx, ELEVEN);
      expect(report.runs.created).toBe(1);
      expect(report.started).toBe(1);
      const second = (await runs(fx.client))[1]!;
      await waitForRun(fx.client, second.id, ["running"]);
      expect((await runs(fx.client, "id = ?", [first.id]))[0]!.status).toBe("running");
      const at12 = await tickAt(fx, TWELVE);
      expect(at12.started).toBe(1);
      await until(async () => (await runs(fx.client, "status = 'running'")).length === 3, "three runs running at once");
      openGate("ov-allow");
      const all = await waitForQuiet(fx.client);
      expect(all.map((r) => [iso(r.execution_date), r.status])).toEqual([
        [iso(TEN), "completed"],
        [iso(ELEVEN), "completed"],
        [iso(TWELVE), "completed"],
      ]);
    });
  });

  test("allow is the default", async () => {
    await withLongRun("ov-default", {}, async (fx) => {
      const report = await tickAt(fx, ELEVEN);
      expect(report.runs.created).toBe(1);
      expect(report.started).toBe(1);
      await until(async () => (await runs(fx.client, "status = 'running'")).length === 2, "two runs running at once");
    });
  });

  test("catch-up under buffer_one after downtime: one run waits, not the whole backlog", async () => {
    await withLongRun("ov-buffer-all", { overlap: "buffer_one", catch_up: "all" }, async (fx) => {
      const report = await tickAt(fx, TEN + 5 * HOUR + MINUTE);
      expect(report.runs.created).toBe(1);
      const waiting = (await runs(fx.client)).filter((r) => r.status === "initial");
      expect(waiting.map((r) => iso(r.execution_date))).toEqual([iso(TEN + 5 * HOUR)]);
    });
  });
});
