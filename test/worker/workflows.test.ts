/**
 * The workflows executor on workerd: blocks on executor_type workflows run as Cloudflare
 * Workflows steps (the bundle's KilnBlockWorkflow, bound as KILN_BLOCKS), in Miniflare with D1,
 * the scheduler Durable Object and Miniflare's Workflows. A block that sleeps past the tick
 * (2 s, plus 1 s of grace) completes in its Workflow instance after the tick that started it
 * ended, and the run goes on to completed with the block's log in D1; a block that fails twice
 * completes on Workflows' third attempt of its step; a run cancelled through the API, between
 * ticks or during one, has its block's instance terminated by the tick the cancel wakes, and the
 * block writes neither its last log line nor its output; and the executor conformance suite runs
 * against the Workflow binding from outside the Worker (Miniflare's binding proxy).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { Miniflare } from "miniflare";
import type { BlockJob, JsonObject } from "@kiln/core";
import { runExecutorConformance, settleExecution, type ConformanceBlock } from "@kiln/core/conformance";
import { buildBlockJob } from "@kiln/core/engine";
import { databaseLogReader, generateSecretKey } from "@kiln/core/runtime";
import { databaseOutputStore } from "@kiln/core/output-store";
import { loadProject, type Project } from "@kiln/core/project";
import { Store, type SqlClient } from "@kiln/core/store";
import { folderSource } from "@kiln/node";
import { workflowsExecutor, type WorkflowBinding } from "@kiln/executor-workflows";
import { d1Client, type D1Database, type TickRecord } from "@kiln/worker";
import { CLI_MAIN, REPO_ROOT } from "../helpers/fixtures.ts";
import { CONFORMANCE_BLOCKS } from "../helpers/conformance.ts";
import { bundleWorker } from "../helpers/wrangler.ts";

const TICK_SECONDS = 2;
const GRACE_SECONDS = 1;

/** The project: a long block and its downstream, a flaky block, and the conformance blocks, all but one on workflows. */
function projectFiles(): Record<string, string> {
  const conformance = Object.keys(CONFORMANCE_BLOCKS).map((uuid) => ({ uuid, type: "custom", executor_type: "workflows", timeout: 600 }));
  return {
    "kiln.yaml": stringify({ executor_config: { in_process: true }, variables: { source: "workflows-test" } }),
    "pipelines/long/metadata.yaml": stringify({
      blocks: [
        { uuid: "nap", type: "custom", executor_type: "workflows", timeout: 120 },
        { uuid: "after_nap", type: "custom", upstream_blocks: ["nap"] },
      ],
    }),
    "pipelines/long/triggers.yaml": stringify({ triggers: [{ name: "go", schedule_type: "api", status: "active" }] }),
    "custom/nap.js": `export default async function nap(ctx) {
  const ms = Number(ctx.variables.nap_ms ?? 6000);
  ctx.logger.info("napping " + ms + " ms, longer than the tick");
  await new Promise((resolve) => setTimeout(resolve, ms));
  ctx.logger.info("woke up");
  return { napped: ms, attempt: ctx.attempt };
}
`,
    "custom/after_nap.js": `export default function afterNap(nap, ctx) { return { ...nap, after: true, source: ctx.variables.source }; }
`,
    "pipelines/flaky/metadata.yaml": stringify({
      blocks: [{ uuid: "flaky", type: "custom", executor_type: "workflows", timeout: 30, retry_config: { retries: 2, delay: 1, exponential_backoff: false } }],
    }),
    "pipelines/flaky/triggers.yaml": stringify({ triggers: [{ name: "go", schedule_type: "api", status: "active" }] }),
    "custom/flaky.js": `export default function flaky(ctx) {
  if (ctx.attempt < 3) throw new Error("planned flake on attempt " + ctx.attempt);
  ctx.logger.info("steady on attempt " + ctx.attempt);
  return { attempt: ctx.attempt };
}
`,
    "pipelines/conformance/metadata.yaml": stringify({ blocks: conformance }),
    ...Object.fromEntries(Object.entries(CONFORMANCE_BLOCKS).map(([uuid, code]) => [`custom/${uuid}.js`, code])),
  };
}

