/** Pipeline runs and block runs over HTTP: list filters and pages, detail, cancel and retry_blocks. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";
import { RUNS_PROJECT } from "./runs-project.ts";

type Json = Record<string, unknown>;

let s: ServerFixture;
const triggers = new Map<string, number>();

beforeAll(async () => {
  s = await serverFixture(RUNS_PROJECT);
  for (const pipeline of ["etl", "flaky", "slow"]) {
    const created = await s.call("POST", `/api/pipelines/${pipeline}/pipeline_schedules`, { body: { pipeline_schedule: { name: "api", schedule_type: "api", status: "active" } } });
    triggers.set(pipeline, (created.json.pipeline_schedule as { id: number }).id);
  }
});
afterAll(() => s.close());

async function newRun(pipeline: string): Promise<number> {
  const created = await s.call("POST", `/api/pipeline_schedules/${triggers.get(pipeline)}/pipeline_runs`, { role: "editor", body: { pipeline_run: { variables: { dir: s.root } } } });
  expect(created.status).toBe(201);
  return (created.json.pipeline_run as { id: number }).id;
}

async function detail(id: number): Promise<Json & { status: string; block_runs: Array<Json & { block_uuid: string; status: string }> }> {
  const got = await s.call("GET", `/api/pipeline_runs/${id}`, { role: "viewer" });
  expect(got.status).toBe(200);
  return got.json.pipeline_run as Json & { status: string; block_runs: Array<Json & { block_uuid: string; status: string }> };
}

async function untilStatus(id: number, status: string): Promise<void> {
  await until(async () => (await detail(id)).status === status, `pipeline run ${id} to be ${status}`);
}

function blockStatuses(run: { block_runs: Array<{ block_uuid: string; status: string }> }): Record<string, string> {
  return Object.fromEntries(run.block_runs.map((b) => [b.block_uuid, b.status]));
}

const countOf = (run: number, block: string) => {
  const path = join(s.root, `${run}-${block}.count`);
  return existsSync(path) ? readFileSync(path, "utf8").length : 0;
};

async function snapshot(): Promise<unknown> {
  const runs = await s.client.execute("SELECT id, status, owner, updated_at FROM pipeline_runs ORDER BY id");
  const blocks = await s.client.execute("SELECT id, status, attempt, updated_at FROM block_runs ORDER BY id");
  return [runs.rows.map((r) => ({ ...r })), blocks.rows.map((r) => ({ ...r }))];
}

describe("GET /api/pipeline_runs", () => {
  test("filters by pipeline, status, trigger and an inclusive execution-date range; keyset pages without duplicates", async () => {
    // runs of a pipeline the project lacks are never started: they stay initial, dates as given
    const day = (d: number) => Date.UTC(2024, 0, d);
    const ghost: number[] = [];
    for (let d = 1; d <= 5; d++) {
      const run = await s.store.createPipelineRun({ pipelineUuid: "ghost", executionDate: day(d) });
      ghost.push(run!.id);
    }

    const seen: number[] = [];
    let after: string | null = null;
    const sizes: number[] = [];
    for (let page = 0; page < 5; page++) {
      const listed = await s.call("GET", `/api/pipeline_runs?pipeline_uuid=ghost&_limit=2${after ? `&_after=${after}` : ""}`, { role: "viewer" });
      expect(listed.status).toBe(200);
      const items = listed.json.pipeline_runs as Array<{ id: number; pipeline_uuid: string }>;
      const meta = listed.json.metadata as { count: number; next: boolean; after: string | null };
      // Mage's metadata: count is the total matching, next whether more follow; after is kiln's cursor
      expect(meta.count).toBe(5);
      expect(meta.next).toBe(meta.after !== null);
      sizes.push(items.length);
      seen.push(...items.map((r) => r.id));
      after = meta.after;
      if (after === null) break;
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen).toEqual([...ghost].reverse());

    const ids = async (query: string) => {
      const listed = await s.call("GET", `/api/pipeline_runs?${query}`, { role: "viewer" });
      expect([query, listed.status]).toEqual([query, 200]);
      return (listed.json.pipeline_runs as Array<{ id: number }>).map((r) => r.id);
    };
    const middle = [ghost[3]!, ghost[2]!, ghost[1]!];
    expect(await ids("pipeline_uuid=ghost&execution_date_from=2024-01-02&execution_date_to=2024-01-04T00:00:00Z")).toEqual(middle);
    expect(await ids(`pipeline_uuid=ghost&execution_date_from=${day(2)}&execution_date_to=${day(4)}`)).toEqual(middle);
    expect(await ids("pipeline_uuid=ghost&execution_date_from=2024-01-04 00:00:00")).toEqual([ghost[4]!, ghost[3]!]);
    expect(await ids("pipeline_uuid=ghost&status=initial")).toEqual([...ghost].reverse());
    expect(await ids("pipeline_uuid=ghost&status=completed")).toEqual([]);

    const etl1 = await newRun("etl");
    const etl2 = await newRun("etl");
    await untilStatus(etl1, "completed");
    await untilStatus(etl2, "completed");
    expect(await ids(`pipeline_schedule_id=${triggers.get("etl")}`)).toEqual([etl2, etl1]);
    expect(await ids(`pipeline_schedule_id=${triggers.get("etl")}&status=completed&_limit=1`)).toEqual([etl2]);
    expect(await ids("pipeline_uuid=etl&status=failed")).toEqual([]);
  });
});

describe("one run and its block runs", () => {
  test("GET a run with its block_runs; block runs of a run, paged; a block run by id; 404s", async () => {
    const id = await newRun("etl");
    await untilStatus(id, "completed");
    const run = await detail(id);
    expect(run.id).toBe(id);
    expect(run.pipeline_uuid).toBe("etl");
    expect(run.pipeline_schedule_id).toBe(triggers.get("etl"));
    expect(blockStatuses(run)).toEqual({ load: "completed", shape: "completed" });
    expect(run.block_runs_count).toBe(2);
    expect(run.completed_block_runs_count).toBe(2);
    expect(typeof run.completed_at).toBe("string");

    const all = await s.call("GET", `/api/pipeline_runs/${id}/block_runs`, { role: "viewer" });
    expect(all.status).toBe(200);
    expect((all.json.block_runs as Array<{ block_uuid: string }>).map((b) => b.block_uuid).sort()).toEqual(["load", "shape"]);
    expect(all.json.metadata).toEqual({ count: 2, next: false, after: null });

    const first = await s.call("GET", `/api/pipeline_runs/${id}/block_runs?_limit=1`, { role: "viewer" });
    const next = (first.json.metadata as { after: string | null }).after;
    expect(next).not.toBeNull();
    const second = await s.call("GET", `/api/pipeline_runs/${id}/block_runs?_limit=1&_after=${next}`, { role: "viewer" });
    const pagedIds = [...(first.json.block_runs as Array<{ id: number }>), ...(second.json.block_runs as Array<{ id: number }>)].map((b) => b.id);
    expect(new Set(pagedIds).size).toBe(2);
    expect((second.json.metadata as { after: string | null }).after).toBeNull();

    const mage = await s.call("GET", `/api/block_runs?pipeline_run_id=${id}`, { role: "viewer" });
    expect(mage.status).toBe(200);
    expect((mage.json.block_runs as unknown[]).length).toBe(2);

    const blockRunId = Number(run.block_runs[0]?.id);
    const one = await s.call("GET", `/api/block_runs/${blockRunId}`, { role: "viewer" });
    expect(one.status).toBe(200);
    const blockRun = one.json.block_run as Json;
    expect(blockRun.id).toBe(blockRunId);
    expect(blockRun.pipeline_run_id).toBe(id);
    expect(blockRun.status).toBe("completed");

    expect((await s.call("GET", "/api/pipeline_runs/999999")).status).toBe(404);
    expect((await s.call("GET", "/api/pipeline_runs/999999/block_runs")).status).toBe(404);
    expect((await s.call("GET", "/api/block_runs/999999")).status).toBe(404);
    expect((await s.call("GET", "/api/block_runs")).status).toBe(400);
  });
});

describe("cancel", () => {
  test("a running run executed by this server's engine: cancelled with its block run, the block is told to stop; a second cancel is 409", async () => {
    rmSync(join(s.root, "release"), { force: true });
    const id = await newRun("slow");
    await until(async () => blockStatuses(await detail(id)).wait === "running", "the wait block to run");
    const cancelled = await s.call("PUT", `/api/pipeline_runs/${id}`, { role: "editor", body: { pipeline_run: { status: "cancelled" } } });
    expect(cancelled.status).toBe(200);
    const run = cancelled.json.pipeline_run as Json & { status: string; block_runs: Array<{ block_uuid: string; status: string }>; metrics: Json };
    expect(run.status).toBe("cancelled");
    expect(blockStatuses(run)).toEqual({ wait: "cancelled" });
    expect(String(run.metrics.error)).toContain("cancelled through the API by test-editor");
    // stopped by the engine itself, not left for its watcher to notice
    expect(s.engine.activeRunIds()).not.toContain(id);
    await until(() => existsSync(join(s.root, `${id}-aborted`)), "the block to see the cancel");

    const again = await s.call("PUT", `/api/pipeline_runs/${id}`, { role: "editor", body: { pipeline_run: { status: "cancelled" } } });
    expect(again.status).toBe(409);
    expect((again.json.error as { code: string }).code).toBe("conflict");
  });

  test("an initial run no engine executes: one guarded write", async () => {
    const run = await s.store.createPipelineRun({ pipelineUuid: "ghost", executionDate: Date.UTC(2023, 5, 1) });
    const cancelled = await s.call("PUT", `/api/pipeline_runs/${run!.id}`, { body: { pipeline_run: { status: "cancelled" } } });
    expect(cancelled.status).toBe(200);
    expect((cancelled.json.pipeline_run as { status: string }).status).toBe("cancelled");
    expect((await s.store.getPipelineRun(run!.id))?.status).toBe("cancelled");
  });
});

describe("cancel, the run executed elsewhere", () => {
  test("a guarded write that the executing engine's watcher notices: the block is told to stop", async () => {
    // this server has no engine of its own: the scheduler's engine plays another process
    const other = await serverFixture(RUNS_PROJECT, { engine: undefined });
    try {
      const schedule = await other.call("POST", "/api/pipelines/slow/pipeline_schedules", { body: { pipeline_schedule: { name: "api", schedule_type: "api", status: "active" } } });
      const created = await other.call("POST", `/api/pipeline_schedules/${(schedule.json.pipeline_schedule as { id: number }).id}/pipeline_runs`, {
        body: { pipeline_run: { variables: { dir: other.root } } },
      });
      const id = (created.json.pipeline_run as { id: number }).id;
      const blockStatus = async () => ((await other.call("GET", `/api/pipeline_runs/${id}`)).json.pipeline_run as { block_runs: Array<{ status: string }> }).block_runs[0]?.status;
      await until(async () => (await blockStatus()) === "running", "the wait block to run");
      const cancelled = await other.call("PUT", `/api/pipeline_runs/${id}`, { body: { pipeline_run: { status: "cancelled" } } });
      expect(cancelled.status).toBe(200);
      expect((cancelled.json.pipeline_run as { status: string }).status).toBe("cancelled");
      expect(await blockStatus()).toBe("cancelled");
      await until(() => existsSync(join(other.root, `${id}-aborted`)), "the block to see the cancel");
      await until(() => other.engine.activeRunIds().length === 0, "the engine to let go of the run");
      expect((await other.store.getPipelineRun(id))?.status).toBe("cancelled");
    } finally {
      await other.close();
    }
  });
});

describe("retry_blocks", () => {
  test("a failed run: only the failed and upstream_failed blocks run again, and it completes once the cause is gone", async () => {
    rmSync(join(s.root, "ok"), { force: true });
    const id = await newRun("flaky");
    await untilStatus(id, "failed");
    expect(blockStatuses(await detail(id))).toEqual({ a: "completed", b: "failed", c: "upstream_failed" });

    writeFileSync(join(s.root, "ok"), "");
    const retried = await s.call("PUT", `/api/pipeline_runs/${id}`, { role: "editor", body: { pipeline_run: { pipeline_run_action: "retry_blocks" } } });
    expect(retried.status).toBe(200);
    const run = retried.json.pipeline_run as Json & { block_runs: Array<{ block_uuid: string; status: string }> };
    expect(run.completed_at).toBeNull();
    expect(["running", "completed"]).toContain(String(run.status));
    await untilStatus(id, "completed");
    const done = await detail(id);
    expect(blockStatuses(done)).toEqual({ a: "completed", b: "completed", c: "completed" });
    expect(done.block_runs.every((b) => b.attempt === 1 && b.error === null)).toBe(true);
    expect([countOf(id, "a"), countOf(id, "b"), countOf(id, "c")]).toEqual([1, 2, 1]);

    // a completed run is not retried
    const completed = await s.call("PUT", `/api/pipeline_runs/${id}`, { body: { pipeline_run: { pipeline_run_action: "retry_blocks" } } });
    expect(completed.status).toBe(409);
  });

  test("from_block_uuid re-runs that block and everything downstream of it, completed ones included", async () => {
    rmSync(join(s.root, "ok"), { force: true });
    const id = await newRun("flaky");
    await untilStatus(id, "failed");
    writeFileSync(join(s.root, "ok"), "");
    const retried = await s.call("PUT", `/api/pipeline_runs/${id}`, { body: { pipeline_run: { pipeline_run_action: "retry_blocks", from_block_uuid: "a" } } });
    expect(retried.status).toBe(200);
    await untilStatus(id, "completed");
    expect([countOf(id, "a"), countOf(id, "b"), countOf(id, "c")]).toEqual([2, 2, 1]);
  });

  test("a cancelled run runs again", async () => {
    rmSync(join(s.root, "release"), { force: true });
    const id = await newRun("slow");
    await until(async () => blockStatuses(await detail(id)).wait === "running", "the wait block to run");
    expect((await s.call("PUT", `/api/pipeline_runs/${id}`, { body: { pipeline_run: { status: "cancelled" } } })).status).toBe(200);
    writeFileSync(join(s.root, "release"), "");
    const retried = await s.call("PUT", `/api/pipeline_runs/${id}`, { body: { pipeline_run: { pipeline_run_action: "retry_blocks" } } });
    expect(retried.status).toBe(200);
    await untilStatus(id, "completed");
    expect(blockStatuses(await detail(id))).toEqual({ wait: "completed" });
  });

  test("a run cancelled before it started gets its block runs and completes", async () => {
    rmSync(join(s.root, "release"), { force: true });
    const created = await s.call("POST", "/api/backfills", {
      body: { backfill: { name: "three", pipeline_uuid: "slow", start_datetime: "2024-01-01", end_datetime: "2024-01-03", interval_type: "day", max_concurrent_runs: 1, variables: { dir: s.root } } },
    });
    expect(created.status).toBe(201);
    const backfillId = (created.json.backfill as { id: number }).id;
    expect((await s.call("POST", `/api/backfills/${backfillId}/start`)).status).toBe(200);
    const runsOf = async () => (await s.call("GET", `/api/pipeline_runs?backfill_id=${backfillId}`)).json.pipeline_runs as Array<{ id: number; status: string }>;
    await until(async () => (await runsOf()).some((r) => r.status === "running"), "the first backfill run to start");
    expect((await s.call("POST", `/api/backfills/${backfillId}/cancel`)).status).toBe(200);
    const runs = await runsOf();
    expect(runs.map((r) => r.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
    // max_concurrent_runs 1: the newest date never started, so it has no block runs
    const last = runs[0]!.id;
    expect((await detail(last)).block_runs).toEqual([]);

    writeFileSync(join(s.root, "release"), "");
    const retried = await s.call("PUT", `/api/pipeline_runs/${last}`, { body: { pipeline_run: { pipeline_run_action: "retry_blocks" } } });
    expect(retried.status).toBe(200);
    await untilStatus(last, "completed");
    expect(blockStatuses(await detail(last))).toEqual({ wait: "completed" });
  });
});

describe("bad input", () => {
  test("4xx naming the field, and nothing written", async () => {
    rmSync(join(s.root, "ok"), { force: true });
    const failed = await newRun("flaky");
    await untilStatus(failed, "failed");
    const completed = await newRun("etl");
    await untilStatus(completed, "completed");
    // wait for every engine to let go of its runs, so the snapshot only changes if a request writes
    await until(() => s.engine.activeRunIds().length === 0, "the engine to be idle");
    const before = await snapshot();

    const cases: Array<[string, string, unknown, number, string]> = [
      ["GET", "/api/pipeline_runs?bogus=1", undefined, 400, "query.bogus"],
      ["GET", "/api/pipeline_runs?status=weird", undefined, 400, "query.status"],
      ["GET", "/api/pipeline_runs?_limit=0", undefined, 400, "query._limit"],
      ["GET", "/api/pipeline_runs?_limit=1001", undefined, 400, "query._limit"],
      ["GET", "/api/pipeline_runs?_after=abc", undefined, 400, "query._after"],
      ["GET", "/api/pipeline_runs?pipeline_schedule_id=x", undefined, 400, "query.pipeline_schedule_id"],
      ["GET", "/api/pipeline_runs?backfill_id=-1", undefined, 400, "query.backfill_id"],
      ["GET", "/api/pipeline_runs?execution_date_from=yesterday", undefined, 400, "query.execution_date_from"],
      ["GET", "/api/pipeline_runs?execution_date_from=2024-02-01&execution_date_to=2024-01-01", undefined, 422, "query.execution_date_to"],
      ["GET", "/api/pipeline_runs/abc", undefined, 400, "path.id"],
      ["GET", "/api/pipeline_runs/1/block_runs?_limit=x", undefined, 400, "query._limit"],
      ["GET", "/api/block_runs/0", undefined, 400, "path.id"],
      ["PUT", `/api/pipeline_runs/${failed}`, {}, 400, "pipeline_run"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: {} }, 400, "pipeline_run"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: { status: "running" } }, 400, "pipeline_run.status"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: { status: "cancelled", pipeline_run_action: "retry_blocks" } }, 400, "pipeline_run"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: { pipeline_run_action: "rerun" } }, 400, "pipeline_run.pipeline_run_action"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: { status: "cancelled", from_block_uuid: "a" } }, 400, "pipeline_run.from_block_uuid"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: { pipeline_run_action: "retry_blocks", from_block_uuid: "nope" } }, 422, "pipeline_run.from_block_uuid"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: { pipeline_run_action: "retry_blocks", bogus: 1 } }, 400, "pipeline_run.bogus"],
      ["PUT", `/api/pipeline_runs/${failed}`, { pipeline_run: { status: "cancelled" } }, 409, ""],
      ["PUT", `/api/pipeline_runs/${completed}`, { pipeline_run: { pipeline_run_action: "retry_blocks" } }, 409, ""],
      ["PUT", `/api/pipeline_runs/${completed}`, { pipeline_run: { status: "cancelled" } }, 409, ""],
      ["PUT", "/api/pipeline_runs/999999", { pipeline_run: { status: "cancelled" } }, 404, ""],
    ];
    for (const [method, path, body, status, field] of cases) {
      const answer = await s.call(method, path, body === undefined ? {} : { body });
      expect([method, path, body, answer.status]).toEqual([method, path, body, status]);
      const error = answer.json.error as { code: string; message: string; details: Array<{ field: string }> };
      expect(error.message.length).toBeGreaterThan(0);
      if (field) expect([path, error.details.map((d) => d.field)]).toEqual([path, expect.arrayContaining([field])]);
    }
    const raw = await s.call("PUT", `/api/pipeline_runs/${failed}`, { rawBody: "{not json" });
    expect(raw.status).toBe(400);
    const viewer = await s.call("PUT", `/api/pipeline_runs/${failed}`, { role: "viewer", body: { pipeline_run: { pipeline_run_action: "retry_blocks" } } });
    expect(viewer.status).toBe(403);
    const anonymous = await s.call("GET", "/api/pipeline_runs", { role: null });
    expect(anonymous.status).toBe(401);

    expect(await snapshot()).toEqual(before);
  });
});
