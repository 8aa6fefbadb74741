/** The programmatic schedule API over a real store. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { activeSchedules, createRunForSchedule, createSchedule, deleteSchedule, lastPipelineRunStatus, pipelineInProgressRunsCount, pipelineRuns, recentlyCompletedPipelineRuns, runtimeAverage, ScheduleInputError, updateSchedule } from "@kiln/core/api";
import { systemClock, triggeredExecutionPartition, type Clock } from "@kiln/core";
import fc from "fast-check";
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

describe("createRunForSchedule: runs of one trigger in one millisecond", () => {
  let burst: Fixture;
  const t0 = Date.UTC(2026, 2, 8, 7, 30, 15, 250);
  // the time of the store's inserts, set by each test; timers as the real clock's
  let now = t0;
  const clock: Clock = { now: () => now, setTimer: (ms, fn, options) => systemClock.setTimer(ms, fn, options) };
  beforeAll(async () => {
    burst = await projectFixture(
      {
        "kiln.yaml": "",
        "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
        "data_loaders/a.js": "export default () => 1;\n",
      },
      clock,
    );
  });
  afterAll(() => burst.cleanup());

  test("each gets the next millisecond, its partition that millisecond's, in two rounds of inserts however many there are", async () => {
    const s = await createSchedule(burst.store, burst.project, { name: "burst", pipelineUuid: "p", scheduleType: "api" });
    let inserts = 0;
    const create = burst.store.createPipelineRun.bind(burst.store);
    burst.store.createPipelineRun = (run) => {
      inserts++;
      return create(run);
    };
    try {
      const n = 300;
      const runs = await Promise.all(Array.from({ length: n }, (_, i) => createRunForSchedule(burst.store, s, { variables: { i } })));
      const dates = runs.map((r) => r.executionDate).sort((a, b) => a - b);
      expect(dates).toEqual(Array.from({ length: n }, (_, i) => t0 + i));
      for (const run of runs) expect(run.executionPartition).toBe(triggeredExecutionPartition(s.id, run.executionDate));
      // each request's variables are on its own run
      expect(new Set(runs.map((r) => r.variables.i)).size).toBe(n);
      // the first round takes the millisecond for one of them, the second places all the others
      expect(inserts).toBe(2 * n - 1);
    } finally {
      burst.store.createPipelineRun = create;
    }
  });

  test("the moved run's partition is the one kiln writes for its date, at any date", async () => {
    let made = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: Date.UTC(9999, 11, 31, 23, 59, 59, 998) }), async (date) => {
        // a trigger of its own each time: shrinking tries the same dates again
        const s = await createSchedule(burst.store, burst.project, { name: `dates_${made++}`, pipelineUuid: "p", scheduleType: "api" });
        now = date;
        const first = await createRunForSchedule(burst.store, s);
        const moved = await createRunForSchedule(burst.store, s);
        expect(first.executionDate).toBe(date);
        expect(moved.executionDate).toBe(date + 1);
        expect(moved.executionPartition).toBe(triggeredExecutionPartition(s.id, date + 1));
        return true;
      }),
      { numRuns: 150 },
    );
  });

  test("a run dated later within the second does not move a run whose millisecond is free", async () => {
    const s = await createSchedule(burst.store, burst.project, { name: "ahead", pipelineUuid: "p", scheduleType: "api" });
    now = t0;
    await createRunForSchedule(burst.store, s, { executionDate: t0 + 500 });
    expect((await createRunForSchedule(burst.store, s)).executionDate).toBe(t0);
    // taken now: after the latest within the second
    expect((await createRunForSchedule(burst.store, s)).executionDate).toBe(t0 + 501);
  });
});
