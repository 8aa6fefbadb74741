/**
 * The Cloud Run executor inside Cloudflare's workerd: a Worker bundled by `wrangler deploy
 * --dry-run` (no nodejs_compat flag: fetch and WebCrypto only) signs its token request with a
 * service-account key from the Worker's bindings, then starts, polls, cancels and reads the logs
 * of executions on the fake Cloud Run. Each request builds a fresh executor from the stored
 * handle, as a Worker invocation would.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import type { BlockJob, ExecutionStatus, JsonObject } from "@kiln/core";
import { startExecutorWorker, workerJob } from "../helpers/executor-worker.ts";
import { FakeCloudRun } from "../helpers/fake-cloud-run.ts";

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

const worker = await startExecutorWorker({
  name: "cloud-run",
  module: "plugins/executor-cloud-run/src/index.ts",
  importClause: "{ cloudRunExecutor as factory }",
  // the key's JSON content: a Worker cannot read a key file
  bindings: { GOOGLE_APPLICATION_CREDENTIALS: KEY },
});
const { call, settle } = worker;

afterAll(async () => {
  await worker.dispose();
  fake.stop();
});

function job(cloudRunJob: string, blockRunId: number): BlockJob {
  return workerJob("cloud_run", { job: cloudRunJob, region: REGION, endpoint: fake.url, logging_endpoint: fake.url }, blockRunId);
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