let dir: string;
let mf: Miniflare | null = null;
let url: string;
let db: SqlClient;
let store: Store;
let project: Project;
let binding: WorkflowBinding;
let bare: Miniflare | null = null;
let bareDb: SqlClient;
let bareStore: Store;
let bareBinding: WorkflowBinding;

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Mage's API-trigger request for a pipeline's trigger `go` (token in the path); the new run's id. */
async function trigger(pipeline: string, variables: JsonObject): Promise<number> {
  // the API shows the token (the database keeps it sealed under KILN_SECRET_KEY); authentication is off here
  const listed = await fetch(`${url}/api/pipelines/${pipeline}/pipeline_schedules`);
  const schedules = ((await listed.json()) as { pipeline_schedules: Array<{ id: number; name: string; token: string }> }).pipeline_schedules;
  const row = schedules.find((s) => s.name === "go");
  if (!row) throw new Error(`no API trigger on ${pipeline}`);
  const created = await post(`/api/pipeline_schedules/${row.id}/pipeline_runs/${row.token}`, { pipeline_run: { variables } });
  expect(created.status).toBe(201);
  return (created.json.pipeline_run as { id: number }).id;
}

interface BlockRunRow {
  status: string;
  attempt: number;
  startedAt: number | null;
  completedAt: number | null;
  handle: JsonObject | null;
}

async function blockRunsOf(runId: number): Promise<Record<string, BlockRunRow>> {
  const runs = await store.getBlockRuns(runId);
  return Object.fromEntries(runs.map((r) => [r.blockUuid, { status: r.status, attempt: r.attempt, startedAt: r.startedAt, completedAt: r.completedAt, handle: r.executorHandle }]));
}

/** Polls until the run has ended (or `limitMs` passes), and returns its status. */
async function settled(id: number, limitMs = 90_000): Promise<string> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const status = (await store.getPipelineRun(id))?.status ?? "missing";
    if (["completed", "failed", "cancelled"].includes(status) || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function schedulerRecord(): Promise<{ history: TickRecord[] }> {
  const namespace = (await mf!.getDurableObjectNamespace("KILN_SCHEDULER")) as unknown as { idFromName(name: string): unknown; get(id: unknown): { fetch(url: string): Promise<Response> } };
  const response = await namespace.get(namespace.idFromName("scheduler")).fetch("https://kiln-scheduler/tick");
  return (await response.json()) as { history: TickRecord[] };
}

/** Whether the scheduler object has a tick in progress. */
async function schedulerRunning(): Promise<boolean> {
  const namespace = (await mf!.getDurableObjectNamespace("KILN_SCHEDULER")) as unknown as { idFromName(name: string): unknown; get(id: unknown): { fetch(url: string): Promise<Response> } };
  const response = await namespace.get(namespace.idFromName("scheduler")).fetch("https://kiln-scheduler/tick");
  return ((await response.json()) as { running: boolean }).running;
}

/** Polls `probe` until it answers non-null (or fails after `limitMs`). */
async function until<T>(probe: () => Promise<T | null>, everyMs = 200, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    // a probe is a call into workerd (D1, the object, a Workflow instance): one that does not
    // answer within 10 s is asked again, so the deadline holds (a CI run once hung past the
    // test's own timeout on one such call)
    let timer: ReturnType<typeof setTimeout> | undefined;
    const found = await Promise.race([probe(), new Promise<null>((r) => (timer = setTimeout(() => r(null), 10_000)))]).finally(() => clearTimeout(timer));
    if (found !== null) return found;
    if (Date.now() > deadline) throw new Error(`not so within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Mage's cancel: PUT /api/pipeline_runs/:id with status cancelled. */
async function cancelThroughApi(id: number): Promise<void> {
  const response = await fetch(`${url}/api/pipeline_runs/${id}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ pipeline_run: { status: "cancelled" } }) });
  expect(response.status).toBe(200);
  await response.body?.cancel();
}

