/**
 * kiln as a Cloudflare Worker, end to end: a real libSQL server (sqld) holds the state, the
 * Worker runs under workerd (`wrangler dev --test-scheduled`) with its scheduler Durable Object,
 * built from a project by `kiln build worker`. Cron firings go through /__scheduled (they only
 * wake the scheduler object), requests through the Worker's fetch.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, type Client } from "@libsql/client";
import { createApiKey } from "@kiln/core/auth";
import { generateSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { CLI_MAIN, REPO_ROOT } from "../helpers/fixtures.ts";
import { startSqld, startWranglerDev, tail, type Started } from "./processes.ts";

const PROJECT = join(REPO_ROOT, "test/worker/fixtures/shop");

let dir: string;
let sqld: Started | null = null;
let worker: Started | null = null;
let client: Client;
let adminKey: string;
const secretKey = generateSecretKey();

/** A request to the Worker, with the admin key unless `key` says otherwise. */
async function call(method: string, path: string, options: { key?: string | null; body?: unknown } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const key = options.key === undefined ? adminKey : options.key;
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${worker!.url}${path}`, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  const text = await response.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: response.status, json };
}

/** Fires the Worker's cron trigger once: it wakes the scheduler object, whose tick runs after. */
async function cronTick(): Promise<void> {
  const response = await fetch(`${worker!.url}/__scheduled?cron=${encodeURIComponent("* * * * *")}`);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`/__scheduled answered ${response.status}: ${text}\n${tail(worker!.logFile)}`);
}

async function runsOf(pipelineUuid: string): Promise<Array<{ id: number; status: string; schedule: string | null }>> {
  const rs = await client.execute({
    sql: "SELECT r.id, r.status, s.name AS schedule FROM pipeline_runs r LEFT JOIN pipeline_schedules s ON s.id = r.pipeline_schedule_id WHERE r.pipeline_uuid = ? ORDER BY r.id",
    args: [pipelineUuid],
  });
  return rs.rows.map((row) => ({ id: Number(row.id), status: String(row.status), schedule: row.schedule === null ? null : String(row.schedule) }));
}

/** Polls until `check` holds or `limitMs` passes (ticks run in the scheduler object, after the request that woke it). */
async function eventually(check: () => Promise<boolean>, limitMs = 40_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

async function blockRunsOf(runId: number): Promise<Record<string, { status: string; attempt: number }>> {
  const rs = await client.execute({ sql: "SELECT block_uuid, status, attempt FROM block_runs WHERE pipeline_run_id = ?", args: [runId] });
  return Object.fromEntries(rs.rows.map((row) => [String(row.block_uuid), { status: String(row.status), attempt: Number(row.attempt) }]));
}

async function outputOf(pipelineUuid: string, blockUuid: string, runId: number): Promise<unknown> {
  const rs = await client.execute({
    sql: "SELECT o.value FROM block_outputs o JOIN pipeline_runs r ON r.execution_partition = o.execution_partition WHERE o.pipeline_uuid = ? AND o.block_uuid = ? AND r.id = ?",
    args: [pipelineUuid, blockUuid, runId],
  });
  const row = rs.rows[0];
  return row ? (JSON.parse(String(row.value)) as unknown) : undefined;
}

beforeAll(async () => {
  dir = join(REPO_ROOT, "test-artifacts", `worker-${crypto.randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  sqld = await startSqld(dir);
  client = createClient({ url: sqld.url });
  // the same migrations the Worker runs; then an admin key, as `kiln api-key create` would make
  await Store.open(client);
  adminKey = (await createApiKey(client, { name: "worker-test-admin", role: "admin" }, Date.now())).key;

  const built = spawnSync("bun", [CLI_MAIN, "build", "worker", PROJECT, "--out", join(dir, "build"), "--tick-seconds", "1", "--grace-seconds", "20"], { cwd: REPO_ROOT, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`kiln build worker failed (${built.status}): ${built.stderr}`);
  writeFileSync(
    join(dir, "wrangler.toml"),
    [
      'name = "kiln-worker-test"',
      'main = "build/index.ts"',
      'compatibility_date = "2026-04-01"',
      'compatibility_flags = ["nodejs_compat"]',
      "[[durable_objects.bindings]]",
      'name = "KILN_SCHEDULER"',
      'class_name = "KilnScheduler"',
      "[[migrations]]",
      'tag = "v1"',
      'new_sqlite_classes = ["KilnScheduler"]',
      "[triggers]",
      'crons = ["* * * * *"]',
      "[vars]",
      `LIBSQL_URL = "${sqld.url}"`,
      // a short tick, so a block that outlasts it shows the hand-over to the next tick
      'KILN_TICK_SECONDS = "1"',
      'KILN_TICK_GRACE_SECONDS = "20"',
      "",
    ].join("\n"),
  );
  // secrets come from .dev.vars under wrangler dev, as from `wrangler secret put` when deployed
  writeFileSync(join(dir, ".dev.vars"), `KILN_SECRET_KEY=${secretKey}\n`);
  worker = await startWranglerDev(dir);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await sqld?.stop();
  client?.close();
  // KILN_TEST_KEEP=1 keeps the folder, with the logs of sqld and wrangler
  if (dir && !process.env.KILN_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("kiln on workerd with a libSQL server", () => {
  test("the cron tick turns the every-minute trigger into a run whose in-Worker blocks complete", async () => {
    expect(await runsOf("minutely")).toEqual([]);
    await cronTick();
    await eventually(async () => (await runsOf("minutely")).some((r) => r.schedule === "every_minute" && r.status === "completed"));
    const runs = (await runsOf("minutely")).filter((r) => r.schedule === "every_minute");
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe("completed");
    expect(await blockRunsOf(runs[0]!.id)).toEqual({ extract: { status: "completed", attempt: 1 }, summarize: { status: "completed", attempt: 1 } });
    // the .js block read the .ts block's output, stored in the database (the Worker has no disk)
    expect(await outputOf("minutely", "summarize", runs[0]!.id)).toEqual({ total: 12, date: null, source: "worker-test" });
    // the same run through the Worker's API
    const listed = await call("GET", `/api/pipeline_runs/${runs[0]!.id}`);
    expect(listed.status).toBe(200);
    expect(listed.json.pipeline_run).toMatchObject({ id: runs[0]!.id, pipeline_uuid: "minutely", status: "completed" });
  }, 60_000);

  test("the seeds' API-trigger request creates a run, which starts at once and completes without a cron firing", async () => {
    const schedules = await call("GET", "/api/pipelines/minutely/pipeline_schedules");
    expect(schedules.status).toBe(200);
    const onDemand = (schedules.json.pipeline_schedules as Array<{ id: number; name: string; token: string | null }>).find((s) => s.name === "on_demand");
    expect(onDemand?.token).toBeString();
    // Mage's documented request, as is: no credentials, the token in the path
    const body = { pipeline_run: { variables: { date: "2024-01-15", env: "production" } } };
    const wrong = await call("POST", `/api/pipeline_schedules/${onDemand!.id}/pipeline_runs/not-the-token`, { key: null, body });
    expect(wrong.status).toBe(401);
    const created = await call("POST", `/api/pipeline_schedules/${onDemand!.id}/pipeline_runs/${onDemand!.token}`, { key: null, body });
    expect(created.status).toBe(201);
    const run = created.json.pipeline_run as { id: number; status: string; variables: Record<string, unknown> };
    expect(run.variables).toEqual({ date: "2024-01-15", env: "production" });
    // the route woke the scheduler object: no cron firing is needed
    await eventually(async () => (await runsOf("minutely")).find((r) => r.id === run.id)?.status === "completed");
    expect((await runsOf("minutely")).find((r) => r.id === run.id)?.status).toBe("completed");
    expect(await outputOf("minutely", "summarize", run.id)).toEqual({ total: 12, date: "2024-01-15", source: "worker-test" });
  }, 60_000);

  test("a block that outlasts the tick finishes in its grace period; the next tick, started at once, runs the rest", async () => {
    const schedules = await call("GET", "/api/pipelines/slow/pipeline_schedules");
    const slow = (schedules.json.pipeline_schedules as Array<{ id: number; token: string }>)[0]!;
    const created = await call("POST", `/api/pipeline_schedules/${slow.id}/pipeline_runs/${slow.token}`, { key: null, body: { pipeline_run: { variables: { wait_ms: 3000 } } } });
    expect(created.status).toBe(201);
    const runId = (created.json.pipeline_run as { id: number }).id;

    await eventually(async () => (await runsOf("slow")).find((r) => r.id === runId)?.status === "completed");
    expect((await runsOf("slow")).find((r) => r.id === runId)?.status).toBe("completed");
    // each block ran once: the hand-over lost no attempt
    expect(await blockRunsOf(runId)).toEqual({ wait_a_bit: { status: "completed", attempt: 1 }, after_wait: { status: "completed", attempt: 1 } });
    expect(await outputOf("slow", "after_wait", runId)).toBe("waited, then ran");
  }, 90_000);

  test("authentication is on, and an @always_on trigger is refused with the reason and what to use instead", async () => {
    expect((await call("GET", "/api/pipeline_runs", { key: null })).status).toBe(401);
    expect((await call("GET", "/api/health", { key: null })).status).toBe(200);
    const refused = await call("POST", "/api/pipelines/minutely/pipeline_schedules", {
      body: { pipeline_schedule: { name: "stream", schedule_type: "time", schedule_interval: "@always_on", status: "active" } },
    });
    expect(refused.status).toBe(422);
    const error = refused.json.error as { code: string; message: string; details: Array<{ field: string }> };
    expect(error.code).toBe("unsupported_on_workers");
    expect(error.message).toContain("@always_on needs a process that never stops");
    expect(error.message).toContain("use a cron expression");
    expect(error.details[0]!.field).toBe("pipeline_schedule.schedule_interval");
    const names = ((await call("GET", "/api/pipelines/minutely/pipeline_schedules")).json.pipeline_schedules as Array<{ name: string }>).map((s) => s.name);
    expect(names).not.toContain("stream");
  }, 30_000);

  test("the web UI is served by the Worker too: the sign-in page, and a page behind it redirects there", async () => {
    const login = await fetch(`${worker!.url}/ui/login`);
    expect(login.status).toBe(200);
    expect(login.headers.get("content-type")).toContain("text/html");
    const html = await login.text();
    expect(html).toContain("<form");
    expect(html).toContain('name="password"');
    const runs = await fetch(`${worker!.url}/ui/runs`, { redirect: "manual" });
    expect(runs.status).toBe(303);
    expect(runs.headers.get("location")).toContain("/ui/login");
  }, 30_000);

  test("the Worker's secrets never reach its log", () => {
    const log = readFileSync(worker!.logFile, "utf8");
    expect(log).toContain("tick worker-tick-");
    expect(log).not.toContain(secretKey);
    expect(log).not.toContain(adminKey);
  });
});
