/**
 * A tick within its subrequest budget, on workerd with D1: a chain of 10 no-op blocks (about 6
 * subrequests each, more than a 40-subrequest tick holds) completes over several ticks, no tick's
 * invocation makes more subrequests than KILN_SUBREQUEST_BUDGET, and every block runs once. The
 * subrequests are counted twice: by the tick itself (its record) and, independently, per
 * invocation by bench/worker-instrument.ts wrapped around the Worker and its scheduler object.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { createApiKey } from "@kiln/core/auth";
import { generateSecretKey } from "@kiln/core/runtime";
import { Store, type SqlClient } from "@kiln/core/store";
import { d1Client, type D1Database, type TickRecord } from "@kiln/worker";
import type { InvocationRecord } from "../../bench/worker-instrument.ts";
import { CLI_MAIN, REPO_ROOT } from "../helpers/fixtures.ts";
import { bundleWorker } from "../helpers/wrangler.ts";

const BLOCKS = 10;
/** The default budget (DEFAULT_SUBREQUEST_BUDGET), set explicitly: it holds 2 of these block runs a tick, with each D1 statement counted. */
const BUDGET = 40;

let dir: string;
let mf: Miniflare | null = null;
let url: string;
let db: SqlClient;
let adminKey: string;

function writeProject(root: string): void {
  const files: Record<string, string> = {
    "kiln.yaml": "executor_config:\n  in_process: true\n",
    "pipelines/chain/metadata.yaml": `blocks:\n${Array.from({ length: BLOCKS }, (_, i) => `  - uuid: b${i}\n    type: custom\n${i > 0 ? `    upstream_blocks: [b${i - 1}]\n` : ""}`).join("")}`,
    "pipelines/chain/triggers.yaml": "triggers:\n  - name: api\n    schedule_type: api\n    status: active\n",
  };
  for (let i = 0; i < BLOCKS; i++) files[`custom/b${i}.js`] = "export default () => null;\n";
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

beforeAll(async () => {
  dir = join(REPO_ROOT, "test-artifacts", `worker-budget-${crypto.randomUUID()}`);
  writeProject(join(dir, "project"));
  const built = spawnSync("bun", [CLI_MAIN, "build", "worker", join(dir, "project"), "--out", join(dir, "build")], { cwd: REPO_ROOT, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`kiln build worker failed (${built.status}): ${built.stderr}`);
  writeFileSync(
    join(dir, "entry.ts"),
    [
      `import { instrumentedObject, instrumentedWorker } from ${JSON.stringify(join(REPO_ROOT, "bench/worker-instrument.ts"))};`,
      'import worker, { KilnScheduler as Base } from "./build/index.ts";',
      "export default instrumentedWorker(worker);",
      "export const KilnScheduler = instrumentedObject(Base);",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "wrangler.toml"), ['name = "kiln-budget-test"', 'main = "entry.ts"', 'compatibility_date = "2026-04-01"', 'compatibility_flags = ["nodejs_compat"]', ""].join("\n"));
  bundleWorker(dir);
  mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist/entry.js"),
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2026-04-01",
    compatibilityFlags: ["nodejs_compat"],
    host: "127.0.0.1",
    port: 0,
    d1Databases: { DB: "kiln" },
    d1Persist: join(dir, "d1"),
    durableObjects: { KILN_SCHEDULER: { className: "KilnScheduler", useSQLite: true } },
    durableObjectsPersist: join(dir, "do"),
    bindings: { KILN_SECRET_KEY: generateSecretKey(), KILN_SUBREQUEST_BUDGET: String(BUDGET) },
  });
  url = (await mf.ready).toString().replace(/\/$/, "");
  db = d1Client((await mf.getD1Database("DB")) as unknown as D1Database);
  await Store.open(db);
  adminKey = (await createApiKey(db, { name: "budget-test-admin", role: "admin" }, Date.now())).key;
}, 180_000);

