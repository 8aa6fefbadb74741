/** Mage's pipeline bulk actions over HTTP: PUT /api/pipelines/:uuid with a status. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";
import { RUNS_PROJECT } from "./runs-project.ts";

type BulkAction = { status: string; pipeline_run_ids: number[]; pipeline_schedule_ids: number[]; skipped_pipeline_run_ids: number[] };

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

async function statusOf(id: number): Promise<string> {
  return String(((await s.call("GET", `/api/pipeline_runs/${id}`, { role: "viewer" })).json.pipeline_run as { status: string }).status);
}

async function untilStatus(id: number, status: string): Promise<void> {
  await until(async () => (await statusOf(id)) === status, `pipeline run ${id} to be ${status}`);
}

async function bulk(pipeline: string, body: Record<string, unknown>, role: "editor" | "viewer" = "editor") {
  return s.call("PUT", `/api/pipelines/${pipeline}`, { role, body: { pipeline: body } });
}

async function snapshot(): Promise<unknown> {
  const runs = await s.client.execute("SELECT id, status, updated_at FROM pipeline_runs ORDER BY id");
  const schedules = await s.client.execute("SELECT id, status, updated_at FROM pipeline_schedules ORDER BY id");
  return [runs.rows.map((r) => ({ ...r })), schedules.rows.map((r) => ({ ...r }))];
}

describe("PUT /api/pipelines/:uuid bulk actions", () => {
  test("inactive then active sets every trigger of the pipeline, and no other pipeline's", async () => {
    const second = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "nightly", schedule_type: "time", schedule_interval: "@daily", status: "active" } } });
    const secondId = (second.json.pipeline_schedule as { id: number }).id;
    const off = await bulk("etl", { status: "inactive" });
    expect(off.status).toBe(200);
    expect((off.json.pipeline as { uuid: string }).uuid).toBe("etl");
    expect(((off.json.pipeline as { bulk_action: BulkAction }).bulk_action.pipeline_schedule_ids).sort()).toEqual([triggers.get("etl")!, secondId].sort());
    for (const id of [triggers.get("etl")!, secondId]) {
      expect(((await s.call("GET", `/api/pipeline_schedules/${id}`, { role: "viewer" })).json.pipeline_schedule as { status: string }).status).toBe("inactive");
    }
    expect(((await s.call("GET", `/api/pipeline_schedules/${triggers.get("flaky")}`, { role: "viewer" })).json.pipeline_schedule as { status: string }).status).toBe("active");
    expect((await bulk("etl", { status: "active" })).status).toBe(200);
    expect(((await s.call("GET", `/api/pipeline_schedules/${secondId}`, { role: "viewer" })).json.pipeline_schedule as { status: string }).status).toBe("active");
    await s.call("DELETE", `/api/pipeline_schedules/${secondId}`);
  });

  test("retry_incomplete_block_runs runs every failed run's incomplete blocks again; retry with pipeline_runs retries those", async () => {
    rmSync(join(s.root, "ok"), { force: true });
    const first = await newRun("flaky");
    const second = await newRun("flaky");
    await untilStatus(first, "failed");
    await untilStatus(second, "failed");
    writeFileSync(join(s.root, "ok"), "");
    const retried = await bulk("flaky", { status: "retry_incomplete_block_runs" });
    expect(retried.status).toBe(200);
    expect((retried.json.pipeline as { bulk_action: BulkAction }).bulk_action.pipeline_run_ids.sort()).toEqual([first, second].sort());
    await untilStatus(first, "completed");
    await untilStatus(second, "completed");

    rmSync(join(s.root, "ok"), { force: true });
    const third = await newRun("flaky");
    await untilStatus(third, "failed");
    writeFileSync(join(s.root, "ok"), "");
    // a completed run named beside it is left alone (kiln retries in place: only failed or cancelled runs)
    const named = await bulk("flaky", { status: "retry", pipeline_runs: [{ id: third }, { id: first }] });
    expect(named.status).toBe(200);
    expect((named.json.pipeline as { bulk_action: BulkAction }).bulk_action).toMatchObject({ pipeline_run_ids: [third], skipped_pipeline_run_ids: [first] });
    await untilStatus(third, "completed");
  });

  test("cancelled cancels the pipeline's live runs; pipeline_runs naming another pipeline's run is a 404 that changes nothing", async () => {
    rmSync(join(s.root, "release"), { force: true });
    const a = await newRun("slow");
    const b = await newRun("slow");
    await until(async () => (await statusOf(a)) === "running" || (await statusOf(b)) === "running", "a slow run to start");
    const etlRun = await newRun("etl");
    await untilStatus(etlRun, "completed");

    const before = await snapshot();
    const foreign = await bulk("slow", { status: "cancelled", pipeline_runs: [{ id: a }, { id: etlRun }] });
    expect(foreign.status).toBe(404);
    expect(JSON.stringify(foreign.json)).toContain("pipeline_runs[1].id");
    expect(await snapshot()).toEqual(before);

    const cancelled = await bulk("slow", { status: "cancelled" });
    expect(cancelled.status).toBe(200);
    expect((cancelled.json.pipeline as { bulk_action: BulkAction }).bulk_action.pipeline_run_ids.sort()).toEqual([a, b].sort());
    await untilStatus(a, "cancelled");
    await untilStatus(b, "cancelled");
    expect(await statusOf(etlRun)).toBe("completed");
  });

  test("bad input is a 4xx naming the field and changes nothing; viewers may not act", async () => {
    const before = await snapshot();
    const unknown = await bulk("etl", { status: "paused" });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.json)).toContain("pipeline.status");
    const noRuns = await bulk("flaky", { status: "retry" });
    expect(noRuns.status).toBe(422);
    expect(JSON.stringify(noRuns.json)).toContain("pipeline.pipeline_runs");
    expect((await bulk("etl", { status: "inactive", pipeline_schedule_id: 1 })).status).toBe(422);
    expect((await bulk("etl", { status: "cancelled", pipeline_runs: [{ id: "x" }] })).status).toBe(400);
    expect((await bulk("nope", { status: "inactive" })).status).toBe(404);
    expect((await bulk("etl", { status: "inactive" }, "viewer")).status).toBe(403);
    expect(await snapshot()).toEqual(before);
  });
});
