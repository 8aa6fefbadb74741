/**
 * The Cloud Run executor inside Cloudflare's workerd: a Worker bundled by `wrangler deploy
 * --dry-run` (no nodejs_compat flag: fetch and WebCrypto only) signs its token request with a
 * service-account key from the Worker's bindings, then starts, polls, cancels and reads the logs
 * of executions on the fake Cloud Run. Each request builds a fresh executor from the stored
 * handle, as a Worker invocation would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import { Miniflare } from "miniflare";
import type { BlockJob, ExecutionStatus, JsonObject } from "@kiln/core";
import { FakeCloudRun } from "../helpers/fake-cloud-run.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";

const PROJECT = "kiln-edge-project";
const REGION = "us-central1";
const CLIENT_EMAIL = `kiln-edge@${PROJECT}.iam.gserviceaccount.com`;

const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
const fake = await new FakeCloudRun({
  project: PROJECT,
  region: REGION,
  // a shell stands in for kiln: run-block's args land in $1.. and are ignored
  jobs: {
    "exits-3": { command: ["sh", "-c", "echo started on Cloud Run from a Worker; exit 3", "sh"] },
    sleeps: { command: ["sh", "-c", "sleep 60", "sh"] },
  },
  serviceAccount: { clientEmail: CLIENT_EMAIL, publicKeyPem: await exportSPKI(publicKey) },
}).start();
const KEY = JSON.stringify({ type: "service_account", project_id: PROJECT, private_key: await exportPKCS8(privateKey), client_email: CLIENT_EMAIL, token_uri: fake.tokenUri });

const WORKER = `
import { cloudRunExecutor } from ${JSON.stringify(join(REPO_ROOT, "plugins/executor-cloud-run/src/index.ts"))};
export default {
  async fetch(request, env) {
    const { op, job, handle } = await request.json();
    const executor = cloudRunExecutor({ projectRoot: "/app", blockEnv: { KILN_DATABASE_URL: "libsql://kiln.example" }, env, logs: { append() {} } });
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
  dir = mkdtempSync(join(tmpdir(), "kiln-cloud-run-worker-"));
  writeFileSync(join(dir, "worker.js"), WORKER);
  writeFileSync(join(dir, "wrangler.toml"), 'name = "kiln-cloud-run-check"\nmain = "worker.js"\ncompatibility_date = "2025-01-01"\n');
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
    // the key's JSON content: a Worker cannot read a key file
    bindings: { GOOGLE_APPLICATION_CREDENTIALS: KEY },
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

function job(cloudRunJob: string, blockRunId: number): BlockJob {
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
    executorType: "cloud_run",
    executorConfig: { job: cloudRunJob, region: REGION, endpoint: fake.url, logging_endpoint: fake.url },
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

describe("executor-cloud-run in workerd", () => {
  test("signs a token request with WebCrypto, runs an execution, reads its exit code and its log", async () => {
    const handle = (await call("start", { job: job("exits-3", 1) })) as JsonObject;
    expect(fake.tokenRefusals).toEqual([]);
    expect(fake.issued).toContain("jwt-bearer");
    expect(fake.requestsTo(":run").at(-1)!.status).toBe(200);
    expect(await settle(handle)).toMatchObject({ state: "failed", error: expect.stringContaining("exit code 3") });
    expect(await call("logs", { handle })).toEqual(["started on Cloud Run from a Worker"]);
  }, 60_000);

  test("cancels a running execution, and a later invocation reads it as cancelled", async () => {
    const handle = (await call("start", { job: job("sleeps", 2) })) as JsonObject;
    expect((await call("status", { handle })) as ExecutionStatus).toEqual({ state: "running" });
    await call("cancel", { handle });
    expect(await settle(handle)).toEqual({ state: "cancelled" });
    expect(fake.execution(String(handle.execution))!.tasks[0]!.container.state).toBe("exited");
  }, 60_000);
});
