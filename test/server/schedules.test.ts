/** Triggers over HTTP, and the seeds' API-trigger request as written. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { until } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

let s: ServerFixture;
beforeAll(async () => {
  s = await serverFixture();
});
afterAll(() => s.close());

describe("pipeline_schedules", () => {
  test("create, get, list, update (rotate the token, deactivate), delete, with Mage's envelopes", async () => {
    const created = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", {
      role: "editor",
      body: { pipeline_schedule: { name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { overlap: "skip" } } },
    });
    expect(created.status).toBe(201);
    const schedule = created.json.pipeline_schedule as Record<string, unknown>;
    expect(schedule.name).toBe("hourly");
    expect(schedule.pipeline_uuid).toBe("etl");
    expect(typeof schedule.next_pipeline_run_date).toBe("string");
    expect(Date.parse(String(schedule.next_pipeline_run_date)) % 3_600_000).toBe(0);
    expect(schedule.last_pipeline_run_status).toBeNull();

    const got = await s.call("GET", `/api/pipeline_schedules/${schedule.id}`, { role: "viewer" });
    expect(got.status).toBe(200);
    expect((got.json.pipeline_schedule as Record<string, unknown>).id).toBe(schedule.id);

    const listed = await s.call("GET", "/api/pipelines/etl/pipeline_schedules", { role: "viewer" });
    expect(listed.status).toBe(200);
    expect((listed.json.pipeline_schedules as unknown[]).length).toBe(1);
    expect(listed.json.metadata).toEqual({ count: 1, next: false, after: null });

    const api = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "api", schedule_type: "api", status: "active" } } });
    const apiSchedule = api.json.pipeline_schedule as Record<string, unknown>;
    expect(String(apiSchedule.token)).toMatch(/^[0-9a-f]{32}$/);
    const rotated = await s.call("PUT", `/api/pipeline_schedules/${apiSchedule.id}`, { body: { pipeline_schedule: { rotate_token: true, status: "inactive" } } });
    expect(rotated.status).toBe(200);
    const after = rotated.json.pipeline_schedule as Record<string, unknown>;
    expect(after.token).not.toBe(apiSchedule.token);
    expect(after.status).toBe("inactive");

    const deleted = await s.call("DELETE", `/api/pipeline_schedules/${apiSchedule.id}`);
    expect(deleted.status).toBe(200);
    expect((await s.call("GET", `/api/pipeline_schedules/${apiSchedule.id}`)).status).toBe(404);
  });

  test("bad input: 400/404/409/422 naming the field, and nothing written", async () => {
    const before = await s.client.execute("SELECT count(*) AS n FROM pipeline_schedules");
    const cases: Array<[string, string, unknown, number, string]> = [
      ["POST", "/api/pipelines/etl/pipeline_schedules", { pipeline_schedule: { name: "" } }, 400, "pipeline_schedule.name"],
      ["POST", "/api/pipelines/etl/pipeline_schedules", { pipeline_schedule: { name: "x", schedule_interval: "61 * * * *" } }, 422, "schedule_interval"],
      ["POST", "/api/pipelines/etl/pipeline_schedules", { pipeline_schedule: { name: "x", schedule_interval: "@daily", timezone: "Mars/Base" } }, 422, "timezone"],
      ["POST", "/api/pipelines/etl/pipeline_schedules", { pipeline_schedule: { name: "x", schedule_interval: "@daily", bogus: 1 } }, 400, "pipeline_schedule.bogus"],
      ["POST", "/api/pipelines/nope/pipeline_schedules", { pipeline_schedule: { name: "x", schedule_interval: "@daily" } }, 404, ""],
      ["PUT", "/api/pipeline_schedules/abc", { pipeline_schedule: {} }, 400, "path.id"],
      ["PUT", "/api/pipeline_schedules/99999", { pipeline_schedule: {} }, 404, ""],
    ];
    for (const [method, path, body, status, field] of cases) {
      const answer = await s.call(method, path, { body });
      expect([path, answer.status]).toEqual([path, status]);
      const error = answer.json.error as { code: string; message: string; details: Array<{ field: string }> };
      expect(error.message.length).toBeGreaterThan(0);
      if (field) expect(error.details.map((d) => d.field)).toContain(field);
    }
    const dup = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "hourly", schedule_interval: "@daily" } } });
    expect(dup.status).toBe(409);
    const afterCount = await s.client.execute("SELECT count(*) AS n FROM pipeline_schedules");
    expect(afterCount.rows[0]?.n).toBe(before.rows[0]?.n);
  });
});

describe("the API trigger", () => {
  test("the seeds' request works as written, its other keys become the event, and the run completes", async () => {
    const created = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", {
      body: { pipeline_schedule: { name: "api_trigger", schedule_type: "api", status: "active", token: "unique-api-token-123" } },
    });
    const id = (created.json.pipeline_schedule as { id: number }).id;
    // as in the seeds: no credentials, the token in the path
    const response = await fetch(`${s.url}/api/pipeline_schedules/${id}/pipeline_runs/unique-api-token-123`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pipeline_run: { variables: { date: "2024-01-15", env: "production" } }, source: "webhook" }),
    });
    expect(response.status).toBe(201);
    const run = ((await response.json()) as { pipeline_run: Record<string, unknown> }).pipeline_run;
    expect(run.variables).toEqual({ date: "2024-01-15", env: "production" });
    expect(run.event).toEqual({ source: "webhook" });
    await until(async () => {
      const rs = await s.client.execute({ sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [Number(run.id)] });
      return rs.rows[0]?.status === "completed";
    }, "the triggered run to complete");
  });

  test("a wrong token is 401, an inactive trigger 409 and stays inactive, neither creates a run", async () => {
    const created = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", {
      body: { pipeline_schedule: { name: "api_off", schedule_type: "api", status: "inactive", token: "another-token-0123456789" } },
    });
    const id = (created.json.pipeline_schedule as { id: number }).id;
    const before = await s.client.execute("SELECT count(*) AS n FROM pipeline_runs");
    const wrong = await fetch(`${s.url}/api/pipeline_schedules/${id}/pipeline_runs/wrong-token`, { method: "POST", body: "{}" });
    expect(wrong.status).toBe(401);
    const inactive = await fetch(`${s.url}/api/pipeline_schedules/${id}/pipeline_runs/another-token-0123456789`, { method: "POST", body: "{}" });
    expect(inactive.status).toBe(409);
    expect(((await s.call("GET", `/api/pipeline_schedules/${id}`)).json.pipeline_schedule as { status: string }).status).toBe("inactive");
    const after = await s.client.execute("SELECT count(*) AS n FROM pipeline_runs");
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
  });
});
