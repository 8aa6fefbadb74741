/** Event triggers over HTTP: POST /api/events with S3 and EventBridge events, tokens, and bad input. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { JsonObject } from "@kiln/core";
import { until } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

const EVENTS_TOKEN = "project-events-token-0123456789";
const S3_TRIGGER_TOKEN = "s3-uploads-trigger-token-0123";

/** Two pipelines sharing a block that returns the event it was given; one event trigger in triggers.yaml. */
const FILES: Record<string, string> = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/uploads/metadata.yaml": "blocks:\n  - uuid: echo_event\n    type: data_loader\n",
  "pipelines/audit/metadata.yaml": "blocks:\n  - uuid: echo_event\n    type: data_loader\n",
  "data_loaders/echo_event.js":
    "export default function echo(ctx) { ctx.logger.info('event ' + JSON.stringify(ctx.event)); return { event: ctx.event, pipeline: ctx.pipelineUuid }; }\n",
  // as a Mage user writes a trigger in code, with the pattern of S3 uploads under raw/
  "pipelines/uploads/triggers.yaml": `triggers:
  - name: s3_file_upload_trigger
    schedule_type: event
    status: active
    token: ${S3_TRIGGER_TOKEN}
    event_pattern:
      Records:
        eventName: [{prefix: "ObjectCreated:"}]
        s3:
          bucket: {name: [my-data-bucket]}
          object: {key: [{prefix: raw/}]}
`,
};

