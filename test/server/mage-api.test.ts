/**
 * Routes and fields as Mage's clients use them (Mage's presenters are the reference): every
 * pipeline's triggers, a pipeline's runs, run counts and the mean runtime on triggers, and list
 * metadata with the total matching (count), whether more follow (next) and kiln's cursor (after).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { until } from "../helpers/fixtures.ts";
import { SERVER_PROJECT, serverFixture, type ServerFixture } from "../helpers/server.ts";

let s: ServerFixture;
beforeAll(async () => {
  s = await serverFixture();
});
afterAll(() => s.close());

type Meta = { count: number; next: boolean; after: string | null };

describe("Mage's routes and fields", () => {
  test("GET /api/pipeline_schedules lists every pipeline's triggers with pipeline_runs_count, pipeline_in_progress_runs_count and runtime_average", async () => {
    const created = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "counted", schedule_type: "api", status: "active" } } });
    expect(created.status).toBe(201);
    const id = (created.json.pipeline_schedule as { id: number }).id;
    const t0 = Date.UTC(2025, 0, 1);
    // two finished runs of 10 s and 30 s, one running, their statuses set directly: they name a
    // pipeline the project lacks, so the scheduler never starts them and races the statuses set here
    for (const [i, seconds] of [[1, 10], [2, 30]] as const) {
      const run = await s.store.createPipelineRun({ pipelineUuid: "ghost-counted", pipelineScheduleId: id, executionDate: t0 + i * 1000 });
      await s.client.execute({ sql: "UPDATE pipeline_runs SET status = 'completed', started_at = ?, completed_at = ? WHERE id = ?", args: [t0, t0 + seconds * 1000, run!.id] });
    }
    const waiting = await s.store.createPipelineRun({ pipelineUuid: "ghost-counted", pipelineScheduleId: id, executionDate: t0 + 3000 });
    await s.client.execute({ sql: "UPDATE pipeline_runs SET status = 'running', owner = 'elsewhere' WHERE id = ?", args: [waiting!.id] });

    const all = await s.call("GET", "/api/pipeline_schedules", { role: "viewer" });
    expect(all.status).toBe(200);
    const row = (all.json.pipeline_schedules as Array<Record<string, unknown>>).find((x) => x.id === id)!;
    expect(row).toMatchObject({ name: "counted", pipeline_uuid: "etl", pipeline_runs_count: 3, pipeline_in_progress_runs_count: 1, runtime_average: 20 });
    expect(all.json.metadata as Meta).toMatchObject({ next: false, after: null });
    const one = await s.call("GET", `/api/pipeline_schedules/${id}`, { role: "viewer" });
    expect(one.json.pipeline_schedule).toMatchObject({ pipeline_runs_count: 3, pipeline_in_progress_runs_count: 1, runtime_average: 20 });
    // filtered by pipeline, and a bad filter is a 400 naming it
    expect(((await s.call("GET", "/api/pipeline_schedules?pipeline_uuid=nope", { role: "viewer" })).json.pipeline_schedules as unknown[]).length).toBe(0);
    const bad = await s.call("GET", "/api/pipeline_schedules?status=sometimes", { role: "viewer" });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain("status");

    // a trigger's runs: count is the total, next and after page through
    const first = await s.call("GET", `/api/pipeline_schedules/${id}/pipeline_runs?_limit=2`, { role: "viewer" });
    const meta = first.json.metadata as Meta;
    expect((first.json.pipeline_runs as unknown[]).length).toBe(2);
    expect(meta.count).toBe(3);
    expect(meta.next).toBe(true);
    const second = await s.call("GET", `/api/pipeline_schedules/${id}/pipeline_runs?_limit=2&_after=${meta.after}`, { role: "viewer" });
    expect(second.json.metadata as Meta).toEqual({ count: 3, next: false, after: null });
  });

  test("GET /api/pipelines/:uuid/pipeline_runs: a pipeline's runs with the total, filtered by status; 404 for an unknown pipeline", async () => {
    const made: number[] = [];
    for (let i = 0; i < 3; i++) made.push((await s.store.createPipelineRun({ pipelineUuid: "etl", executionDate: Date.UTC(2025, 1, 1) + i * 1000 }))!.id);
    // the scheduler runs them: counted once they ended, so no status changes between the answer and the truth
    await until(async () => {
      for (const id of made) if ((await s.store.getPipelineRun(id))?.status !== "completed") return false;
      return true;
    }, "the runs to complete");
    const before = await s.call("GET", "/api/pipelines/etl/pipeline_runs?_limit=1", { role: "viewer" });
    expect(before.status).toBe(200);
    const total = (before.json.metadata as Meta).count;
    const truth = Number((await s.client.execute("SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_uuid = 'etl'")).rows[0]!.n);
    expect(total).toBe(truth);
    expect(total).toBeGreaterThanOrEqual(3);
    const completed = await s.call("GET", "/api/pipelines/etl/pipeline_runs?status=completed", { role: "viewer" });
    const completedTruth = Number((await s.client.execute("SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_uuid = 'etl' AND status = 'completed'")).rows[0]!.n);
    expect((completed.json.metadata as Meta).count).toBe(completedTruth);
    expect((completed.json.pipeline_runs as Array<{ status: string }>).every((r) => r.status === "completed")).toBe(true);
    expect((await s.call("GET", "/api/pipelines/nope/pipeline_runs", { role: "viewer" })).status).toBe(404);
  });
});

describe("Mage's event matchers", () => {
  test("GET /api/event_matchers: each event trigger with a pattern, with its id; one by id; 404 for other triggers", async () => {
    const pattern = { source: ["aws.s3"], detail: { bucket: { name: ["uploads"] } } };
    const created = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", {
      body: { pipeline_schedule: { name: "on-upload", schedule_type: "event", status: "active", event_pattern: pattern } },
    });
    expect(created.status).toBe(201);
    const id = (created.json.pipeline_schedule as { id: number }).id;
    const api = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "not-an-event", schedule_type: "api" } } });
    const apiId = (api.json.pipeline_schedule as { id: number }).id;

    const all = await s.call("GET", "/api/event_matchers", { role: "viewer" });
    expect(all.status).toBe(200);
    const matchers = all.json.event_matchers as Array<Record<string, unknown>>;
    expect(matchers.map((m) => m.id)).toContain(id);
    expect(matchers.map((m) => m.id)).not.toContain(apiId);
    const matcher = matchers.find((m) => m.id === id)!;
    expect(matcher).toMatchObject({ name: "on-upload", event_type: "aws_event", pattern, pipeline_schedule_ids: [id] });
    expect(typeof matcher.created_at).toBe("string");

    const one = await s.call("GET", `/api/event_matchers/${id}`, { role: "viewer" });
    expect(one.status).toBe(200);
    expect(one.json.event_matcher).toMatchObject({ id, pattern });
    expect((await s.call("GET", `/api/event_matchers/${apiId}`, { role: "viewer" })).status).toBe(404);
    expect((await s.call("GET", "/api/event_matchers/abc", { role: "viewer" })).status).toBe(400);
    expect((await s.call("GET", "/api/event_matchers?colour=red", { role: "viewer" })).status).toBe(400);
  });
});

describe("runs and block runs as Mage's presenters show them", () => {
  test("lists and detail carry the trigger's name and type, the token only for editors, tags, executor, event, block run counts; block runs their trigger", async () => {
    const tagged = await serverFixture({ ...SERVER_PROJECT, "pipelines/etl/metadata.yaml": `tags: [nightly, finance]\n${SERVER_PROJECT["pipelines/etl/metadata.yaml"]}` });
    try {
      const created = await tagged.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "hook", schedule_type: "api", status: "active" } } });
      const schedule = created.json.pipeline_schedule as { id: number; token: string };
      const started = await tagged.call("POST", `/api/pipeline_schedules/${schedule.id}/pipeline_runs/${schedule.token}`, { role: null, body: { pipeline_run: { variables: {} } } });
      expect(started.status).toBeLessThan(300);
      const runId = (started.json.pipeline_run as { id: number }).id;
      await until(async () => ((await tagged.call("GET", `/api/pipeline_runs/${runId}`, { role: "viewer" })).json.pipeline_run as { status: string }).status === "completed", "the run to complete");

      const expected = { pipeline_schedule_name: "hook", pipeline_schedule_type: "api", pipeline_tags: ["nightly", "finance"], executor_type: "local", block_runs_count: 2, completed_block_runs_count: 2 };
      for (const path of ["/api/pipeline_runs", "/api/pipelines/etl/pipeline_runs", `/api/pipeline_schedules/${schedule.id}/pipeline_runs`]) {
        const asViewer = (await tagged.call("GET", path, { role: "viewer" })).json.pipeline_runs as Array<Record<string, unknown>>;
        const row = asViewer.find((r) => r.id === runId)!;
        expect(row).toMatchObject(expected);
        expect("event_variables" in row).toBe(true);
        // a token starts runs: a viewer never gets it
        expect("pipeline_schedule_token" in row).toBe(false);
        const asEditor = (await tagged.call("GET", path, { role: "editor" })).json.pipeline_runs as Array<Record<string, unknown>>;
        expect(asEditor.find((r) => r.id === runId)!.pipeline_schedule_token).toBe(schedule.token);
      }
      const detail = (await tagged.call("GET", `/api/pipeline_runs/${runId}`, { role: "viewer" })).json.pipeline_run as Record<string, unknown> & { block_runs: Array<Record<string, unknown>> };
      expect(detail).toMatchObject(expected);
      expect("pipeline_schedule_token" in detail).toBe(false);
      expect(detail.block_runs.every((b) => b.pipeline_schedule_id === schedule.id && b.pipeline_schedule_name === "hook")).toBe(true);
      const blockRuns = (await tagged.call("GET", `/api/block_runs?pipeline_run_id=${runId}`, { role: "viewer" })).json.block_runs as Array<Record<string, unknown>>;
      expect(blockRuns.map((b) => [b.pipeline_schedule_id, b.pipeline_schedule_name])).toEqual([[schedule.id, "hook"], [schedule.id, "hook"]]);
      const one = (await tagged.call("GET", `/api/block_runs/${blockRuns[0]!.id}`, { role: "viewer" })).json.block_run as Record<string, unknown>;
      expect(one).toMatchObject({ pipeline_schedule_id: schedule.id, pipeline_schedule_name: "hook" });
    } finally {
      tagged.close();
    }
  });
});

describe("Mage's paging and filters", () => {
  test("_offset pages as Mage does (capped, not with _after); status[] filters by any of the statuses, totals included", async () => {
    const t0 = Date.UTC(2025, 5, 1);
    const made: number[] = [];
    for (let i = 0; i < 5; i++) {
      const run = await s.store.createPipelineRun({ pipelineUuid: "ghost-offset", executionDate: t0 + i * 1000 });
      made.push(run!.id);
    }
    await s.client.execute({ sql: "UPDATE pipeline_runs SET status = 'failed' WHERE id IN (?, ?)", args: [made[0]!, made[1]!] });
    await s.client.execute({ sql: "UPDATE pipeline_runs SET status = 'cancelled' WHERE id = ?", args: [made[2]!] });
    const newestFirst = [...made].reverse();

    const second = await s.call("GET", "/api/pipeline_runs?pipeline_uuid=ghost-offset&_limit=2&_offset=2", { role: "viewer" });
    expect(second.status).toBe(200);
    expect((second.json.pipeline_runs as Array<{ id: number }>).map((r) => r.id)).toEqual(newestFirst.slice(2, 4));
    expect(second.json.metadata as Meta).toMatchObject({ count: 5, next: true });
    const last = await s.call("GET", "/api/pipeline_runs?pipeline_uuid=ghost-offset&_limit=2&_offset=4", { role: "viewer" });
    expect((last.json.pipeline_runs as Array<{ id: number }>).map((r) => r.id)).toEqual(newestFirst.slice(4));
    expect((last.json.metadata as Meta).next).toBe(false);
    expect((await s.call("GET", "/api/pipeline_runs?_offset=10001", { role: "viewer" })).status).toBe(400);
    expect((await s.call("GET", `/api/pipeline_runs?_offset=1&_after=${newestFirst[0]}`, { role: "viewer" })).status).toBe(400);
    // every list takes it, triggers' included
    expect((await s.call("GET", "/api/pipeline_schedules?_offset=0", { role: "viewer" })).status).toBe(200);

    const failedOrCancelled = await s.call("GET", "/api/pipeline_runs?pipeline_uuid=ghost-offset&status[]=failed&status[]=cancelled", { role: "viewer" });
    expect(failedOrCancelled.status).toBe(200);
    expect((failedOrCancelled.json.pipeline_runs as Array<{ id: number }>).map((r) => r.id).sort()).toEqual(made.slice(0, 3).sort());
    expect((failedOrCancelled.json.metadata as Meta).count).toBe(3);
    const commaForm = await s.call("GET", "/api/pipeline_runs?pipeline_uuid=ghost-offset&status[]=failed,initial", { role: "viewer" });
    expect((commaForm.json.metadata as Meta).count).toBe(4);
    const both = await s.call("GET", "/api/pipeline_runs?pipeline_uuid=ghost-offset&status=failed&status[]=failed&status[]=cancelled", { role: "viewer" });
    expect((both.json.metadata as Meta).count).toBe(2);
    const bad = await s.call("GET", "/api/pipeline_runs?status[]=failed&status[]=sometimes", { role: "viewer" });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain("query.status[]");
  });
});

describe("metadata.count is the total matching on every list, as in Mage", () => {
  /** Every page of a list, `_limit` 2 at a time: each page must carry the same total, and `next` whether a cursor follows. */
  async function walk(fx: ServerFixture, path: string, key: string): Promise<{ ids: number[]; counts: number[] }> {
    const ids: number[] = [];
    const counts: number[] = [];
    let after: string | null = null;
    for (let i = 0; i < 50; i++) {
      const answer = await fx.call("GET", `${path}${path.includes("?") ? "&" : "?"}_limit=2${after ? `&_after=${after}` : ""}`, { role: "viewer" });
      expect(answer.status).toBe(200);
      const meta = answer.json.metadata as Meta;
      expect(meta.next).toBe(meta.after !== null);
      ids.push(...(answer.json[key] as Array<{ id: number }>).map((r) => r.id));
      counts.push(meta.count);
      after = meta.after;
      if (after === null) return { ids, counts };
    }
    throw new Error(`${path} did not end`);
  }

  /** The list's total on every page is the number of rows its pages hold, and that is `expected`. */
  async function expectTotal(fx: ServerFixture, path: string, key: string, expected: number): Promise<void> {
    const { ids, counts } = await walk(fx, path, key);
    expect(ids.length).toBe(expected);
    expect(new Set(counts)).toEqual(new Set([expected]));
  }

  test("triggers (all, a pipeline's, filtered), event matchers, backfills and block runs: the filter's total on every page", async () => {
    const fx = await serverFixture({ ...SERVER_PROJECT, "pipelines/other/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n" });
    try {
      const make = async (pipeline: string, schedule: Record<string, unknown>) => {
        const created = await fx.call("POST", `/api/pipelines/${pipeline}/pipeline_schedules`, { body: { pipeline_schedule: schedule } });
        expect(created.status).toBe(201);
      };
      for (let i = 0; i < 3; i++) await make("etl", { name: `hook-${i}`, schedule_type: "api", status: "active", tags: i === 0 ? ["finance"] : ["ops"] });
      for (let i = 0; i < 3; i++) await make("etl", { name: `on-event-${i}`, schedule_type: "event", event_pattern: { source: [`s${i}`] } });
      // an event trigger without a pattern matches nothing: no matcher
      await make("etl", { name: "no-pattern", schedule_type: "event" });
      await make("other", { name: "elsewhere", schedule_type: "api", tags: ["finance"] });

      await expectTotal(fx, "/api/pipeline_schedules", "pipeline_schedules", 8);
      await expectTotal(fx, "/api/pipeline_schedules?pipeline_uuid=etl", "pipeline_schedules", 7);
      await expectTotal(fx, "/api/pipeline_schedules?status=active", "pipeline_schedules", 3);
      await expectTotal(fx, "/api/pipeline_schedules?schedule_type=event", "pipeline_schedules", 4);
      await expectTotal(fx, "/api/pipeline_schedules?tag[]=finance", "pipeline_schedules", 2);
      await expectTotal(fx, "/api/pipelines/etl/pipeline_schedules", "pipeline_schedules", 7);
      await expectTotal(fx, "/api/pipelines/etl/pipeline_schedules?tag[]=ops", "pipeline_schedules", 2);
      await expectTotal(fx, "/api/pipelines/other/pipeline_schedules?status=active", "pipeline_schedules", 0);
      // with _offset the total is still the whole filter's, not what is left after the offset
      const offset = await fx.call("GET", "/api/pipeline_schedules?_offset=6&_limit=1", { role: "viewer" });
      expect(offset.json.metadata as Meta).toMatchObject({ count: 8, next: true });
      await expectTotal(fx, "/api/event_matchers", "event_matchers", 3);

      for (const [pipeline, name] of [["etl", "b1"], ["etl", "b2"], ["other", "b3"]] as const) {
        const created = await fx.call("POST", "/api/backfills", { body: { backfill: { name, pipeline_uuid: pipeline, start_datetime: "2024-03-01T00:00:00Z", end_datetime: "2024-03-01T01:00:00Z", interval_type: "hour" } } });
        expect(created.status).toBe(201);
        if (name === "b2") expect((await fx.call("PUT", `/api/backfills/${(created.json.backfill as { id: number }).id}`, { body: { backfill: { status: "initial" } } })).status).toBe(200);
      }
      await expectTotal(fx, "/api/backfills", "backfills", 3);
      await expectTotal(fx, "/api/backfills?pipeline_uuid=etl", "backfills", 2);
      await expectTotal(fx, "/api/backfills?status=initial", "backfills", 2);
      await expectTotal(fx, "/api/pipelines/etl/backfills", "backfills", 2);
      await expectTotal(fx, "/api/pipelines/etl/backfills?status=initial", "backfills", 1);

      // a pipeline of three blocks: its run's block-run lists total three, two a page
      const three = await serverFixture({
        ...SERVER_PROJECT,
        "pipelines/etl/metadata.yaml": `${SERVER_PROJECT["pipelines/etl/metadata.yaml"]}  - uuid: tail\n    type: transformer\n    upstream_blocks: [shape]\n`,
        "transformers/tail.js": "export default function tail(data) { return data; }\n",
      });
      try {
        const run = await three.store.createPipelineRun({ pipelineUuid: "etl", executionDate: Date.UTC(2025, 0, 1) });
        await until(async () => (await three.store.getPipelineRun(run!.id))?.status === "completed", "the run to complete");
        await expectTotal(three, `/api/block_runs?pipeline_run_id=${run!.id}`, "block_runs", 3);
        await expectTotal(three, `/api/pipeline_runs/${run!.id}/block_runs`, "block_runs", 3);
      } finally {
        await three.close();
      }
    } finally {
      await fx.close();
    }
  });
});

