/** Backfills over a real libSQL file: create (validation), start, cancel, retry, settle, counts, runs to start. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { FakeClock, KilnError, type PipelineRunStatus } from "@kiln/core";
import { IllegalTransitionError } from "@kiln/core/engine";
import { Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import {
  backfillRunsToStart,
  backfillStatus,
  cancelBackfill,
  createBackfill,
  retryFailedBackfillRuns,
  settleBackfills,
  startBackfill,
  type BackfillInput,
} from "../../core/src/backfill/index.ts";
import { getBackfill, listBackfills } from "../../core/src/store/backfills.ts";
import { metadata, projectFixture, type Fixture } from "../helpers/fixtures.ts";

let fx: Fixture;
let clock: FakeClock;
beforeEach(async () => {
  clock = new FakeClock(Date.UTC(2026, 0, 1));
  fx = await projectFixture(
    {
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "a", type: "data_loader" },
        { uuid: "b", type: "transformer", upstream_blocks: ["a"] },
      ]),
      "pipelines/q/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
      "data_loaders/a.js": "export default () => 1;\n",
      "transformers/b.js": "export default (x) => x;\n",
    },
    clock,
  );
});
afterEach(() => fx.cleanup());

const DAY = 86_400_000;
const JAN1 = Date.UTC(2024, 0, 1);

/** A daily backfill of pipeline p over `days` days from 2024-01-01, with overrides. */
function create(overrides: Partial<BackfillInput> = {}, days = 4) {
  return createBackfill(fx.store, fx.project, {
    name: "bf",
    pipelineUuid: "p",
    startDatetime: JAN1,
    endDatetime: JAN1 + (days - 1) * DAY,
    intervalType: "day",
    ...overrides,
  });
}

async function runsOf(backfillId: number) {
  return (await fx.store.listPipelineRuns({ backfillId }, { limit: 1000 })).items.reverse();
}

/** Moves a pipeline run along a path of statuses, one guarded transition each. */
async function move(runId: number, ...path: PipelineRunStatus[]) {
  let from = (await fx.store.getPipelineRun(runId))!.status;
  for (const to of path) {
    await fx.store.commit(fx.store.batch().transitionPipelineRun(runId, from, to));
    from = to;
  }
}