/** Past the instant the nap would have woken (plus margin), its block wrote neither its last log line nor its output. */
async function neverWokeUp(id: number, nap: BlockRunRow, napMs: number): Promise<void> {
  await new Promise((r) => setTimeout(r, Math.max(0, nap.startedAt! + napMs + 3_000 - Date.now())));
  const run = (await store.getPipelineRun(id))!;
  const log = await logOf("long", run.executionPartition, "nap");
  expect(log).toContain(`napping ${napMs} ms`);
  expect(log).not.toContain("woke up");
  const read = databaseOutputStore(db, { maxBytes: 1 << 20 }).read("long", run.executionPartition, "nap");
  expect(await read.then(() => "stored", (error: unknown) => (error instanceof Error ? error.name : String(error)))).toBe("OutputMissingError");
  expect((await blockRunsOf(id)).nap?.status).toBe("cancelled");
}

async function logOf(pipeline: string, partition: string, block: string): Promise<string> {
  return (await databaseLogReader(db).read(pipeline, partition, block, 0, 1 << 20)).text;
}

beforeAll(async () => {
  dir = join(REPO_ROOT, "test-artifacts", `worker-workflows-${crypto.randomUUID()}`);
  const root = join(dir, "project");
  for (const [path, text] of Object.entries(projectFiles())) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  project = await loadProject(folderSource(root), { executorTypes: ["local", "workflows"] });
  const built = spawnSync("bun", [CLI_MAIN, "build", "worker", root, "--out", join(dir, "build"), "--tick-seconds", String(TICK_SECONDS), "--grace-seconds", String(GRACE_SECONDS)], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`kiln build worker failed (${built.status}): ${built.stderr}`);
  writeFileSync(join(dir, "wrangler.toml"), ['name = "kiln-workflows-test"', 'main = "build/index.ts"', 'compatibility_date = "2026-04-01"', 'compatibility_flags = ["nodejs_compat"]', ""].join("\n"));
  bundleWorker(dir);
  mf = miniflare("scheduled", true);
  url = (await mf.ready).toString().replace(/\/$/, "");
  db = d1Client((await mf.getD1Database("DB")) as unknown as D1Database);
  store = await Store.open(db);
  binding = (await mf.getBindings<{ KILN_BLOCKS: WorkflowBinding }>()).KILN_BLOCKS;
  // the conformance suite records its own block runs: a Worker without the scheduler object,
  // so no tick takes its pipeline runs for its own
  bare = miniflare("bare", false);
  await bare.ready;
  bareDb = d1Client((await bare.getD1Database("DB")) as unknown as D1Database);
  bareStore = await Store.open(bareDb);
  bareBinding = (await bare.getBindings<{ KILN_BLOCKS: WorkflowBinding }>()).KILN_BLOCKS;
}, 180_000);

/** The bundled Worker in Miniflare, with D1 and Workflows, and the scheduler object when `scheduler`. */
function miniflare(name: string, scheduler: boolean): Miniflare {
  const state = join(dir, name);
  return new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist/index.js"),
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2026-04-01",
    compatibilityFlags: ["nodejs_compat"],
    host: "127.0.0.1",
    port: 0,
    d1Databases: { DB: "kiln" },
    d1Persist: join(state, "d1"),
    ...(scheduler ? { durableObjects: { KILN_SCHEDULER: { className: "KilnScheduler", useSQLite: true } }, durableObjectsPersist: join(state, "do") } : {}),
    workflows: { KILN_BLOCKS: { name: "kiln-blocks", className: "KilnBlockWorkflow" } },
    workflowsPersist: join(state, "workflows"),
    bindings: { KILN_SECRET_KEY: generateSecretKey(), KILN_AUTH: "off", KILN_TICK_SECONDS: String(TICK_SECONDS), KILN_TICK_GRACE_SECONDS: String(GRACE_SECONDS) },
  });
}