describe("Mage's requests kiln does not serve, as README's Coming from Mage says", () => {
  test("Mage-only list parameters are a 400 naming them; routes kiln leaves out are 404; Mage-only body keys are a 400", async () => {
    for (const [path, name] of [
      ["/api/pipeline_runs?_format=with_runtime_average", "_format"],
      ["/api/pipeline_runs?_order_by[]=id", "_order_by[]"],
      ["/api/pipeline_schedules?_http_error_codes=true", "_http_error_codes"],
      ["/api/pipeline_runs?pipeline_uuid[]=etl", "pipeline_uuid[]"],
      ["/api/pipeline_schedules?schedule_type[]=time", "schedule_type[]"],
    ] as const) {
      const answer = await s.call("GET", path, { role: "viewer" });
      expect({ path, status: answer.status }).toEqual({ path, status: 400 });
      expect(JSON.stringify(answer.json)).toContain(name);
    }
    const run = await s.store.createPipelineRun({ pipelineUuid: "ghost-unserved", executionDate: Date.UTC(2025, 7, 1) });
    for (const [method, path] of [
      ["POST", "/api/pipelines"],
      ["DELETE", "/api/pipelines/etl"],
      ["DELETE", `/api/pipeline_runs/${run!.id}`],
      ["GET", "/api/pipelines/etl/triggers"],
      ["POST", "/api/event_matchers"],
      ["POST", "/api/runs"],
    ] as const) {
      expect({ method, path, status: (await s.call(method, path, method === "GET" ? {} : { body: {} })).status }).toEqual({ method, path, status: 404 });
    }
    expect((await s.store.getPipelineRun(run!.id))?.id).toBe(run!.id);
    const trigger = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "unserved", schedule_type: "event" } } });
    const id = (trigger.json.pipeline_schedule as { id: number }).id;
    const matchers = await s.call("PUT", `/api/pipeline_schedules/${id}`, { body: { pipeline_schedule: { event_matchers: [{ pattern: { source: ["x"] } }] } } });
    expect(matchers.status).toBe(400);
    expect(JSON.stringify(matchers.json)).toContain("event_matchers");
    const settings = await s.call("POST", "/api/pipelines/etl/backfills", { body: { backfill: { name: "s", start_datetime: "2024-01-01", end_datetime: "2024-01-02", interval_type: "day", settings: { pipeline_run_limit: 1 } } } });
    expect(settings.status).toBe(400);
    expect(JSON.stringify(settings.json)).toContain("settings");
  });
});
