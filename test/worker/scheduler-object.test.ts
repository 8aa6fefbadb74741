/**
 * kiln on workerd with D1 and the scheduler Durable Object, end to end: the shop fixture built by
 * `kiln build worker`, bundled by `wrangler deploy --dry-run`, run in Miniflare (workerd) with
 * Miniflare's D1 as the database and the KilnScheduler object, served over loopback HTTP. Cron
 * firings go through the Worker's scheduled handler; the test reads D1 through the same adapter.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { Miniflare } from "miniflare";
import { createApiKey, createUser } from "@kiln/core/auth";
import { generateSecretKey } from "@kiln/core/runtime";
import { Store, type SqlClient } from "@kiln/core/store";
import { d1Client, WORKER_PASSWORD_ITERATIONS, type D1Database, type TickRecord } from "@kiln/worker";
import { CLI_MAIN, REPO_ROOT } from "../helpers/fixtures.ts";
import { bundleWorker } from "../helpers/wrangler.ts";

const PROJECT = join(REPO_ROOT, "test/worker/fixtures/shop");
const PASSWORD = "correct horse battery";

let dir: string;
let mf: Miniflare | null = null;
let url: string;
let db: SqlClient;
let adminKey: string;
/** What the Worker and its scheduler object printed (workerd's stdout and stderr). */
let printed = "";