afterAll(async () => {
  await mf?.dispose();
  if (dir && !process.env.KILN_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
}, 30_000);

function subrequestsOf(record: InvocationRecord): number {
  return Object.values(record.fetches).reduce((a, b) => a + b, 0) + record.d1Calls + record.objectCalls;
}

test(`a run of ${BLOCKS} no-op blocks completes over several ticks, none past a budget of ${BUDGET} subrequests, no block run twice`, async () => {
  const schedules = await fetch(`${url}/api/pipelines/chain/pipeline_schedules`, { headers: { authorization: `Bearer ${adminKey}` } });
  expect(schedules.status).toBe(200);
  const api = ((await schedules.json()) as { pipeline_schedules: Array<{ id: number; token: string; schedule_type: string }> }).pipeline_schedules.find((s) => s.schedule_type === "api")!;
  const created = await fetch(`${url}/api/pipeline_schedules/${api.id}/pipeline_runs/${api.token}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  expect(created.status).toBe(201);
  const runId = ((await created.json()) as { pipeline_run: { id: number } }).pipeline_run.id;

  const deadline = Date.now() + 90_000;
  let status = "";
  while (!["completed", "failed", "cancelled"].includes(status) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    status = String((await db.execute({ sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [runId] })).rows[0]?.status);
  }
  expect(status).toBe("completed");
  // every block ran once, as attempt 1, though the run went from tick to tick
  const blockRuns = await db.execute({ sql: "SELECT block_uuid, status, attempt FROM block_runs WHERE pipeline_run_id = ? ORDER BY block_uuid", args: [runId] });
  expect(blockRuns.rows.map((r) => `${String(r.block_uuid)}:${String(r.status)}:${Number(r.attempt)}`)).toEqual(Array.from({ length: BLOCKS }, (_, i) => `b${i}:completed:1`).sort());

  // let the last tick end and record itself
  const namespace = (await mf!.getDurableObjectNamespace("KILN_SCHEDULER")) as unknown as { idFromName(name: string): unknown; get(id: unknown): { fetch(url: string): Promise<Response> } };
  const stub = namespace.get(namespace.idFromName("scheduler"));
  let tick = (await (await stub.fetch("https://kiln-scheduler/tick")).json()) as { history: TickRecord[]; running: boolean };
  while (tick.running && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    tick = (await (await stub.fetch("https://kiln-scheduler/tick")).json()) as { history: TickRecord[]; running: boolean };
  }
  // the ticks' own counts: several reached the budget and handed the run on; none went past it
  const reached = tick.history.filter((t) => t.budgetReached);
  expect(reached.length).toBeGreaterThanOrEqual(2);

  // the independent count, per invocation: every alarm (a tick) within the budget
  const answer = (await (await fetch(`${url}/__bench/invocations`)).json()) as { records: InvocationRecord[] };
  const alarms = answer.records.filter((r) => r.kind === "alarm" && r.endedAt !== null);
  expect(alarms.length).toBeGreaterThanOrEqual(3);
  const counts = alarms.map(subrequestsOf);
  const queries = alarms.map((r) => r.d1Statements + Object.values(r.fetches).reduce((a, b) => a + b, 0));
  console.log(`subrequests per tick: ${counts.join(", ")}; D1 statements: ${queries.join(", ")}; the ticks' own counts: ${tick.history.map((t) => t.subrequests).join(", ")}`);
  for (const count of counts) expect(count).toBeLessThanOrEqual(BUDGET);
  for (const t of tick.history) expect(t.subrequests!).toBeLessThanOrEqual(BUDGET);
  // and with each statement of a D1 batch counted as a query, as D1's own limit may count them
  for (const count of queries) expect(count).toBeLessThanOrEqual(BUDGET);
  // the ticks did the run's work: more subrequests in all than one budget holds
  expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThan(BUDGET);
}, 150_000);
