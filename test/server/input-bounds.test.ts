/**
 * Every input bounded before anything is written, and every stored row readable: out-of-range
 * dates through the API trigger and run-now are a 400 with nothing written; a row already out of
 * range (written before the bounds held) is shown as invalid by the API and the UI, not a 500;
 * JSON nested 100,000 deep is a 4xx; names with control or bidi characters are a 400 naming the field.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { signInOverHttp, uiFixture, type UiFixture } from "../ui/helpers.ts";

let fx: UiFixture;
let session: { cookie: string; csrf: string };

beforeAll(async () => {
  fx = await uiFixture();
  session = await signInOverHttp(fx.url, fx.users.editor);
});

afterAll(async () => {
  await fx?.close();
});

async function runCount(): Promise<number> {
  const rs = await fx.client.execute("SELECT count(*) AS n FROM pipeline_runs");
  return Number(rs.rows[0]?.n);
}

const OUT_OF_RANGE: unknown[] = [8640000000000001, -8640000000000001, 1e308, 253402300800000, -62135596800001, 1.5, "+275760-09-13T00:00:00.000Z", "10000-01-01T00:00:00Z", "2024-02-30T00:00:00Z"];

describe("out-of-range dates are refused with 400 and nothing written", () => {
  test("through the API trigger (no credentials but its token)", async () => {
    const before = await runCount();
    for (const executionDate of OUT_OF_RANGE) {
      const response = await fx.call("POST", `/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs/${fx.apiToken}`, {
        role: null,
        body: { pipeline_run: { execution_date: executionDate } },
      });
      expect({ executionDate, status: response.status }).toEqual({ executionDate, status: 400 });
      const error = response.json.error as { code: string; details: Array<{ field: string }> };
      expect(error.details[0]?.field).toBe("pipeline_run.execution_date");
    }
    expect(await runCount()).toBe(before);
  });

  test("through run-now, and as a trigger's start_time or a backfill's range", async () => {
    const before = await runCount();
    for (const executionDate of OUT_OF_RANGE) {
      const response = await fx.call("POST", `/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs`, { body: { pipeline_run: { execution_date: executionDate } } });
      expect({ executionDate, status: response.status }).toEqual({ executionDate, status: 400 });
    }
    expect(await runCount()).toBe(before);
    const schedule = await fx.call("POST", "/api/pipelines/etl/pipeline_schedules", {
      body: { pipeline_schedule: { name: "far", schedule_type: "time", schedule_interval: "@daily", start_time: 8640000000000001 } },
    });
    expect(schedule.status).toBe(400);
    expect((schedule.json.error as { details: Array<{ field: string }> }).details[0]?.field).toBe("pipeline_schedule.start_time");
    const sla = await fx.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "sla", schedule_type: "api", sla: 1e300 } } });
    expect(sla.status).toBe(400);
    const backfill = await fx.call("POST", "/api/backfills", {
      body: { backfill: { name: "far", pipeline_uuid: "etl", start_datetime: 8640000000000001, end_datetime: 8640000000000002, interval_type: "day" } },
    });
    expect(backfill.status).toBe(400);
    const filtered = await fx.call("GET", "/api/pipeline_runs?execution_date_from=8640000000000001");
    expect(filtered.status).toBe(400);
    const backfills = await fx.client.execute("SELECT count(*) AS n FROM backfills");
    expect(Number(backfills.rows[0]?.n)).toBe(0);
  });

  test("an in-range date still makes a run", async () => {
    const response = await fx.call("POST", `/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs/${fx.apiToken}`, {
      role: null,
      body: { pipeline_run: { execution_date: "9999-12-31T23:59:59.999Z" } },
    });
    expect(response.status).toBe(201);
    expect((response.json.pipeline_run as { execution_date: string }).execution_date).toBe("9999-12-31T23:59:59.999Z");
  });
});

describe("a stored row out of range is shown as invalid, never a 500", () => {
  let badRunId = 0;
  beforeAll(async () => {
    // as an older kiln wrote it: an execution date past Date's range, a NaN partition, a bad JSON column
    const rs = await fx.client.execute({
      sql: `INSERT INTO pipeline_runs (pipeline_schedule_id, pipeline_uuid, execution_date, execution_partition, status, variables, metrics, started_at, completed_at, created_at, updated_at)
            VALUES (?, 'etl', ?, ?, 'failed', '{not json', '{}', ?, ?, ?, ?) RETURNING id`,
      args: [fx.apiTrigger.id, 8640000000000001, `${fx.apiTrigger.id}/NaNNaNNaNTNaNNaNNaNNaN`, 1e308, -8640000000000001, Date.now(), Date.now()],
    });
    badRunId = Number(rs.rows[0]?.id);
  });

  test("GET /api/pipeline_runs, with and without filters, and the run itself", async () => {
    for (const path of ["/api/pipeline_runs", "/api/pipeline_runs?pipeline_uuid=etl", "/api/pipeline_runs?status=failed", `/api/pipeline_runs?pipeline_schedule_id=${fx.apiTrigger.id}`, `/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs`]) {
      const response = await fx.call("GET", path);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      const run = (response.json.pipeline_runs as Array<Record<string, unknown>>).find((r) => r.id === badRunId);
      expect(run).toBeDefined();
      expect(run?.execution_date).toBeNull();
      expect(run?.started_at).toBeNull();
      expect(run?.variables).toEqual({});
    }
    const one = await fx.call("GET", `/api/pipeline_runs/${badRunId}`);
    expect(one.status).toBe(200);
    expect((one.json.pipeline_run as Record<string, unknown>).execution_date).toBeNull();
    const schedule = await fx.call("GET", `/api/pipeline_schedules/${fx.apiTrigger.id}`);
    expect(schedule.status).toBe(200);
  });

  test("the UI: overview, runs, the run's page, the pipeline and the trigger pages", async () => {
    for (const path of ["/ui", "/ui/runs", `/ui/runs/${badRunId}`, "/ui/pipelines/etl", `/ui/triggers/${fx.apiTrigger.id}`]) {
      const response = await fetch(`${fx.url}${path}`, { redirect: "manual", headers: { cookie: session.cookie } });
      const text = await response.text();
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      if (path !== "/ui") expect(text).toContain("invalid date");
    }
  });
});

describe("JSON nested too deeply is a 4xx", () => {
  const deep = (n: number) => `{"a":${"[".repeat(n)}${"]".repeat(n)}}`;
  test("100,000 deep on token-only and authenticated routes, nothing written", async () => {
    const before = await runCount();
    const routes: Array<{ path: string; auth: boolean }> = [
      { path: `/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs/${fx.apiToken}`, auth: false },
      { path: "/api/events", auth: true },
      { path: `/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs`, auth: true },
      { path: "/api/pipelines/etl/pipeline_schedules", auth: true },
      { path: "/api/sessions", auth: false },
    ];
    for (const { path, auth } of routes) {
      const response = await fetch(`${fx.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${fx.keys.admin}` } : {}) },
        body: deep(100_000),
      });
      const body = (await response.json()) as { error: { code: string } };
      expect({ path, status: response.status, code: body.error.code }).toEqual({ path, status: 400, code: "invalid_json" });
    }
    expect(await runCount()).toBe(before);
  });

  test("variables nested within the limit are accepted", async () => {
    const variables = JSON.parse(`{"a":${"[".repeat(30)}1${"]".repeat(30)}}`) as Record<string, unknown>;
    const response = await fx.call("POST", `/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs`, { body: { pipeline_run: { variables } } });
    expect(response.status).toBe(201);
  });
});

describe("names refuse control and bidi characters with a 400 naming the field", () => {
  const BAD = ["a\u0000b", "tab\there", "line\nbreak", "evil\u202Egpj.exe", "iso\u2066late", "del\u007f"];
  test("trigger, backfill and API key names", async () => {
    for (const name of BAD) {
      const trigger = await fx.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name, schedule_type: "api" } } });
      expect({ name, status: trigger.status }).toEqual({ name, status: 400 });
      expect((trigger.json.error as { details: Array<{ field: string }> }).details[0]?.field).toBe("pipeline_schedule.name");
      expect((trigger.json.error as { message: string }).message).toMatch(/character U\+/);

      const update = await fx.call("PUT", `/api/pipeline_schedules/${fx.apiTrigger.id}`, { body: { pipeline_schedule: { name } } });
      expect({ name, status: update.status }).toEqual({ name, status: 400 });

      const backfill = await fx.call("POST", "/api/backfills", {
        body: { backfill: { name, pipeline_uuid: "etl", start_datetime: "2024-01-01", end_datetime: "2024-01-02", interval_type: "day" } },
      });
      expect({ name, status: backfill.status }).toEqual({ name, status: 400 });
      expect((backfill.json.error as { details: Array<{ field: string }> }).details[0]?.field).toBe("backfill.name");

      const key = await fx.call("POST", "/api/api_keys", { body: { api_key: { name, role: "viewer" } } });
      expect({ name, status: key.status }).toEqual({ name, status: 400 });
      expect((key.json.error as { details: Array<{ field: string }> }).details[0]?.field).toBe("api_key.name");
    }
    const names = await fx.client.execute("SELECT name FROM pipeline_schedules UNION ALL SELECT name FROM backfills UNION ALL SELECT name FROM api_keys");
    for (const row of names.rows) expect(String(row.name)).not.toMatch(/[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]/);
  });

  test("an ordinary name with spaces and accents is fine", async () => {
    const trigger = await fx.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "Nuit — été 2026", schedule_type: "api" } } });
    expect(trigger.status).toBe(201);
  });
});
