/** /api/health, /api/status and /metrics over HTTP, with figures checked against runs held in known states. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { lostRaces } from "@kiln/core/engine";
import * as notify from "@kiln/core/notify";
import { MIGRATIONS, Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { createApp } from "@kiln/server";
import { until } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

/** One run at a time of `gated`; each waits for the file named by its `gate` variable. */
const FILES: Record<string, string> = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/gated/metadata.yaml":
    "concurrency_config:\n  pipeline_run_limit: 1\n  pipeline_run_limit_all_triggers: 1\n" +
    "blocks:\n  - uuid: wait\n    type: data_loader\n  - uuid: then\n    type: transformer\n    upstream_blocks: [wait]\n",
  "data_loaders/wait.js":
    "import { existsSync } from 'node:fs';\n" +
    "export default async function wait(ctx) {\n" +
    "  while (!existsSync(ctx.variables.gate)) await new Promise((r) => setTimeout(r, 20));\n" +
    "  return 1;\n" +
    "}\n",
  "transformers/then.js": "export default function then(x) { return x; }\n",
};

let s: ServerFixture;
beforeAll(async () => {
  s = await serverFixture(FILES);
});
afterAll(() => s.close());

interface Exposition {
  /** `name{labels}` as written -> value. */
  samples: Map<string, number>;
  types: Map<string, string>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?(?:[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)|NaN|\+Inf|-Inf)$/;

/** Parses Prometheus's text exposition format strictly: every line a HELP, a TYPE or a sample of a typed metric. */
function parseExposition(text: string): Exposition {
  expect(text.endsWith("\n")).toBe(true);
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.slice(0, -1).split("\n")) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|histogram|summary|untyped)$/.exec(line);
    if (type) {
      expect(types.has(type[1]!)).toBe(false);
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* \S/.test(line)) continue;
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`);
    expect([line, types.has(sample[1]!)]).toEqual([line, true]);
    const key = `${sample[1]}${sample[2] ?? ""}`;
    expect(samples.has(key)).toBe(false);
    samples.set(key, Number(sample[3]));
  }
  return { samples, types };
}

async function metrics(): Promise<Exposition> {
  const response = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.keys.viewer}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain");
  return parseExposition(await response.text());
}

async function runCounts(): Promise<Record<string, number>> {
  const rs = await s.client.execute("SELECT status, count(*) AS n FROM pipeline_runs GROUP BY status");
  return Object.fromEntries(rs.rows.map((r) => [String(r.status), Number(r.n)]));
}

describe("health, status and metrics", () => {
  test("health is public; status and metrics need credentials (401 without, 200 for a viewer)", async () => {
    const health = await s.call("GET", "/api/health", { role: null });
    expect(health).toEqual({ status: 200, json: { status: "ok" } });
    expect((await s.call("GET", "/api/status", { role: null })).status).toBe(401);
    expect((await s.call("GET", "/api/status", { role: "viewer" })).status).toBe(200);
    expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${s.url}/metrics`, { headers: { authorization: "Bearer kiln_wrong" } })).status).toBe(401);
    expect((await s.call("GET", "/api/status?x=1", { role: null })).status).toBe(401);
  });

  test("runs held waiting and running, then completed, are counted by status in /api/status and /metrics", async () => {
    const gate = join(s.root, "gate");
    const created = await s.call("POST", "/api/pipelines/gated/pipeline_schedules", { body: { pipeline_schedule: { name: "api", schedule_type: "api", status: "active" } } });
    const scheduleId = (created.json.pipeline_schedule as { id: number }).id;
    for (let i = 0; i < 3; i++) {
      const run = await s.call("POST", `/api/pipeline_schedules/${scheduleId}/pipeline_runs`, { body: { pipeline_run: { variables: { gate } } } });
      expect(run.status).toBe(201);
    }
    // one runs (blocked on its gate); the pipeline's run limit holds the other two waiting
    await until(async () => {
      const counts = await runCounts();
      const blocks = await s.client.execute("SELECT count(*) AS n FROM block_runs WHERE status = 'running'");
      return counts.running === 1 && counts.initial === 2 && Number(blocks.rows[0]?.n) === 1;
    }, "one run running (its first block too) and two waiting");
    // a notification waiting for its retry counts as pending; one given up does not
    const later = Date.now() + 3_600_000;
    await s.client.execute({
      sql: "INSERT INTO notifications (kind, target, payload, next_attempt_at, created_at) VALUES ('webhook', 'http://127.0.0.1:9/', '{}', ?, ?), ('webhook', 'http://127.0.0.1:9/', '{}', ?, ?)",
      args: [later, Date.now(), notify.GAVE_UP_AT, Date.now()],
    });

    const held = await metrics();
    for (const name of ["kiln_pipeline_runs", "kiln_block_runs", "kiln_queue_depth", "kiln_scheduler_heartbeat_age_seconds", "kiln_scheduler_tick_lag_seconds", "kiln_notifications_pending"]) {
      expect([name, held.types.get(name)]).toEqual([name, "gauge"]);
    }
    expect(held.samples.get('kiln_pipeline_runs{status="running"}')).toBe(1);
    expect(held.samples.get('kiln_pipeline_runs{status="initial"}')).toBe(2);
    expect(held.samples.get('kiln_pipeline_runs{status="completed"}')).toBe(0);
    expect(held.samples.get('kiln_pipeline_runs{status="failed"}')).toBe(0);
    expect(held.samples.get('kiln_pipeline_runs{status="cancelled"}')).toBe(0);
    expect(held.samples.get('kiln_block_runs{status="running"}')).toBe(1);
    expect(held.samples.get("kiln_queue_depth")).toBe(2);
    expect(held.samples.get("kiln_notifications_pending")).toBe(1);
    const age = held.samples.get(`kiln_scheduler_heartbeat_age_seconds{scheduler="${s.scheduler.id}",host="localhost"}`);
    expect(age).toBeGreaterThanOrEqual(0);

    const status = await s.call("GET", "/api/status", { role: "viewer" });
    expect(status.status).toBe(200);
    const body = status.json.status as Record<string, unknown>;
    expect(body.version).toBe("test");
    expect(body.database).toEqual({ reachable: true, migration_version: Math.max(...MIGRATIONS.map((m) => m.id)) });
    expect(body.pipeline_runs).toEqual({ initial: 2, running: 1, completed: 0, failed: 0, cancelled: 0 });
    expect(body.queue_depth).toBe(2);
    expect(body.notifications_pending).toBe(1);
    const schedulers = body.schedulers as Array<Record<string, unknown>>;
    const ours = schedulers.find((x) => x.id === s.scheduler.id);
    expect(ours).toMatchObject({ host: "localhost", pid: null });
    expect(Number(ours?.beats)).toBeGreaterThanOrEqual(1);
    expect(Number.isFinite(Date.parse(String(ours?.heartbeat_at)))).toBe(true);
    expect(Number.isFinite(Date.parse(String(ours?.started_at)))).toBe(true);

    writeFileSync(gate, "");
    await until(async () => (await runCounts()).completed === 3, "the three runs to complete");
    const done = await metrics();
    expect(done.samples.get('kiln_pipeline_runs{status="completed"}')).toBe(3);
    expect(done.samples.get('kiln_pipeline_runs{status="initial"}')).toBe(0);
    expect(done.samples.get('kiln_pipeline_runs{status="running"}')).toBe(0);
    expect(done.samples.get('kiln_block_runs{status="completed"}')).toBe(6);
    expect(done.samples.get('kiln_block_runs{status="running"}')).toBe(0);
    expect(done.samples.get("kiln_queue_depth")).toBe(0);
  });

  test("tick lag is how long the most overdue active trigger has waited; a stopped scheduler's heartbeat is gone", async () => {
    await s.scheduler.stop(5_000);
    const created = await s.call("POST", "/api/pipelines/gated/pipeline_schedules", {
      body: { pipeline_schedule: { name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active" } },
    });
    expect(created.status).toBe(201);
    // with no scheduler ticking, its next run was due two minutes ago and nobody created it
    await s.client.execute({ sql: "UPDATE pipeline_schedules SET next_run_at = ? WHERE id = ?", args: [Date.now() - 120_000, (created.json.pipeline_schedule as { id: number }).id] });
    const lagging = await metrics();
    expect(lagging.samples.get("kiln_scheduler_tick_lag_seconds")).toBeGreaterThanOrEqual(120);
    expect(lagging.samples.get("kiln_scheduler_tick_lag_seconds")).toBeLessThan(3600);
    expect([...lagging.samples.keys()].some((k) => k.startsWith("kiln_scheduler_heartbeat_age_seconds"))).toBe(false);
    const status = await s.call("GET", "/api/status", { role: "viewer" });
    expect((status.json.status as { schedulers: unknown[] }).schedulers).toEqual([]);
  });

  test("races this process lost to other replicas are a counter by kind, every kind present", async () => {
    const before = await metrics();
    expect(before.types.get("kiln_races_lost_total")).toBe("counter");
    for (const kind of ["run_create", "run_start", "run_takeover", "run_taken_over", "outcome_recorded", "lease"]) {
      expect(before.samples.has(`kiln_races_lost_total{kind="${kind}"}`)).toBe(true);
    }
    lostRaces.lost("lease");
    const after = await metrics();
    const key = 'kiln_races_lost_total{kind="lease"}';
    expect(after.samples.get(key)).toBe(before.samples.get(key)! + 1);
  });

  test("label values are escaped as the format requires", async () => {
    await s.client.execute({ sql: "INSERT INTO schedulers (id, host, pid, started_at, heartbeat_at, beats) VALUES (?, ?, 7, ?, ?, 1)", args: ['odd"id\\x', "line\nbreak", Date.now(), Date.now()] });
    const parsed = await metrics();
    expect([...parsed.samples.keys()]).toContain('kiln_scheduler_heartbeat_age_seconds{scheduler="odd\\"id\\\\x",host="line\\nbreak"}');
  });

  test("status answers 503 when the database cannot be reached; health still answers", async () => {
    const client = await openDatabase(`file:${join(s.root, "elsewhere.db")}`);
    const store = await Store.open(client);
    client.close();
    // authentication off: with it on, checking the key would need the database first
    const app = createApp({ store, project: () => s.project, clock: store.clock, version: "test", authEnabled: false, secretKey: null, bodyLimitBytes: 1024 }, { log: () => {} });
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
    try {
      const status = await fetch(`http://127.0.0.1:${server.port}/api/status`);
      expect(status.status).toBe(503);
      expect(((await status.json()) as { status: { database: unknown } }).status.database).toEqual({ reachable: false, migration_version: null });
      expect((await fetch(`http://127.0.0.1:${server.port}/api/health`)).status).toBe(200);
    } finally {
      server.stop(true);
    }
  });
});
