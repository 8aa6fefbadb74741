/** The programmatic schedule API over a real store. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { activeSchedules, createRunForSchedule, createSchedule, deleteSchedule, lastPipelineRunStatus, pipelineInProgressRunsCount, pipelineRuns, recentlyCompletedPipelineRuns, runtimeAverage, ScheduleInputError, updateSchedule } from "@kiln/core/api";
import { metadata, projectFixture, type Fixture } from "../helpers/fixtures.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await projectFixture({
    "kiln.yaml": "",
    "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
    "data_loaders/a.js": "export default () => 1;\n",
  });
});
afterAll(() => fx.cleanup());

describe("createSchedule / updateSchedule / deleteSchedule", () => {
  test("creates a checked schedule; an api trigger gets a token; an active one counts as enabled now", async () => {
    const api = await createSchedule(fx.store, fx.project, { name: "hook", pipelineUuid: "p", scheduleType: "api", status: "active" });
    expect(api.hasToken).toBe(true);
    expect(await fx.store.revealTriggerToken(api.id)).toMatch(/^[0-9a-f]{32}$/);
    expect(api.lastEnabledAt).not.toBeNull();
    const time = await createSchedule(fx.store, fx.project, {
      name: "daily",
      pipelineUuid: "p",
      scheduleType: "time",
      scheduleInterval: "@daily",
      timezone: "Europe/Paris",
      settings: { catch_up: "none", overlap: "skip" },
    });
    expect(time.status).toBe("inactive");
    expect(time.lastEnabledAt).toBeNull();
  });

  test("bad input names the field and writes nothing", async () => {
    const before = (await fx.client.execute("SELECT count(*) AS n FROM pipeline_schedules")).rows[0]?.n;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: "" }, "name"],
      [{ pipelineUuid: "nope" }, "pipeline_uuid"],
      [{ scheduleInterval: "61 * * * *" }, "schedule_interval"],
      [{ timezone: "Mars/Olympus" }, "timezone"],
      [{ settings: { overlap: "sometimes" } }, "settings"],
      [{ scheduleType: "cron" }, "schedule_type"],
      [{ sla: -5 }, "sla"],
      [{ scheduleInterval: null }, "schedule_interval"],
    ];
    for (const [patch, field] of cases) {
      const input = { name: "x", pipelineUuid: "p", scheduleType: "time", scheduleInterval: "@hourly", ...patch } as never;
      const error = await createSchedule(fx.store, fx.project, input).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ScheduleInputError);
      expect((error as ScheduleInputError).field).toBe(field);
    }
    expect((await fx.client.execute("SELECT count(*) AS n FROM pipeline_schedules")).rows[0]?.n).toBe(before);
  });

  test("activating sets last_enabled_at; rotating the token changes it; delete removes it", async () => {
    const s = await createSchedule(fx.store, fx.project, { name: "later", pipelineUuid: "p", scheduleType: "api" });
    const before = await fx.store.revealTriggerToken(s.id);
    const active = await updateSchedule(fx.store, s.id, { status: "active", rotateToken: true });
    expect(active.status).toBe("active");
    expect(active.lastEnabledAt).not.toBeNull();
    const after = await fx.store.revealTriggerToken(s.id);
    expect(after).toMatch(/^[0-9a-f]{32}$/);
    expect(after).not.toBe(before);
    expect((await activeSchedules(fx.store, ["p"])).map((x) => x.id)).toContain(s.id);
    await expect(updateSchedule(fx.store, s.id, { timezone: "Nowhere/Land" })).rejects.toThrow("timezone");
    expect(await deleteSchedule(fx.store, s.id)).toBe(true);
    expect(await deleteSchedule(fx.store, s.id)).toBe(false);
  });
});

describe("run statistics", () => {
  test("runtimeAverage, recently completed, last status, in-progress count, runs page", async () => {
    const s = await createSchedule(fx.store, fx.project, { name: "stats", pipelineUuid: "p", scheduleType: "api" });
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 3; i++) {
      const run = await createRunForSchedule(fx.store, s.id, { executionDate: t0 + i * 3_600_000, variables: { i } });
      await fx.client.execute({
        sql: "UPDATE pipeline_runs SET status = 'completed', started_at = ?, completed_at = ? WHERE id = ?",
        args: [t0, t0 + (i + 1) * 10_000, run.id],
      });
    }
    const live = await createRunForSchedule(fx.store, s.id, { variables: { env: "override" } });
    expect(live.variables).toEqual({ env: "override" });
    // Mage's partition for API, event and UI runs: <schedule>/%Y%m%dT%H%M%S_%f (microseconds)
    expect(live.executionPartition).toMatch(new RegExp(`^${s.id}/\\d{8}T\\d{6}_\\d{6}$`));
    const precise = await createRunForSchedule(fx.store, s.id, { executionDate: t0 + 5 * 3_600_000 + 61_123 });
    expect(precise.executionPartition).toBe(`${s.id}/20260101T050101_123000`);
    const whole = await createRunForSchedule(fx.store, s.id, { executionDate: t0 + 6 * 3_600_000 });
    expect(whole.executionPartition).toBe(`${s.id}/20260101T060000_000000`);
    expect(await runtimeAverage(fx.store, s.id)).toBe(20);
    expect((await recentlyCompletedPipelineRuns(fx.store, s.id, 2)).map((r) => r.variables.i)).toEqual([2, 1]);
    expect(await pipelineInProgressRunsCount(fx.store, s.id)).toBe(3);
    expect(await lastPipelineRunStatus(fx.store, s.id)).toBe("initial");
    expect((await pipelineRuns(fx.store, s.id, { limit: 10 })).items.length).toBe(6);
    await expect(createRunForSchedule(fx.store, s.id, { executionDate: t0 })).rejects.toThrow("exists for that date");
  });
});