/** A request to the Worker over HTTP, with the admin key unless `key` says otherwise. */
async function call(method: string, path: string, options: { key?: string | null; body?: unknown } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const key = options.key === undefined ? adminKey : options.key;
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${url}${path}`, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  const text = await response.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: response.status, json };
}

/** Fires the Worker's cron trigger once (it only wakes the scheduler object). */
async function cronFiring(): Promise<void> {
  const worker = (await mf!.getWorker()) as unknown as { scheduled(options: { cron: string; scheduledTime: Date }): Promise<unknown> };
  await worker.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
}

/** The scheduler object's own record: its latest tick, the ones before, its alarm. */
async function schedulerRecord(): Promise<{ record: TickRecord | null; history: TickRecord[]; alarm: number | null; running: boolean }> {
  const namespace = (await mf!.getDurableObjectNamespace("KILN_SCHEDULER")) as unknown as {
    idFromName(name: string): unknown;
    get(id: unknown): { fetch(url: string): Promise<Response> };
  };
  const response = await namespace.get(namespace.idFromName("scheduler")).fetch("https://kiln-scheduler/tick");
  return (await response.json()) as { record: TickRecord | null; history: TickRecord[]; alarm: number | null; running: boolean };
}

async function runStatus(id: number): Promise<string> {
  const rs = await db.execute({ sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [id] });
  return String(rs.rows[0]?.status ?? "missing");
}

async function blockRunsOf(runId: number): Promise<Record<string, { status: string; attempt: number }>> {
  const rs = await db.execute({ sql: "SELECT block_uuid, status, attempt FROM block_runs WHERE pipeline_run_id = ?", args: [runId] });
  return Object.fromEntries(rs.rows.map((row) => [String(row.block_uuid), { status: String(row.status), attempt: Number(row.attempt) }]));
}

/** Polls until the run has ended (or `limitMs` passes), and returns its status. */
async function settled(id: number, limitMs = 45_000): Promise<string> {
  const deadline = Date.now() + limitMs;
  let status = await runStatus(id);
  while (!["completed", "failed", "cancelled"].includes(status) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    status = await runStatus(id);
  }
  return status;
}

/** The id and token of a pipeline's API trigger, read through the Worker's API. */
async function apiTrigger(pipeline: string, name?: string): Promise<{ id: number; token: string }> {
  const schedules = await call("GET", `/api/pipelines/${pipeline}/pipeline_schedules`);
  expect(schedules.status).toBe(200);
  const found = (schedules.json.pipeline_schedules as Array<{ id: number; name: string; token: string; schedule_type: string }>).find((s) => s.schedule_type === "api" && (name === undefined || s.name === name));
  if (!found) throw new Error(`no API trigger on ${pipeline}`);
  return found;
}

/** Mage's API-trigger request: no credentials, the token in the path; the new run's id. */
async function trigger(t: { id: number; token: string }, variables: Record<string, unknown>): Promise<number> {
  const created = await call("POST", `/api/pipeline_schedules/${t.id}/pipeline_runs/${t.token}`, { key: null, body: { pipeline_run: { variables } } });
  expect(created.status).toBe(201);
  return (created.json.pipeline_run as { id: number }).id;
}

beforeAll(async () => {
  dir = join(REPO_ROOT, "test-artifacts", `worker-do-${crypto.randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  const built = spawnSync("bun", [CLI_MAIN, "build", "worker", PROJECT, "--out", join(dir, "build"), "--tick-seconds", "2", "--grace-seconds", "20"], { cwd: REPO_ROOT, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`kiln build worker failed (${built.status}): ${built.stderr}`);
  writeFileSync(
    join(dir, "wrangler.toml"),
    [
      'name = "kiln-do-test"',
      'main = "build/index.ts"',
      'compatibility_date = "2026-04-01"',
      'compatibility_flags = ["nodejs_compat"]',
      "",
    ].join("\n"),
  );
  bundleWorker(dir);
  mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist/index.js"),
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2026-04-01",
    compatibilityFlags: ["nodejs_compat"],
    host: "127.0.0.1",
    port: 0,
    d1Databases: { DB: "kiln" },
    d1Persist: join(dir, "d1"),
    durableObjects: { KILN_SCHEDULER: { className: "KilnScheduler", useSQLite: true } },
    durableObjectsPersist: join(dir, "do"),
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      for (const stream of [stdout, stderr]) stream.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    },
    // a short tick, so a block that outlasts it shows the hand-over to the next tick
    bindings: { KILN_SECRET_KEY: generateSecretKey(), KILN_TICK_SECONDS: "2", KILN_TICK_GRACE_SECONDS: "20" },
  });
  url = (await mf.ready).toString().replace(/\/$/, "");
  db = d1Client((await mf.getD1Database("DB")) as unknown as D1Database);
  // the same migrations the Worker runs; then an admin key and a UI user, as the CLI would make them
  await Store.open(db);
  adminKey = (await createApiKey(db, { name: "do-test-admin", role: "admin" }, Date.now())).key;
  await createUser(db, { username: "ops", password: PASSWORD, role: "editor" }, Date.now(), { iterations: WORKER_PASSWORD_ITERATIONS });
}, 180_000);

