/** A large backfill waiting on max_concurrent_runs does not keep other runs from starting. */
import { expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { createRunForSchedule, createSchedule } from "@kiln/core/api";
import { createBackfill, startBackfill } from "@kiln/core/backfill";
import { until } from "../helpers/fixtures.ts";
import { closeGate, gatedProject, openGate, runs, schedulerFixture, utc } from "../helpers/scheduler.ts";

test("an api run created after 600 waiting backfill runs starts at the next tick", async () => {
  closeGate("start-window");
  const clock = new FakeClock(utc(2026, 3, 2, 10, 0));
  const fx = await schedulerFixture(gatedProject("start-window", []), clock);
  try {
    const backfill = await createBackfill(fx.store, fx.project, {
      name: "long",
      pipelineUuid: "p",
      startDatetime: "2024-01-01",
      endDatetime: "2025-08-22",
      intervalType: "day",
      maxConcurrentRuns: 1,
    });
    expect((await startBackfill(fx.store, backfill.id)).runsCreated).toBe(600);
    const api = await createSchedule(fx.store, fx.project, { name: "hook", pipelineUuid: "p", scheduleType: "api", status: "active" });
    const run = await createRunForSchedule(fx.store, api.id);

    await fx.scheduler.tick();
    await until(async () => (await runs(fx.client, "id = ?", [run.id]))[0]?.status === "running", "the api run to start");
    // and the backfill still runs one at a time
    expect((await runs(fx.client, "backfill_id = ? AND status = 'running'", [backfill.id])).length).toBe(1);
  } finally {
    openGate("start-window");
    await fx.scheduler.stop(2000);
    fx.cleanup();
  }
});
