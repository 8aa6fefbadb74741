/** Trigger tokens are write credentials: the JSON API gives them to editors and admins only. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

let s: ServerFixture;
beforeAll(async () => {
  s = await serverFixture();
});
afterAll(() => s.close());

test("a viewer sees no API or event trigger token (get, list); editors and admins do", async () => {
  const api = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { role: "editor", body: { pipeline_schedule: { name: "api_tok", schedule_type: "api", status: "active" } } });
  const event = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", {
    role: "editor",
    body: { pipeline_schedule: { name: "event_tok", schedule_type: "event", status: "active", event_pattern: { source: ["shop"] } } },
  });
  expect(api.status).toBe(201);
  expect(event.status).toBe(201);
  const apiToken = String((api.json.pipeline_schedule as Record<string, unknown>).token);
  const eventToken = String((event.json.pipeline_schedule as Record<string, unknown>).token);
  expect(apiToken).toMatch(/^[0-9a-f]{32}$/);
  expect(eventToken).toMatch(/^[0-9a-f]{32}$/);

  for (const id of [(api.json.pipeline_schedule as { id: number }).id, (event.json.pipeline_schedule as { id: number }).id]) {
    const viewer = await s.call("GET", `/api/pipeline_schedules/${id}`, { role: "viewer" });
    expect(viewer.status).toBe(200);
    expect(viewer.json.pipeline_schedule).not.toHaveProperty("token");
    for (const role of ["editor", "admin"] as const) {
      const got = await s.call("GET", `/api/pipeline_schedules/${id}`, { role });
      expect(String((got.json.pipeline_schedule as Record<string, unknown>).token)).toMatch(/^[0-9a-f]{32}$/);
    }
  }
  const listed = await s.call("GET", "/api/pipelines/etl/pipeline_schedules", { role: "viewer" });
  expect(listed.status).toBe(200);
  const text = JSON.stringify(listed.json);
  expect(text).toContain("api_tok");
  expect(text).not.toContain(apiToken);
  expect(text).not.toContain(eventToken);
  expect(JSON.stringify((await s.call("GET", "/api/pipelines/etl/pipeline_schedules", { role: "editor" })).json)).toContain(apiToken);
});