/** Starts a run as the engine would: running, with block a running and block b waiting. */
async function startWithBlocks(runId: number) {
  const batch = fx.store.batch().transitionPipelineRun(runId, "initial", "running");
  batch.insertBlockRuns(runId, ["a", "b"]);
  batch.transitionBlockRun({ pipelineRunId: runId, blockUuid: "a" }, "initial", "running", {}, ["queued"]);
  await fx.store.commit(batch);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("createBackfill", () => {
  test("stores a backfill in status initial, reading ISO times and the run limit", async () => {
    const schedule = await fx.store.createPipelineSchedule({ name: "daily", pipelineUuid: "p", scheduleType: "time" });
    const b = await create({
      name: "  january  ",
      startDatetime: "2024-01-01",
      endDatetime: "2024-01-31T01:00:00+01:00",
      intervalUnits: 2,
      variables: { region: "eu" },
      blockUuid: "b",
      maxConcurrentRuns: 3,
      pipelineScheduleId: schedule.id,
    });
    expect(b).toMatchObject({
      name: "january",
      pipelineUuid: "p",
      pipelineScheduleId: schedule.id,
      startDatetime: JAN1,
      endDatetime: Date.UTC(2024, 0, 31),
      intervalType: "day",
      intervalUnits: 2,
      variables: { region: "eu" },
      blockUuid: "b",
      maxConcurrentRuns: 3,
      status: "initial",
      startedAt: null,
      completedAt: null,
      createdAt: clock.now(),
    });
    expect(await getBackfill(fx.client, b.id)).toEqual(b);
    const report = await backfillStatus(fx.store, b.id);
    expect(report.totalDates).toBe(16);
    expect(Object.values(report.counts).every((n) => n === 0)).toBe(true);
  });

  test("rejects bad input with a KilnError naming the field", async () => {
    const other = await fx.store.createPipelineSchedule({ name: "other", pipelineUuid: "q", scheduleType: "time" });
    const cases: Array<[Partial<BackfillInput>, string, RegExp]> = [
      [{ name: " " }, "name", /name must be a non-empty string/],
      [{ pipelineUuid: "nope" }, "pipeline_uuid", /no pipeline "nope"/],
      [{ blockUuid: "zz" }, "block_uuid", /pipeline p has no block "zz"/],
      [{ pipelineScheduleId: 9999 }, "pipeline_schedule_id", /trigger 9999 does not exist/],
      [{ pipelineScheduleId: other.id }, "pipeline_schedule_id", /belongs to pipeline q, not p/],
      [{ intervalType: "fortnight" as never }, "interval_type", /interval_type must be one of minute, hour/],
      [{ intervalUnits: 0 }, "interval_units", /interval_units must be a positive integer, got 0/],
      [{ intervalUnits: 1.5 }, "interval_units", /positive integer/],
      [{ startDatetime: "2024-01-01T00:00:00" }, "start_datetime", /with an offset/],
      [{ endDatetime: "yesterday" }, "end_datetime", /ISO 8601/],
      [{ endDatetime: "2024-02-30" }, "end_datetime", /ISO 8601/],
      [{ startDatetime: JAN1 + 0.5 }, "start_datetime", /epoch milliseconds/],
      [{ endDatetime: JAN1 - 1 }, "end_datetime", /end_datetime 2023-12-31T23:59:59.999Z is before start_datetime 2024-01-01/],
      [{ intervalType: "minute", endDatetime: JAN1 + 365 * DAY }, "end_datetime", /525601 execution dates, more than the limit of 100000/],
      [{ maxConcurrentRuns: 0 }, "max_concurrent_runs", /max_concurrent_runs must be a positive integer or null/],
      [{ variables: [] as never }, "variables", /variables must be an object/],
    ];
    for (const [input, field, message] of cases) {
      const error = await rejection(create(input));
      expect(error).toBeInstanceOf(KilnError);
      expect({ input, field: (error as KilnError).field }).toEqual({ input, field });
      expect((error as Error).message).toMatch(message);
    }
    expect((await listBackfills(fx.client)).items).toEqual([]);
  });

  test("lists newest first, filtered by pipeline and status, a page at a time", async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await create({ name: `bf${i}`, pipelineUuid: i % 2 ? "q" : "p" }));
    await startBackfill(fx.store, made[0]!.id);
    const seen: number[] = [];
    let after: string | null = null;
    do {
      const page = await listBackfills(fx.client, {}, { limit: 2, after });
      seen.push(...page.items.map((b) => b.id));
      after = page.next;
    } while (after);
    expect(seen).toEqual(made.map((b) => b.id).reverse());
    expect((await listBackfills(fx.client, { pipelineUuid: "q" })).items.map((b) => b.name)).toEqual(["bf3", "bf1"]);
    expect((await listBackfills(fx.client, { status: "running" })).items.map((b) => b.name)).toEqual(["bf0"]);
    expect((await listBackfills(fx.client, { pipelineUuid: "p", status: "initial" })).items.map((b) => b.name)).toEqual(["bf4", "bf2"]);
  });
});

