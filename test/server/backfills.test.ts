/** Backfills over HTTP: CRUD, start, cancel, retry failed runs, run counts, bad input. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";
import { RUNS_PROJECT } from "./runs-project.ts";

type Json = Record<string, unknown>;
type BackfillJson = Json & { id: number; status: string; run_status_counts: Record<string, number>; total_run_count: number };

let s: ServerFixture;
beforeAll(async () => {
  s = await serverFixture(RUNS_PROJECT);
});
afterAll(() => s.close());

async function create(fields: Json, role: "editor" | "admin" = "editor"): Promise<BackfillJson> {
  const created = await s.call("POST", "/api/backfills", { role, body: { backfill: fields } });
  expect([created.status, created.json.error]).toEqual([201, undefined]);
  return created.json.backfill as BackfillJson;
}

async function get(id: number): Promise<BackfillJson> {
  const got = await s.call("GET", `/api/backfills/${id}`, { role: "viewer" });
  expect(got.status).toBe(200);
  return got.json.backfill as BackfillJson;
}

async function untilBackfill(id: number, status: string): Promise<BackfillJson> {
  await until(async () => (await get(id)).status === status, `backfill ${id} to be ${status}`);
  return get(id);
}

async function runsOf(id: number): Promise<Array<{ id: number; status: string; backfill_id: number | null; execution_date: string }>> {
  const listed = await s.call("GET", `/api/pipeline_runs?backfill_id=${id}&_limit=1000`, { role: "viewer" });
  expect(listed.status).toBe(200);
  return listed.json.pipeline_runs as Array<{ id: number; status: string; backfill_id: number | null; execution_date: string }>;
}

const days = { start_datetime: "2024-01-01", end_datetime: "2024-01-03", interval_type: "day" };

describe("backfills", () => {
  test("create, update while initial, start: one run per date, counts per status, completed; then 409 on update", async () => {
    const backfill = await create({ name: "january", pipeline_uuid: "etl", ...days, variables: { dir: s.root } });
    expect(backfill.status).toBe("initial");
    expect(backfill.pipeline_uuid).toBe("etl");
    expect(backfill.start_datetime).toBe("2024-01-01T00:00:00.000Z");
    expect(backfill.end_datetime).toBe("2024-01-03T00:00:00.000Z");
    expect(backfill.interval_units).toBe(1);
    expect(backfill.total_run_count).toBe(3);
    expect(backfill.run_status_counts).toEqual({ initial: 0, running: 0, completed: 0, failed: 0, cancelled: 0 });

    const updated = await s.call("PUT", `/api/backfills/${backfill.id}`, { body: { backfill: { name: "jan", variables: { dir: s.root, x: 1 }, max_concurrent_runs: 2 } } });
    expect(updated.status).toBe(200);
    expect(updated.json.backfill).toMatchObject({ id: backfill.id, name: "jan", variables: { dir: s.root, x: 1 }, max_concurrent_runs: 2, status: "initial" });

    const started = await s.call("POST", `/api/backfills/${backfill.id}/start`);
    expect(started.status).toBe(200);
    const afterStart = started.json.backfill as BackfillJson;
    expect(afterStart.status).toBe("running");
    expect(Object.values(afterStart.run_status_counts).reduce((a, b) => a + b, 0)).toBe(3);

    const done = await untilBackfill(backfill.id, "completed");
    expect(done.run_status_counts).toEqual({ initial: 0, running: 0, completed: 3, failed: 0, cancelled: 0 });
    const runs = await runsOf(backfill.id);
    expect(runs.map((r) => r.execution_date).sort()).toEqual(["2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.000Z", "2024-01-03T00:00:00.000Z"]);
    expect(runs.every((r) => r.status === "completed" && r.backfill_id === backfill.id)).toBe(true);

    const late = await s.call("PUT", `/api/backfills/${backfill.id}`, { body: { backfill: { name: "too late" } } });
    expect(late.status).toBe(409);
    expect((await get(backfill.id)).name).toBe("jan");
    const again = await s.call("POST", `/api/backfills/${backfill.id}/start`);
    expect(again.status).toBe(409);
    expect((await runsOf(backfill.id)).length).toBe(3);
  });

  test("cancel: the backfill and its live runs, the running block is stopped; retry of a cancelled backfill is 409", async () => {
    rmSync(join(s.root, "release"), { force: true });
    const backfill = await create({ name: "slow", pipeline_uuid: "slow", ...days, max_concurrent_runs: 1, variables: { dir: s.root } });
    expect((await s.call("POST", `/api/backfills/${backfill.id}/start`)).status).toBe(200);
    await until(async () => (await runsOf(backfill.id)).some((r) => r.status === "running"), "a backfill run to start");
    const running = (await runsOf(backfill.id)).find((r) => r.status === "running")!;
    await until(async () => {
      const run = (await s.call("GET", `/api/pipeline_runs/${running.id}`)).json.pipeline_run as { block_runs: Array<{ status: string }> };
      return run.block_runs[0]?.status === "running";
    }, "the wait block to run");

    const cancelled = await s.call("POST", `/api/backfills/${backfill.id}/cancel`, { role: "editor" });
    expect(cancelled.status).toBe(200);
    const view = cancelled.json.backfill as BackfillJson;
    expect(view.status).toBe("cancelled");
    expect(view.run_status_counts).toEqual({ initial: 0, running: 0, completed: 0, failed: 0, cancelled: 3 });
    // the engine executing the running one notices and tells its block to stop
    await until(() => existsSync(join(s.root, `${running.id}-aborted`)), "the running block to see the cancel");
    const blockRuns = (await s.call("GET", `/api/pipeline_runs/${running.id}/block_runs`)).json.block_runs as Array<{ status: string }>;
    expect(blockRuns.map((b) => b.status)).toEqual(["cancelled"]);

    expect((await s.call("POST", `/api/backfills/${backfill.id}/cancel`)).status).toBe(409);
    expect((await s.call("POST", `/api/backfills/${backfill.id}/retry`)).status).toBe(409);
  });

  test("retry: the dates whose latest run failed run again; the counts follow the latest run of each date", async () => {
    rmSync(join(s.root, "ok"), { force: true });
    const backfill = await create({ name: "flaky", pipeline_uuid: "flaky", start_datetime: "2024-02-01T00:00:00Z", end_datetime: "2024-02-02T00:00:00Z", interval_type: "day", variables: { dir: s.root } });
    await s.call("POST", `/api/backfills/${backfill.id}/start`);
    const failed = await untilBackfill(backfill.id, "failed");
    expect(failed.run_status_counts).toEqual({ initial: 0, running: 0, completed: 0, failed: 2, cancelled: 0 });

    writeFileSync(join(s.root, "ok"), "");
    const retried = await s.call("POST", `/api/backfills/${backfill.id}/retry`, { role: "editor" });
    expect(retried.status).toBe(200);
    expect((retried.json.backfill as BackfillJson).status).toBe("running");
    const done = await untilBackfill(backfill.id, "completed");
    expect(done.run_status_counts).toEqual({ initial: 0, running: 0, completed: 2, failed: 0, cancelled: 0 });
    const runs = await runsOf(backfill.id);
    expect(runs.map((r) => r.status).sort()).toEqual(["completed", "completed", "failed", "failed"]);
  });

  test("retry_blocks of a failed backfill's run takes the backfill back to running; it is settled again when the run ends", async () => {
    rmSync(join(s.root, "ok"), { force: true });
    const backfill = await create({ name: "flaky blocks", pipeline_uuid: "flaky", start_datetime: "2024-05-01", end_datetime: "2024-05-02", interval_type: "day", variables: { dir: s.root } });
    await s.call("POST", `/api/backfills/${backfill.id}/start`);
    await untilBackfill(backfill.id, "failed");
    writeFileSync(join(s.root, "ok"), "");
    const [second, first] = await runsOf(backfill.id);

    const retryOne = await s.call("PUT", `/api/pipeline_runs/${first!.id}`, { body: { pipeline_run: { pipeline_run_action: "retry_blocks" } } });
    expect(retryOne.status).toBe(200);
    // one date completed, the other still failed: failed again
    await until(async () => (await get(backfill.id)).run_status_counts.completed === 1, "the retried date to complete");
    const half = await untilBackfill(backfill.id, "failed");
    expect(half.run_status_counts).toMatchObject({ completed: 1, failed: 1 });

    await s.call("PUT", `/api/pipeline_runs/${second!.id}`, { body: { pipeline_run: { pipeline_run_action: "retry_blocks" } } });
    const done = await untilBackfill(backfill.id, "completed");
    expect(done.run_status_counts).toMatchObject({ completed: 2, failed: 0 });
    expect((await runsOf(backfill.id)).length).toBe(2);
  });

  test("list: filters by pipeline and status, keyset pages; Mage's create path", async () => {
    const mage = await s.call("POST", "/api/pipelines/etl/backfills", { body: { backfill: { name: "mage", start_datetime: "2024-03-01 00:00:00", end_datetime: "2024-03-01 12:00:00", interval_type: "hour", interval_units: 6 } } });
    expect(mage.status).toBe(201);
    const mageBackfill = mage.json.backfill as BackfillJson;
    expect(mageBackfill.pipeline_uuid).toBe("etl");
    expect(mageBackfill.total_run_count).toBe(3);
    expect(mageBackfill.start_datetime).toBe("2024-03-01T00:00:00.000Z");

    const initial = await s.call("GET", "/api/backfills?status=initial", { role: "viewer" });
    expect((initial.json.backfills as BackfillJson[]).map((b) => b.id)).toEqual([mageBackfill.id]);
    const etl = await s.call("GET", "/api/backfills?pipeline_uuid=etl", { role: "viewer" });
    expect((etl.json.backfills as BackfillJson[]).every((b) => b.pipeline_uuid === "etl")).toBe(true);
    expect((etl.json.backfills as BackfillJson[]).length).toBe(2);

    const seen: number[] = [];
    const sizes: number[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const listed = await s.call("GET", `/api/backfills?_limit=2${after ? `&_after=${after}` : ""}`, { role: "viewer" });
      expect(listed.status).toBe(200);
      const items = listed.json.backfills as BackfillJson[];
      sizes.push(items.length);
      seen.push(...items.map((b) => b.id));
      after = (listed.json.metadata as { after: string | null }).after;
      if (after === null) break;
    }
    const all = (await s.client.execute("SELECT id FROM backfills ORDER BY id DESC")).rows.map((r) => Number(r.id));
    expect(seen).toEqual(all);
    expect(sizes).toEqual(all.map((_, i) => (i % 2 === 0 ? Math.min(2, all.length - i) : 0)).filter((n) => n > 0));
  });

  test("delete: 409 while running; otherwise gone, and its runs stay with no backfill", async () => {
    rmSync(join(s.root, "release"), { force: true });
    const backfill = await create({ name: "to delete", pipeline_uuid: "slow", start_datetime: "2024-04-01", end_datetime: "2024-04-01", interval_type: "day", variables: { dir: s.root } });
    await s.call("POST", `/api/backfills/${backfill.id}/start`);
    const busy = await s.call("DELETE", `/api/backfills/${backfill.id}`);
    expect(busy.status).toBe(409);
    expect((busy.json.error as { message: string }).message).toContain("running");
    writeFileSync(join(s.root, "release"), "");
    await untilBackfill(backfill.id, "completed");
    const [run] = await runsOf(backfill.id);

    const deleted = await s.call("DELETE", `/api/backfills/${backfill.id}`, { role: "editor" });
    expect(deleted.status).toBe(200);
    expect((deleted.json.backfill as BackfillJson).id).toBe(backfill.id);
    expect((await s.call("GET", `/api/backfills/${backfill.id}`)).status).toBe(404);
    const kept = (await s.call("GET", `/api/pipeline_runs/${run!.id}`)).json.pipeline_run as { status: string; backfill_id: number | null };
    expect(kept).toMatchObject({ status: "completed", backfill_id: null });
    expect((await s.call("DELETE", `/api/backfills/${backfill.id}`)).status).toBe(404);
  });

  test("bad input: 4xx naming the field, and nothing written", async () => {
    const initial = await create({ name: "stays", pipeline_uuid: "etl", ...days });
    const count = async () => {
      const rs = await s.client.execute("SELECT (SELECT count(*) FROM backfills) AS b, (SELECT count(*) FROM pipeline_runs) AS r, (SELECT group_concat(id || status || name || updated_at) FROM backfills) AS sig");
      return { ...rs.rows[0] };
    };
    await until(() => s.engine.activeRunIds().length === 0, "the engine to be idle");
    const before = await count();
    const good = { name: "x", pipeline_uuid: "etl", ...days };
    const cases: Array<[string, string, unknown, number, string]> = [
      ["POST", "/api/backfills", {}, 400, "backfill"],
      ["POST", "/api/backfills", { backfill: { ...good, name: "" } }, 400, "backfill.name"],
      ["POST", "/api/backfills", { backfill: { ...good, start_datetime: undefined } }, 400, "backfill.start_datetime"],
      ["POST", "/api/backfills", { backfill: { ...good, start_datetime: true } }, 400, "backfill.start_datetime"],
      ["POST", "/api/backfills", { backfill: { ...good, interval_type: "fortnight" } }, 400, "backfill.interval_type"],
      ["POST", "/api/backfills", { backfill: { ...good, interval_units: 0 } }, 400, "backfill.interval_units"],
      ["POST", "/api/backfills", { backfill: { ...good, max_concurrent_runs: 1.5 } }, 400, "backfill.max_concurrent_runs"],
      ["POST", "/api/backfills", { backfill: { ...good, variables: [1] } }, 400, "backfill.variables"],
      ["POST", "/api/backfills", { backfill: { ...good, settings: {} } }, 400, "backfill.settings"],
      ["POST", "/api/backfills", { backfill: { ...good, pipeline_uuid: "nope" } }, 422, "backfill.pipeline_uuid"],
      ["POST", "/api/backfills", { backfill: { ...good, block_uuid: "nope" } }, 422, "backfill.block_uuid"],
      ["POST", "/api/backfills", { backfill: { ...good, start_datetime: "2024-01-05" } }, 422, "backfill.end_datetime"],
      ["POST", "/api/backfills", { backfill: { ...good, start_datetime: "2024-01-01T00:00:00" } }, 422, "backfill.start_datetime"],
      ["POST", "/api/backfills", { backfill: { ...good, start_datetime: "2024-02-30" } }, 422, "backfill.start_datetime"],
      ["POST", "/api/backfills", { backfill: { ...good, pipeline_schedule_id: 999999 } }, 422, "backfill.pipeline_schedule_id"],
      ["POST", "/api/backfills", { backfill: { ...good, end_datetime: "2100-01-01", interval_type: "minute" } }, 422, "backfill.end_datetime"],
      ["POST", "/api/pipelines/nope/backfills", { backfill: { ...good, pipeline_uuid: undefined } }, 404, ""],
      ["POST", "/api/pipelines/etl/backfills", { backfill: { ...good, pipeline_uuid: "slow" } }, 422, "backfill.pipeline_uuid"],
      ["GET", "/api/backfills?status=done", undefined, 400, "query.status"],
      ["GET", "/api/backfills?bogus=1", undefined, 400, "query.bogus"],
      ["GET", "/api/backfills?_limit=5000", undefined, 400, "query._limit"],
      ["GET", "/api/backfills/abc", undefined, 400, "path.id"],
      ["GET", "/api/backfills/999999", undefined, 404, ""],
      ["PUT", `/api/backfills/${initial.id}`, { backfill: { max_concurrent_runs: 0 } }, 400, "backfill.max_concurrent_runs"],
      ["PUT", `/api/backfills/${initial.id}`, { backfill: { interval_type: "hour" } }, 400, "backfill.interval_type"],
      ["PUT", `/api/backfills/${initial.id}`, { backfill: { name: "   " } }, 400, "backfill.name"],
      ["PUT", "/api/backfills/999999", { backfill: { name: "x" } }, 404, ""],
      ["POST", `/api/backfills/${initial.id}/start`, { now: true }, 400, "now"],
      ["POST", `/api/backfills/${initial.id}/retry`, undefined, 409, ""],
      ["POST", `/api/backfills/${initial.id}/cancel`, { x: 1 }, 400, "x"],
      ["POST", "/api/backfills/999999/start", undefined, 404, ""],
      ["POST", "/api/backfills/999999/cancel", undefined, 404, ""],
      ["DELETE", "/api/backfills/0", undefined, 400, "path.id"],
    ];
    for (const [method, path, body, status, field] of cases) {
      const answer = await s.call(method, path, body === undefined ? {} : { body });
      expect([method, path, body, answer.status]).toEqual([method, path, body, status]);
      const error = answer.json.error as { code: string; message: string; details: Array<{ field: string }> };
      expect(error.message.length).toBeGreaterThan(0);
      if (field) expect([path, error.details.map((d) => d.field)]).toEqual([path, expect.arrayContaining([field])]);
    }
    expect((await s.call("POST", "/api/backfills", { role: "viewer", body: { backfill: good } })).status).toBe(403);
    expect((await s.call("POST", `/api/backfills/${initial.id}/start`, { role: "viewer" })).status).toBe(403);
    expect((await s.call("DELETE", `/api/backfills/${initial.id}`, { role: "viewer" })).status).toBe(403);
    expect((await s.call("GET", "/api/backfills", { role: null })).status).toBe(401);
    expect(await count()).toEqual(before);
  });
});

describe("backfills as Mage's clients drive them", () => {
  test("PUT status initial starts, status cancelled cancels; GET /api/pipelines/:uuid/backfills lists the pipeline's", async () => {
    rmSync(join(s.root, "release"), { force: true });
    const backfill = await create({ name: "mage-style", pipeline_uuid: "slow", ...days, max_concurrent_runs: 1, variables: { dir: s.root } });
    const other = await create({ name: "other-pipeline", pipeline_uuid: "etl", ...days, variables: { dir: s.root } });

    const listed = await s.call("GET", "/api/pipelines/slow/backfills", { role: "viewer" });
    expect(listed.status).toBe(200);
    const ids = (listed.json.backfills as Array<{ id: number; pipeline_uuid: string }>).map((b) => b.id);
    expect(ids).toContain(backfill.id);
    expect(ids).not.toContain(other.id);
    expect((listed.json.backfills as Array<{ pipeline_uuid: string }>).every((b) => b.pipeline_uuid === "slow")).toBe(true);
    expect((await s.call("GET", "/api/pipelines/nope/backfills", { role: "viewer" })).status).toBe(404);
    expect((await s.call("GET", "/api/pipelines/slow/backfills?status=sometimes", { role: "viewer" })).status).toBe(400);

    // a status kiln does not act on through PUT is a 400 naming the field, and changes nothing
    const bad = await s.call("PUT", `/api/backfills/${backfill.id}`, { body: { backfill: { status: "running" } } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain("backfill.status");
    expect((await get(backfill.id)).status).toBe("initial");

    const started = await s.call("PUT", `/api/backfills/${backfill.id}`, { body: { backfill: { status: "initial" } } });
    expect(started.status).toBe(200);
    expect((started.json.backfill as BackfillJson).status).toBe("running");
    expect((await runsOf(backfill.id)).length).toBe(3);
    await until(async () => (await runsOf(backfill.id)).some((r) => r.status === "running"), "a backfill run to start");

    const cancelled = await s.call("PUT", `/api/backfills/${backfill.id}`, { body: { backfill: { status: "cancelled" } } });
    expect(cancelled.status).toBe(200);
    const view = cancelled.json.backfill as BackfillJson;
    expect(view.status).toBe("cancelled");
    expect(view.run_status_counts.cancelled).toBe(3);
    // starting a cancelled backfill again is a conflict, as the start action is
    expect((await s.call("PUT", `/api/backfills/${backfill.id}`, { body: { backfill: { status: "initial" } } })).status).toBe(409);
    expect((await s.call("PUT", `/api/backfills/${backfill.id}`, { role: "viewer", body: { backfill: { status: "cancelled" } } })).status).toBe(403);
  });
});
