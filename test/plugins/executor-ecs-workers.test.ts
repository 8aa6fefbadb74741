/**
 * The ECS executor inside Cloudflare's workerd: a Worker bundled by `wrangler deploy --dry-run`
 * (no nodejs_compat flag: fetch and WebCrypto only) starts, polls, cancels and reads the logs
 * of tasks on the fake ECS, credentials coming from the Worker's bindings. Each request builds
 * a fresh executor from the stored handle, as a Worker invocation would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import type { BlockJob, ExecutionStatus, JsonObject } from "@kiln/core";
import { FakeEcs } from "../helpers/fake-ecs.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";

const KEY = { accessKeyId: "AKIAKILNWORKERKEY001", secretAccessKey: "worker/secret+key/0123456789abcdefghijk" };
const fake = new FakeEcs({
  credentials: [KEY],
  clusters: ["edge"],
  taskDefinitions: [{ family: "kiln", networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], containers: [{ name: "kiln", awslogs: { group: "/ecs/kiln", streamPrefix: "kiln" } }] }],
}).start();

const WORKER = `
import { ecsExecutor } from ${JSON.stringify(join(REPO_ROOT, "plugins/executor-ecs/src/index.ts"))};
export default {
  async fetch(request, env) {
    const { op, job, handle } = await request.json();
    const executor = ecsExecutor({ projectRoot: "/app", blockEnv: { KILN_DATABASE_URL: "libsql://kiln.example" }, env, logs: { append() {} } });
    try {
      if (op === "start") return Response.json(await executor.start(job));
      if (op === "status") return Response.json(await executor.status(handle));
      if (op === "cancel") { await executor.cancel(handle); return Response.json({}); }
      const lines = [];
      for await (const line of executor.logs(handle)) lines.push(line);
      return Response.json(lines);
    } catch (error) {
      return Response.json({ error: String(error && error.message) }, { status: 500 });
    }
  },
};
`;

let dir = "";
let mf: Miniflare | null = null;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-ecs-worker-"));
  writeFileSync(join(dir, "worker.js"), WORKER);
  writeFileSync(join(dir, "wrangler.toml"), 'name = "kiln-ecs-check"\nmain = "worker.js"\ncompatibility_date = "2025-01-01"\n');
  const built = spawnSync(join(REPO_ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", "dist"], {
    cwd: dir,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (built.status !== 0) throw new Error(`wrangler could not bundle the Worker:\n${built.stdout}${built.stderr}`);
  mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist/worker.js"),
    // module names are paths under this root (the default, the working directory, is elsewhere)
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2025-01-01",
    bindings: { AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey, AWS_REGION: fake.region },
  });
}, 150_000);

afterAll(async () => {
  await mf?.dispose();
  fake.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(op: string, body: JsonObject): Promise<unknown> {
  const response = await mf!.dispatchFetch("http://worker/", { method: "POST", body: JSON.stringify({ op, ...body }) });
  const result = (await response.json()) as unknown;
  if (response.status !== 200) throw new Error(`the Worker answered ${response.status}: ${JSON.stringify(result)}`);
  return result;
}

function job(script: string, blockRunId: number): BlockJob {
  return {
    projectRoot: "/app",
    pipelineUuid: "edge",
    blockUuid: "task",
    blockRunId,
    pipelineRunId: 1,
    attempt: 1,
    executionDate: new Date(0).toISOString(),
    executionPartition: "1/19700101T000000",
    variables: {},
    event: null,
    inputs: [],
    executorType: "ecs",
    // the fake runs the command as a local process: a shell stands in for kiln here
    executorConfig: { cluster: "edge", task_definition: "kiln", subnets: ["subnet-edge"], endpoint: fake.url, command: ["sh", "-c", script], log_group: "/ecs/kiln", log_stream_prefix: "kiln" },
    timeout: null,
  };
}

async function settle(handle: JsonObject): Promise<ExecutionStatus> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = (await call("status", { handle })) as ExecutionStatus;
    if (status.state !== "running" || Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("executor-ecs in workerd", () => {
  test("starts a task, reads its exit code and its CloudWatch log", async () => {
    const handle = (await call("start", { job: job("echo started in ECS from a Worker; exit 3", 1) })) as JsonObject;
    const runTask = fake.requestsOf("RunTask").at(-1)!;
    expect(runTask.accessKeyId).toBe(KEY.accessKeyId);
    expect(runTask.outcome).toBe("200");
    expect(await settle(handle)).toMatchObject({ state: "failed", error: expect.stringContaining("exit code 3") });
    expect(await call("logs", { handle })).toEqual(["started in ECS from a Worker"]);
    expect(fake.refusals).toEqual([]);
  }, 60_000);

  test("cancels a running task, and a later invocation reads it as cancelled", async () => {
    const handle = (await call("start", { job: job("sleep 60", 2) })) as JsonObject;
    const task = fake.tasks.get(String(handle.taskArn))!;
    for (let i = 0; i < 200 && task.lastStatus !== "RUNNING"; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await call("status", { handle })) as ExecutionStatus).toEqual({ state: "running" });
    await call("cancel", { handle });
    expect(await settle(handle)).toEqual({ state: "cancelled" });
    expect(task.container!.state).toBe("exited");
  }, 60_000);
});