describe("startBackfill", () => {
  test("moves the backfill to running and creates one initial run per date, with backfill partitions", async () => {
    const b = await create({ variables: { region: "eu" } }, 4);
    clock.advance(5000);
    const { backfill, runsCreated } = await startBackfill(fx.store, b.id);
    expect(runsCreated).toBe(4);
    expect(backfill).toMatchObject({ status: "running", startedAt: clock.now() });
    expect(await getBackfill(fx.client, b.id)).toMatchObject({ status: "running", startedAt: clock.now() });
    const runs = await runsOf(b.id);
    expect(runs.map((r) => r.executionPartition)).toEqual([
      `backfill_${b.id}/20240101T000000`,
      `backfill_${b.id}/20240102T000000`,
      `backfill_${b.id}/20240103T000000`,
      `backfill_${b.id}/20240104T000000`,
    ]);
    for (const run of runs) {
      expect(run).toMatchObject({ status: "initial", pipelineScheduleId: null, pipelineUuid: "p", backfillId: b.id, variables: { region: "eu" }, metrics: {} });
    }
    expect(runs.map((r) => r.executionDate)).toEqual([0, 1, 2, 3].map((i) => JAN1 + i * DAY));
    expect(await rejection(startBackfill(fx.store, b.id))).toBeInstanceOf(IllegalTransitionError);
    expect(await runsOf(b.id)).toHaveLength(4);
  });

  test("a backfill of one block marks its runs to run only that block", async () => {
    const b = await create({ blockUuid: "b", intervalType: "hour", endDatetime: JAN1 + 2 * 3_600_000 });
    await startBackfill(fx.store, b.id);
    const runs = await runsOf(b.id);
    expect(runs.map((r) => r.metrics)).toEqual([{ block_uuid: "b" }, { block_uuid: "b" }, { block_uuid: "b" }]);
    expect(runs.map((r) => r.executionPartition.split("/")[1])).toEqual(["20240101T000000", "20240101T010000", "20240101T020000"]);
  });

  test("a big backfill is inserted in chunks, all in the one batch", async () => {
    const b = await create({ intervalType: "minute", endDatetime: JAN1 + 999 * 60_000 });
    expect((await startBackfill(fx.store, b.id)).runsCreated).toBe(1000);
    const rs = await fx.client.execute({ sql: "SELECT count(*) AS n, count(DISTINCT execution_date) AS d FROM pipeline_runs WHERE backfill_id = ?", args: [b.id] });
    expect([Number(rs.rows[0]?.n), Number(rs.rows[0]?.d)]).toEqual([1000, 1000]);
  });

  test("two concurrent starts through one store create the runs once; the loser gets IllegalTransitionError", async () => {
    const b = await create({}, 30);
    const results = await Promise.allSettled([startBackfill(fx.store, b.id), startBackfill(fx.store, b.id)]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(IllegalTransitionError);
    expect(String(lost.reason.message)).toContain(`backfill ${b.id}: cannot move from initial to running`);
    expect(await runsOf(b.id)).toHaveLength(30);
  });

  test("two processes (connections) starting at once create the runs once", async () => {
    const b = await create({}, 30);
    const other = await Store.open(await openDatabase(`file:${join(fx.root, ".kiln/kiln.db")}`), clock);
    try {
      const results = await Promise.allSettled([startBackfill(fx.store, b.id), startBackfill(other, b.id)]);
      expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
      expect((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason).toBeInstanceOf(IllegalTransitionError);
      expect(await runsOf(b.id)).toHaveLength(30);
    } finally {
      other.client.close();
    }
  });

  test("an unknown backfill is a not_found KilnError", async () => {
    const error = await rejection(startBackfill(fx.store, 424242));
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe("not_found");
  });
});

describe("cancelBackfill", () => {
  test("cancels the backfill, its initial and running runs, and their live block runs", async () => {
    const b = await create({}, 4);
    await startBackfill(fx.store, b.id);
    const [r1, r2, r3, r4] = await runsOf(b.id);
    await startWithBlocks(r1!.id);
    await move(r2!.id, "running", "completed");
    clock.advance(1000);
    const heard: number[][] = [];
    fx.store.runsCancelled.listen((event) => heard.push(event.pipelineRunIds));
    const { backfill, cancelledRunIds } = await cancelBackfill(fx.store, b.id);
    // the store's signal names the running run whose live block runs were cancelled (the initial ones have none)
    expect(heard).toEqual([[r1!.id]]);
    expect(backfill).toMatchObject({ status: "cancelled", completedAt: clock.now() });
    expect(await getBackfill(fx.client, b.id)).toMatchObject({ status: "cancelled", completedAt: clock.now() });
    expect(cancelledRunIds).toEqual([r1!.id, r3!.id, r4!.id]);
    const after = await runsOf(b.id);
    expect(after.map((r) => r.status)).toEqual(["cancelled", "completed", "cancelled", "cancelled"]);
    expect(after[0]!.completedAt).toBe(clock.now());
    const blocks = await fx.store.getBlockRuns(r1!.id);
    expect(blocks.map((br) => [br.blockUuid, br.status])).toEqual([
      ["a", "cancelled"],
      ["b", "cancelled"],
    ]);
    expect(blocks[0]!.error).toBe(`backfill ${b.id} was cancelled`);
    // the engine's next write on a cancelled run is refused
    const write = fx.store.batch().transitionPipelineRun(r1!.id, "running", "completed");
    expect(await rejection(fx.store.commit(write))).toBeInstanceOf(IllegalTransitionError);
    expect(await rejection(cancelBackfill(fx.store, b.id))).toBeInstanceOf(IllegalTransitionError);
  });

  test("an initial backfill is cancelled and can no longer start", async () => {
    const b = await create();
    expect((await cancelBackfill(fx.store, b.id)).cancelledRunIds).toEqual([]);
    expect(await rejection(startBackfill(fx.store, b.id))).toBeInstanceOf(IllegalTransitionError);
    expect(await runsOf(b.id)).toEqual([]);
  });
});

describe("retryFailedBackfillRuns", () => {
  test("creates runs only for dates whose latest run failed or was cancelled, and moves a failed backfill back to running", async () => {
    const b = await create({ variables: { v: 1 } }, 4);
    await startBackfill(fx.store, b.id);
    const [r1, r2, r3, r4] = await runsOf(b.id);
    await move(r1!.id, "running", "completed");
    await move(r2!.id, "running", "failed");
    await move(r3!.id, "cancelled");
    await move(r4!.id, "running", "completed");
    expect(await settleBackfills(fx.store, clock.now())).toEqual([{ id: b.id, status: "failed" }]);
    expect(await getBackfill(fx.client, b.id)).toMatchObject({ status: "failed", completedAt: clock.now() });

    expect(await retryFailedBackfillRuns(fx.store, b.id)).toBe(2);
    expect(await getBackfill(fx.client, b.id)).toMatchObject({ status: "running", completedAt: null });
    const runs = await runsOf(b.id);
    const fresh = runs.slice(4);
    expect(fresh.map((r) => [r.executionDate, r.executionPartition, r.status, r.variables])).toEqual([
      [r2!.executionDate, r2!.executionPartition, "initial", { v: 1 }],
      [r3!.executionDate, r3!.executionPartition, "initial", { v: 1 }],
    ]);
    expect((await backfillStatus(fx.store, b.id)).counts).toEqual({ initial: 2, running: 0, completed: 2, failed: 0, cancelled: 0 });

    // running, nothing failed since: nothing to retry
    expect(await retryFailedBackfillRuns(fx.store, b.id)).toBe(0);
    // while running, a date that fails again can be retried without waiting for the others
    await move(fresh[0]!.id, "running", "failed");
    expect(await retryFailedBackfillRuns(fx.store, b.id)).toBe(1);
    expect(await runsOf(b.id)).toHaveLength(7);
  });

  test("concurrent retries of a failed backfill create each run once", async () => {
    const b = await create({}, 3);
    await startBackfill(fx.store, b.id);
    for (const run of await runsOf(b.id)) await move(run.id, "running", "failed");
    await settleBackfills(fx.store, clock.now());
    const created = await Promise.all([retryFailedBackfillRuns(fx.store, b.id), retryFailedBackfillRuns(fx.store, b.id)]);
    expect(created.sort()).toEqual([0, 3]);
    expect(await runsOf(b.id)).toHaveLength(6);
  });

  test("is refused for a backfill that is initial, completed or cancelled", async () => {
    const b = await create({}, 1);
    expect(await rejection(retryFailedBackfillRuns(fx.store, b.id))).toBeInstanceOf(IllegalTransitionError);
    await startBackfill(fx.store, b.id);
    await move((await runsOf(b.id))[0]!.id, "running", "completed");
    await settleBackfills(fx.store, clock.now());
    const error = await rejection(retryFailedBackfillRuns(fx.store, b.id));
    expect(String((error as Error).message)).toBe(`backfill ${b.id}: cannot move from completed to running`);
  });
});

describe("settleBackfills", () => {
  test("completes a backfill whose dates all completed, fails one with a failed date, leaves live ones", async () => {
    const done = await create({ name: "done" }, 2);
    const bad = await create({ name: "bad" }, 2);
    const live = await create({ name: "live" }, 2);
    const idle = await create({ name: "idle" }, 2);
    for (const b of [done, bad, live]) await startBackfill(fx.store, b.id);
    for (const run of await runsOf(done.id)) await move(run.id, "running", "completed");
    const [bad1, bad2] = await runsOf(bad.id);
    await move(bad1!.id, "running", "completed");
    await move(bad2!.id, "running", "failed");
    await move((await runsOf(live.id))[0]!.id, "running", "completed");
    await move((await runsOf(live.id))[1]!.id, "running");

    const now = clock.now() + 123;
    const settled = await settleBackfills(fx.store, now);
    expect(settled.sort((x, y) => x.id - y.id)).toEqual([
      { id: done.id, status: "completed" },
      { id: bad.id, status: "failed" },
    ]);
    expect(await getBackfill(fx.client, done.id)).toMatchObject({ status: "completed", completedAt: now });
    expect(await getBackfill(fx.client, bad.id)).toMatchObject({ status: "failed", completedAt: now });
    expect((await getBackfill(fx.client, live.id))?.status).toBe("running");
    expect((await getBackfill(fx.client, idle.id))?.status).toBe("initial");
    expect(await settleBackfills(fx.store, now)).toEqual([]);
  });

  test("a retried date counts by its latest run: a failure that was retried successfully completes the backfill", async () => {
    const b = await create({}, 2);
    await startBackfill(fx.store, b.id);
    const [r1, r2] = await runsOf(b.id);
    await move(r1!.id, "running", "failed");
    await move(r2!.id, "running", "completed");
    // retried while still running: the backfill never went through failed
    expect(await retryFailedBackfillRuns(fx.store, b.id)).toBe(1);
    expect(await settleBackfills(fx.store, clock.now())).toEqual([]);
    const retry = (await runsOf(b.id))[2]!;
    await move(retry.id, "running", "completed");
    expect(await settleBackfills(fx.store, clock.now())).toEqual([{ id: b.id, status: "completed" }]);
  });

  test("costs one query when there is nothing to settle", async () => {
    let calls = 0;
    const client = fx.store.client;
    const counting = Object.create(client) as typeof client;
    counting.execute = ((...args: Parameters<typeof client.execute>) => (calls++, client.execute(...args))) as typeof client.execute;
    counting.batch = ((...args: Parameters<typeof client.batch>) => (calls++, client.batch(...args))) as typeof client.batch;
    const store = await Store.open(counting, clock);
    calls = 0;
    const b = await create({}, 2);
    await startBackfill(fx.store, b.id);
    expect(await settleBackfills(store, clock.now())).toEqual([]);
    expect(calls).toBe(1);
  });
});

describe("backfillStatus", () => {
  test("counts each date once, by its latest run", async () => {
    const b = await create({}, 3);
    await startBackfill(fx.store, b.id);
    const [r1, r2] = await runsOf(b.id);
    await move(r1!.id, "running", "failed");
    await move(r2!.id, "running");
    await retryFailedBackfillRuns(fx.store, b.id);
    await move((await runsOf(b.id))[3]!.id, "running", "completed");
    const report = await backfillStatus(fx.store, b.id);
    expect(report.totalDates).toBe(3);
    expect(report.counts).toEqual({ initial: 1, running: 1, completed: 1, failed: 0, cancelled: 0 });
    expect(report.backfill.id).toBe(b.id);
  });
});

describe("backfillRunsToStart", () => {
  test("respects max_concurrent_runs (running runs count against it) and creation order", async () => {
    const capped = await create({ name: "capped", maxConcurrentRuns: 2 }, 5);
    const open = await create({ name: "open" }, 3);
    const notStarted = await create({ name: "not-started", maxConcurrentRuns: 1 }, 3);
    const cancelled = await create({ name: "cancelled" }, 2);
    for (const b of [capped, open, cancelled]) await startBackfill(fx.store, b.id);
    await cancelBackfill(fx.store, cancelled.id);
    const c = (await runsOf(capped.id)).map((r) => r.id);
    const o = (await runsOf(open.id)).map((r) => r.id);
    expect(await runsOf(notStarted.id)).toEqual([]);

    expect(await backfillRunsToStart(fx.store, 100)).toEqual([c[0]!, c[1]!, ...o]);
    expect(await backfillRunsToStart(fx.store, 3)).toEqual([c[0]!, c[1]!, o[0]!]);
    expect(await backfillRunsToStart(fx.store, 0)).toEqual([]);

    await move(c[0]!, "running");
    expect(await backfillRunsToStart(fx.store, 100)).toEqual([c[1]!, ...o]);
    await move(c[1]!, "running");
    expect(await backfillRunsToStart(fx.store, 100)).toEqual(o);
    await move(c[0]!, "completed");
    expect(await backfillRunsToStart(fx.store, 100)).toEqual([c[2]!, ...o]);
  });

  test("retry runs of a date queue behind the backfill's first runs", async () => {
    const b = await create({}, 3);
    await startBackfill(fx.store, b.id);
    const [r1, r2, r3] = await runsOf(b.id);
    await move(r1!.id, "running", "failed");
    await retryFailedBackfillRuns(fx.store, b.id);
    const retry = (await runsOf(b.id))[3]!;
    expect(await backfillRunsToStart(fx.store, 10)).toEqual([r2!.id, r3!.id, retry.id]);
  });
});