afterAll(async () => {
  await mf?.dispose();
  await bare?.dispose();
  if (dir && !process.env.KILN_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("the workflows executor on workerd (Miniflare's Workflows, D1, the scheduler object)", () => {
  test("a block on the workflows executor outlives one invocation and completes", async () => {
    const id = await trigger("long", { nap_ms: 6000 });
    expect(await settled(id)).toBe("completed");
    const blocks = await blockRunsOf(id);
    expect(blocks.nap?.status).toBe("completed");
    expect(blocks.nap?.attempt).toBe(1);
    expect(blocks.after_nap?.status).toBe("completed");
    // the tick (one alarm invocation of the scheduler object) that started the block ended before the block did
    const nap = blocks.nap!;
    const { history } = await schedulerRecord();
    const starter = history.find((t) => t.startedAt <= nap.startedAt! && nap.startedAt! <= (t.endedAt ?? Number.POSITIVE_INFINITY));
    expect(starter).toBeDefined();
    expect(starter!.endedAt).not.toBeNull();
    expect(starter!.endedAt!).toBeLessThan(nap.completedAt!);
    // meanwhile the object slept: the one tick between is the one the instance's wake started
    // when the block's step ended (no tick polled the instance while it ran)
    const between = history.filter((t) => t.startedAt > starter!.endedAt! && t.startedAt < nap.completedAt!);
    expect(between.length).toBe(1);
    // the block ran in the Workflow instance its handle names, which completed with the block run's outcome
    const instance = String(nap.handle?.workflow_instance);
    expect(instance).toStartWith(`kiln-${id}-`);
    const status = await (await binding.get(instance)).status();
    expect(status.status).toBe("complete");
    expect(status.output).toEqual({ state: "completed", attempts: 1 });
    // the block's log and output are in D1, and its downstream (in the Worker) read the output
    const run = (await store.getPipelineRun(id))!;
    const log = await logOf("long", run.executionPartition, "nap");
    expect(log).toContain("napping 6000 ms, longer than the tick");
    expect(log).toContain("woke up");
    const outputs = databaseOutputStore(db, { maxBytes: 1 << 20 });
    expect(await outputs.read("long", run.executionPartition, "after_nap")).toEqual({ napped: 6000, attempt: 1, after: true, source: "workflows-test" });
  }, 120_000);

  test("a run cancelled through the API while no tick runs: the woken tick terminates its block's Workflow instance", async () => {
    const napMs = 12_000;
    const id = await trigger("long", { nap_ms: napMs });
    // the nap is running on its instance and the tick that started it has ended
    const nap = await until(async () => {
      const row = (await blockRunsOf(id)).nap;
      if (row?.status !== "running" || !row.handle || row.startedAt === null) return null;
      const { history } = await schedulerRecord();
      return history.some((t) => t.startedAt <= row.startedAt! && t.endedAt !== null && t.endedAt >= row.startedAt!) && !(await schedulerRunning()) ? row : null;
    });
    const instance = String(nap.handle?.workflow_instance);
    expect((await (await binding.get(instance)).status()).status).toBe("running");
    await cancelThroughApi(id);
    expect(await until(async () => ((await (await binding.get(instance)).status()).status === "terminated" ? true : null))).toBe(true);
    expect((await store.getPipelineRun(id))?.status).toBe("cancelled");
    const blocks = await blockRunsOf(id);
    expect(blocks.nap?.status).toBe("cancelled");
    expect(blocks.after_nap?.status).toBe("cancelled");
    await neverWokeUp(id, nap, napMs);
  }, 120_000);

  test("a run cancelled through the API while a tick drives it: its block's Workflow instance is terminated", async () => {
    const napMs = 12_000;
    const id = await trigger("long", { nap_ms: napMs });
    const nap = await until(async () => {
      const row = (await blockRunsOf(id)).nap;
      return row?.status === "running" && row.handle && row.startedAt !== null ? row : null;
    }, 50);
    // the tick that started the nap is still driving the run (its window is TICK_SECONDS)
    expect(await schedulerRunning()).toBe(true);
    const instance = String(nap.handle?.workflow_instance);
    await cancelThroughApi(id);
    expect(await until(async () => ((await (await binding.get(instance)).status()).status === "terminated" ? true : null))).toBe(true);
    expect((await store.getPipelineRun(id))?.status).toBe("cancelled");
    expect((await blockRunsOf(id)).nap?.status).toBe("cancelled");
    await neverWokeUp(id, nap, napMs);
  }, 120_000);

  test("a block's retry_config is its step's retries: it fails twice and completes on Workflows' third attempt, one instance", async () => {
    const id = await trigger("flaky", {});
    expect(await settled(id)).toBe("completed");
    const flaky = (await blockRunsOf(id)).flaky!;
    expect(flaky.status).toBe("completed");
    // the attempts Workflows made are the block run's: kiln itself started it once
    expect(flaky.attempt).toBe(3);
    expect(String(flaky.handle?.workflow_instance)).toMatch(new RegExp(`^kiln-${id}-\\d+-1-[0-9a-f]{12}$`));
    const run = (await store.getPipelineRun(id))!;
    const log = await logOf("flaky", run.executionPartition, "flaky");
    expect(log).toContain("planned flake on attempt 1");
    expect(log).toContain("attempt 2: Cloudflare Workflows retries the block's step");
    expect(log).toContain("planned flake on attempt 2");
    expect(log).toContain("steady on attempt 3");
  }, 120_000);

  test("starting the same block run's attempt twice makes one instance", async () => {
    const job = await conformanceJob("succeeds");
    const executor = workflowsExecutor(bareBinding);
    const first = await executor.start(job);
    const again = await executor.start(job);
    expect(again).toEqual(first);
    const ended = await settleExecution(executor, first, 30_000);
    expect(ended.state).toBe("completed");
  }, 60_000);

  describe("conformance", () => {
    runExecutorConformance(
      () => workflowsExecutor(bareBinding),
      {
        job: (block) => conformanceJob(block),
        output: (job) => databaseOutputStore(bareDb, { maxBytes: 1 << 20 }).read(job.pipelineUuid, job.executionPartition, job.blockUuid),
        storedLog: async (job) => (await databaseLogReader(bareDb).read(job.pipelineUuid, job.executionPartition, job.blockUuid, 0, 1 << 20)).text,
        invalidConfig: { config: { image: "kiln:latest" }, field: "executor_config.image" },
        settleMs: 30_000,
      },
      test,
    );
  });
});

/** A conformance job, its pipeline run and block run recorded in the bare Worker's D1, where the Workflow's step finds them. */
async function conformanceJob(block: ConformanceBlock): Promise<BlockJob> {
  const pipeline = project.pipelines.get("conformance")!;
  const store = bareStore;
  const run = await store.createPipelineRun({ pipelineUuid: "conformance", executionDate: Date.now() + Math.floor(Math.random() * 1e9), variables: {} });
  if (!run) throw new Error("the conformance pipeline run was not created");
  const batch = store.batch();
  batch.insertBlockRuns(run.id, [block], new Map([[block, "workflows"]]));
  await store.commit(batch);
  const blockRun = (await store.getBlockRuns(run.id)).find((b) => b.blockUuid === block)!;
  return buildBlockJob({ project, pipeline, run, blockRunUuid: block, blockRunId: blockRun.id, attempt: blockRun.attempt, variables: {}, partitionOf: () => run.executionPartition });
}