afterAll(async () => {
  await mf?.dispose();
  if (dir && !process.env.KILN_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("the scheduler Durable Object on workerd, with D1", () => {
  test("an API-triggered run starts and completes without any cron firing", async () => {
    const id = await trigger(await apiTrigger("minutely", "on_demand"), { date: "2024-01-15" });
    expect(await settled(id)).toBe("completed");
    expect(await blockRunsOf(id)).toEqual({ extract: { status: "completed", attempt: 1 }, summarize: { status: "completed", attempt: 1 } });
    const output = await db.execute({
      sql: "SELECT o.value FROM block_outputs o JOIN pipeline_runs r ON r.execution_partition = o.execution_partition WHERE o.block_uuid = 'summarize' AND r.id = ?",
      args: [id],
    });
    expect(JSON.parse(String(output.rows[0]?.value))).toEqual({ total: 12, date: "2024-01-15", source: "worker-test" });
    // no cron fired: the route woke the object, whose tick ran it
    const { history } = await schedulerRecord();
    expect(history.length).toBeGreaterThan(0);
  }, 60_000);

  test("two cron firings and an API trigger racing a running block: one tick at a time, no block run twice", async () => {
    const slow = await apiTrigger("slow");
    const first = await trigger(slow, { wait_ms: 3000 });
    // wait until the block is running inside a tick, then race two cron firings and another trigger against it
    const deadline = Date.now() + 30_000;
    while ((await blockRunsOf(first)).wait_a_bit?.status !== "running" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await blockRunsOf(first)).wait_a_bit?.status).toBe("running");
    const [, , second] = await Promise.all([cronFiring(), cronFiring(), trigger(slow, { wait_ms: 500 })]);
    expect(await settled(first)).toBe("completed");
    expect(await settled(second)).toBe("completed");
    // every block ran once, as attempt 1: no tick took over a block another tick was running
    for (const id of [first, second]) {
      expect(await blockRunsOf(id)).toEqual({ wait_a_bit: { status: "completed", attempt: 1 }, after_wait: { status: "completed", attempt: 1 } });
    }
    // the object's record: ticks one after another, none starting before the one before it ended
    const { history } = await schedulerRecord();
    expect(history.length).toBeGreaterThan(1);
    for (let i = 1; i < history.length; i++) {
      expect(history[i]!.startedAt).toBeGreaterThanOrEqual(history[i - 1]!.endedAt!);
      expect(history[i]!.previous).toBe("ended");
    }
    // the first run outlasted its 2-s tick: the next tick took it over, and says it was handed on
    // (not that a scheduler "stopped heartbeating", which no tick does)
    expect(printed).toMatch(new RegExp(`taking over pipeline run ${first} from worker-tick-[0-9a-f-]+, an earlier tick, which ended and handed its unfinished runs on`));
    expect(printed).not.toContain("stopped heartbeating");
    // the minutely trigger's run from the cron firings' ticks is there once per minute at most
    const minutely = await db.execute("SELECT execution_date, count(*) AS n FROM pipeline_runs WHERE pipeline_uuid = 'minutely' AND pipeline_schedule_id IS NOT NULL GROUP BY pipeline_schedule_id, execution_date HAVING n > 1");
    expect(minutely.rows).toEqual([]);
  }, 90_000);

  test("the UI's run page turns completed live, and its log panel shows the block's log", async () => {
    const login = await fetch(`${url}/ui/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: url },
      body: new URLSearchParams({ username: "ops", password: PASSWORD, next: "/ui" }),
    });
    expect(login.status).toBe(303);
    const cookie = /kiln_session=[^;]+/.exec(login.headers.get("set-cookie") ?? "")?.[0];
    expect(cookie).toBeString();
    const id = await trigger(await apiTrigger("slow"), { wait_ms: 1500 });
    const page = await fetch(`${url}/ui/runs/${id}`, { headers: { cookie: cookie! } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`/api/pipeline_runs/${id}/logs/stream`);

    // the live region: fragments as the run moves, to the end (the stream keeps its database handle)
    const events = await fetch(`${url}/ui/runs/${id}/events`, { headers: { cookie: cookie!, accept: "text/event-stream" } });
    expect(events.status).toBe(200);
    const live = await events.text();
    const statuses = [...live.matchAll(/"status":"(\w+)"/g)].map((m) => m[1]);
    expect(live).not.toContain("the stream failed");
    expect(statuses).toContain("running");
    expect(statuses.at(-1)).toBe("completed");
    expect(statuses.indexOf("running")).toBeLessThan(statuses.lastIndexOf("completed"));

    // the log panel's stream: the block's lines from the database, then the end
    const logs = await fetch(`${url}/api/pipeline_runs/${id}/logs/stream`, { headers: { cookie: cookie! } });
    expect(logs.status).toBe(200);
    const text = await logs.text();
    expect(text).toContain("waiting 1500 ms");
    expect(text).toContain("done waiting");
    expect(text).toContain("event: end");
    const page2 = await call("GET", `/api/pipeline_runs/${id}/logs?_limit=100`);
    expect(page2.status).toBe(200);
    expect(JSON.stringify(page2.json.logs)).toContain("waiting 1500 ms");
  }, 90_000);
});