const s3Event = (bucket: string, key: string): JsonObject => ({
  Records: [
    {
      eventVersion: "2.1",
      eventSource: "aws:s3",
      awsRegion: "us-east-1",
      eventTime: "2024-01-15T12:00:00.000Z",
      eventName: "ObjectCreated:Put",
      s3: { s3SchemaVersion: "1.0", bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` }, object: { key, size: 1024 } },
    },
  ],
});

const eventBridgeEvent = (key: string): JsonObject => ({
  version: "0",
  id: "17793124-05d4-b198-2fde-7ededc63b103",
  "detail-type": "Object Created",
  source: "aws.s3",
  account: "111122223333",
  time: "2024-01-15T12:00:00Z",
  region: "us-east-1",
  resources: ["arn:aws:s3:::my-data-bucket"],
  detail: { version: "0", bucket: { name: "my-data-bucket" }, object: { key, size: 1024 }, reason: "PutObject" },
});

let s: ServerFixture;
const ids: Record<string, number> = {};
const tokens: Record<string, string> = {};

/** POSTs an event with no API key; `auth` is a Bearer token or `?token=`. */
async function sendEvent(body: string | JsonObject, auth: { bearer?: string; query?: string } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth.bearer) headers.authorization = `Bearer ${auth.bearer}`;
  const query = auth.query ? `?token=${encodeURIComponent(auth.query)}` : "";
  const response = await fetch(`${s.url}/api/events${query}`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const runsOf = (answer: { json: Record<string, unknown> }) => (answer.json.pipeline_runs ?? []) as Array<Record<string, unknown>>;
const scheduleIdsOf = (answer: { json: Record<string, unknown> }) => runsOf(answer).map((r) => Number(r.pipeline_schedule_id)).sort((a, b) => a - b);

async function runCount(): Promise<number> {
  return Number((await s.client.execute("SELECT count(*) AS n FROM pipeline_runs")).rows[0]?.n);
}

async function createTrigger(pipeline: string, body: JsonObject): Promise<Record<string, unknown>> {
  const created = await s.call("POST", `/api/pipelines/${pipeline}/pipeline_schedules`, { role: "editor", body: { pipeline_schedule: body } });
  expect([body.name, created.status]).toEqual([body.name, 201]);
  return created.json.pipeline_schedule as Record<string, unknown>;
}

beforeAll(async () => {
  s = await serverFixture(FILES, { eventsToken: EVENTS_TOKEN });
  const triggers: Array<[string, string, JsonObject]> = [
    ["csv_objects", "audit", { name: "csv_objects", schedule_type: "event", status: "active", event_pattern: { source: ["aws.s3"], "detail-type": ["Object Created"], detail: { object: { key: [{ suffix: ".csv" }] } } } }],
    ["raw_prefix", "uploads", { name: "raw_prefix", schedule_type: "event", status: "active", event_pattern: { source: ["aws.s3"], detail: { object: { key: [{ prefix: "raw/" }] } } } }],
    ["switched_off", "audit", { name: "switched_off", schedule_type: "event", status: "inactive", event_pattern: { source: ["aws.s3"] } }],
    ["catch_all", "audit", { name: "catch_all", schedule_type: "event", status: "inactive", event_pattern: {} }],
  ];
  for (const [name, pipeline, body] of triggers) {
    const schedule = await createTrigger(pipeline, body);
    ids[name] = Number(schedule.id);
    tokens[name] = String(schedule.token);
  }
  // the triggers.yaml trigger arrives with the scheduler's first sync
  await until(async () => {
    const rs = await s.client.execute("SELECT id FROM pipeline_schedules WHERE name = 's3_file_upload_trigger'");
    if (rs.rows[0]) ids.s3_file_upload_trigger = Number(rs.rows[0].id);
    return rs.rows.length === 1;
  }, "the code trigger to be synced");
});
afterAll(() => s.close());

describe("POST /api/events", () => {
  test("an S3 ObjectCreated event runs only the matching trigger, and the block receives the event", async () => {
    const event = s3Event("my-data-bucket", "raw/2024/01/15/orders.csv");
    const answer = await sendEvent(event, { bearer: EVENTS_TOKEN });
    expect(answer.status).toBe(201);
    expect(scheduleIdsOf(answer)).toEqual([ids.s3_file_upload_trigger as number]);
    const run = runsOf(answer)[0] as Record<string, unknown>;
    expect(run.pipeline_uuid).toBe("uploads");
    expect(run.event).toEqual(event);
    expect(answer.json.metadata).toMatchObject({ count: 1, next: false, after: null });

    await until(async () => (await s.store.getPipelineRun(Number(run.id)))?.status === "completed", "the event's run to complete");
    const stored = await s.store.getPipelineRun(Number(run.id));
    const output = (await s.runtime.outputs.read("uploads", String(stored?.executionPartition), "echo_event")) as JsonObject;
    expect(output).toEqual({ event, pipeline: "uploads" });

    // the same upload elsewhere, or outside raw/, matches nothing: 200, an empty list, no run
    const before = await runCount();
    for (const other of [s3Event("other-bucket", "raw/orders.csv"), s3Event("my-data-bucket", "archive/orders.csv")]) {
      const none = await sendEvent(other, { bearer: EVENTS_TOKEN });
      expect(none.status).toBe(200);
      expect(none.json.pipeline_runs).toEqual([]);
      expect(none.json.metadata).toMatchObject({ count: 0, next: false, after: null });
    }
    expect(await runCount()).toBe(before);
  });

  test("an EventBridge event runs each matching active trigger once (prefix and suffix filters), never an inactive one", async () => {
    const both = await sendEvent(eventBridgeEvent("raw/orders.csv"), { bearer: EVENTS_TOKEN });
    expect(both.status).toBe(201);
    expect(scheduleIdsOf(both)).toEqual([ids.csv_objects as number, ids.raw_prefix as number]);
    expect(runsOf(both).map((r) => r.pipeline_uuid).sort()).toEqual(["audit", "uploads"]);

    const prefixOnly = await sendEvent(eventBridgeEvent("raw/orders.json"), { bearer: EVENTS_TOKEN });
    expect(scheduleIdsOf(prefixOnly)).toEqual([ids.raw_prefix as number]);
    const suffixOnly = await sendEvent(eventBridgeEvent("archive/orders.csv"), { bearer: EVENTS_TOKEN });
    expect(scheduleIdsOf(suffixOnly)).toEqual([ids.csv_objects as number]);
    const notS3 = await sendEvent({ ...eventBridgeEvent("raw/orders.csv"), source: "aws.ec2" }, { bearer: EVENTS_TOKEN });
    expect(notS3.status).toBe(200);
    expect(runsOf(notS3)).toEqual([]);

    // an editor API key may send events too, with the same outcome
    const byKey = await s.call("POST", "/api/events", { role: "editor", body: eventBridgeEvent("raw/x.json") });
    expect(byKey.status).toBe(201);
    expect(scheduleIdsOf(byKey)).toEqual([ids.raw_prefix as number]);

    for (const runId of [...runsOf(both), ...runsOf(prefixOnly), ...runsOf(suffixOnly)].map((r) => Number(r.id))) {
      await until(async () => (await s.store.getPipelineRun(runId))?.status === "completed", `run ${runId} to complete`);
    }
    const inactive = await s.client.execute({ sql: "SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_schedule_id IN (?, ?)", args: [ids.switched_off as number, ids.catch_all as number] });
    expect(Number(inactive.rows[0]?.n)).toBe(0);
  });

  test("a trigger's own token (header or ?token=) fires that trigger only", async () => {
    const event = eventBridgeEvent("raw/orders.csv"); // matches csv_objects and raw_prefix
    const byHeader = await sendEvent(event, { bearer: tokens.raw_prefix as string });
    expect(byHeader.status).toBe(201);
    expect(scheduleIdsOf(byHeader)).toEqual([ids.raw_prefix as number]);
    const byQuery = await sendEvent(event, { query: tokens.csv_objects as string });
    expect(scheduleIdsOf(byQuery)).toEqual([ids.csv_objects as number]);
    // the code trigger's token from triggers.yaml: the EventBridge event is not its shape
    const wrongShape = await sendEvent(event, { bearer: S3_TRIGGER_TOKEN });
    expect(wrongShape.status).toBe(200);
    expect(runsOf(wrongShape)).toEqual([]);
    // an inactive trigger's token is valid, and its trigger matches nothing
    const before = await runCount();
    const inactive = await sendEvent({ anything: true }, { bearer: tokens.catch_all as string });
    expect(inactive.status).toBe(200);
    expect(runsOf(inactive)).toEqual([]);
    expect(await runCount()).toBe(before);
  });

  test("without a valid token: 401 (a viewer key 403), and nothing written", async () => {
    const before = await runCount();
    const event = eventBridgeEvent("raw/orders.csv");
    expect((await sendEvent(event)).status).toBe(401);
    expect((await sendEvent(event, { bearer: "not-a-token-of-anything-0123" })).status).toBe(401);
    expect((await sendEvent(event, { query: "not-a-token-of-anything-0123" })).status).toBe(401);
    expect((await sendEvent(event, { bearer: `${EVENTS_TOKEN}x` })).status).toBe(401);
    expect((await sendEvent(event, { bearer: "kiln_not_a_real_key" })).status).toBe(401);
    const unauthenticated = await sendEvent(event);
    expect((unauthenticated.json.error as { code: string }).code).toBe("unauthenticated");
    const viewer = await s.call("POST", "/api/events", { role: "viewer", body: event });
    expect(viewer.status).toBe(403);
    // a bad body without credentials is still a 401: nothing about the request is told
    expect((await sendEvent("[1, 2]")).status).toBe(401);
    expect(await runCount()).toBe(before);
  });

  test("malformed bodies and queries are 400 naming the problem, and nothing is written", async () => {
    const before = await runCount();
    for (const body of ["not json", "[1, 2]", '"text"', "42", "null", "true", "", "   ", '{"a": 1'] as const) {
      const answer = await sendEvent(body, { bearer: EVENTS_TOKEN });
      expect([body, answer.status]).toEqual([body, 400]);
      const error = answer.json.error as { message: string; details: Array<{ field: string }> };
      expect(error.message.length).toBeGreaterThan(0);
      expect(error.details.map((d) => d.field)).toContain("body");
    }
    const extraQuery = await fetch(`${s.url}/api/events?token=${EVENTS_TOKEN}&bogus=1`, { method: "POST", body: "{}" });
    expect(extraQuery.status).toBe(400);
    expect(await runCount()).toBe(before);
  });
});

describe("event patterns through the schedule API", () => {
  test("shown on the trigger, changed and cleared by PUT; an event trigger gets a token", async () => {
    const schedule = await createTrigger("audit", { name: "json_objects", schedule_type: "event", status: "active", event_pattern: { detail: { object: { key: [{ suffix: ".json" }] } } } });
    expect(schedule.event_pattern).toEqual({ detail: { object: { key: [{ suffix: ".json" }] } } });
    expect(String(schedule.token)).toMatch(/^[0-9a-f]{32}$/);
    const token = String(schedule.token);

    const fired = await sendEvent(eventBridgeEvent("raw/a.json"), { bearer: token });
    expect(scheduleIdsOf(fired)).toEqual([Number(schedule.id)]);

    const changed = await s.call("PUT", `/api/pipeline_schedules/${schedule.id}`, { role: "editor", body: { pipeline_schedule: { event_pattern: { detail: { object: { key: [{ suffix: ".parquet" }] } } } } } });
    expect(changed.status).toBe(200);
    expect((changed.json.pipeline_schedule as Record<string, unknown>).event_pattern).toEqual({ detail: { object: { key: [{ suffix: ".parquet" }] } } });
    expect(runsOf(await sendEvent(eventBridgeEvent("raw/a.json"), { bearer: token }))).toEqual([]);
    expect(scheduleIdsOf(await sendEvent(eventBridgeEvent("raw/a.parquet"), { bearer: token }))).toEqual([Number(schedule.id)]);

    // deactivated, it matches nothing
    await s.call("PUT", `/api/pipeline_schedules/${schedule.id}`, { role: "editor", body: { pipeline_schedule: { status: "inactive" } } });
    expect(runsOf(await sendEvent(eventBridgeEvent("raw/a.parquet"), { bearer: token }))).toEqual([]);

    const cleared = await s.call("PUT", `/api/pipeline_schedules/${schedule.id}`, { role: "editor", body: { pipeline_schedule: { event_pattern: null, status: "active" } } });
    expect((cleared.json.pipeline_schedule as Record<string, unknown>).event_pattern).toBeNull();
    expect(runsOf(await sendEvent(eventBridgeEvent("raw/a.parquet"), { bearer: token }))).toEqual([]);
  });

  test("a bad pattern is 422 naming its place, a pattern on a time trigger 422, and nothing is written", async () => {
    const before = Number((await s.client.execute("SELECT count(*) AS n FROM pipeline_schedules")).rows[0]?.n);
    const cases: Array<[JsonObject, number, string]> = [
      [{ name: "bad1", schedule_type: "event", event_pattern: { detail: { key: [{ prefix: 3 }] } } }, 422, "event_pattern.detail.key[0].prefix"],
      [{ name: "bad2", schedule_type: "event", event_pattern: { source: [] } }, 422, "event_pattern.source"],
      [{ name: "bad3", schedule_type: "event", event_pattern: { size: [{ numeric: ["~", 1] }] } }, 422, "event_pattern.size[0].numeric"],
      [{ name: "bad4", schedule_type: "time", schedule_interval: "@daily", event_pattern: { source: ["aws.s3"] } }, 422, "event_pattern"],
      [{ name: "bad5", schedule_type: "event", event_pattern: "aws.s3" }, 400, "pipeline_schedule.event_pattern"],
    ];
    for (const [body, status, field] of cases) {
      const answer = await s.call("POST", "/api/pipelines/audit/pipeline_schedules", { role: "editor", body: { pipeline_schedule: body } });
      expect([body.name, answer.status]).toEqual([body.name, status]);
      expect((answer.json.error as { details: Array<{ field: string }> }).details.map((d) => d.field)).toContain(field);
    }
    const onTimeTrigger = await createTrigger("audit", { name: "hourly", schedule_type: "time", schedule_interval: "@hourly" });
    const put = await s.call("PUT", `/api/pipeline_schedules/${onTimeTrigger.id}`, { role: "editor", body: { pipeline_schedule: { event_pattern: { a: [1] } } } });
    expect(put.status).toBe(422);
    expect(((await s.call("GET", `/api/pipeline_schedules/${onTimeTrigger.id}`)).json.pipeline_schedule as Record<string, unknown>).event_pattern).toBeNull();
    expect(Number((await s.client.execute("SELECT count(*) AS n FROM pipeline_schedules")).rows[0]?.n)).toBe(before + 1);
  });
});
