/**
 * One pipeline, three executors, through the scheduler: extract runs as an ECS task, transform
 * as a Cloud Run job execution, load as a Kubernetes Job, each against its fake on 127.0.0.1
 * (SigV4 verified, OAuth token checked, bearer token checked), each "container" a real
 * `kiln run-block` process that reaches the database over a real libSQL server (sqld) and the
 * block outputs through the database, then through S3-compatible storage (a fake S3 that
 * verifies SigV4). `kiln start --instance-type scheduler` runs in its own process, as deployed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import { stringify } from "yaml";
import { logPath, type JsonObject } from "@kiln/core";
import { TempDirs } from "../helpers/cli.ts";
import { FakeCloudRun } from "../helpers/fake-cloud-run.ts";
import { FakeContainers } from "../helpers/fake-containers.ts";
import { FakeEcs } from "../helpers/fake-ecs.ts";
import { FakeKubernetes } from "../helpers/fake-kubernetes.ts";
import { startFakeS3, type FakeS3 } from "../helpers/fake-s3.ts";
import { CLI_MAIN } from "../helpers/fixtures.ts";
import { startLibsqlServer, type LibsqlServer } from "../helpers/libsql-server.ts";

const temp = new TempDirs();
const AWS = { accessKeyId: "AKIAKILNTHREE0000001", secretAccessKey: "three/executors+secret/0123456789abcdef" };
const S3 = { accessKeyId: "KILNS3THREE", secretAccessKey: "s3-three-executors-secret" };
const GCP_PROJECT = "kiln-three";
const CLIENT_EMAIL = `runner@${GCP_PROJECT}.iam.gserviceaccount.com`;
const K8S_TOKEN = "three-executors-token";

const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
const ecs = new FakeEcs({
  credentials: [AWS],
  clusters: ["etl"],
  taskDefinitions: [
    { family: "kiln-project", networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], containers: [{ name: "kiln", command: ["kiln", "--version"], awslogs: { group: "/ecs/kiln", streamPrefix: "kiln" } }] },
  ],
}).start();
const cloudRun = await new FakeCloudRun({
  project: GCP_PROJECT,
  region: "europe-west1",
  jobs: { "kiln-project": { command: ["kiln"], args: ["--version"] } },
  serviceAccount: { clientEmail: CLIENT_EMAIL, publicKeyPem: await exportSPKI(publicKey) },
}).start();
const containers = new FakeContainers();
const kubernetes = new FakeKubernetes({ containers, token: K8S_TOKEN, namespaces: ["etl"] });
const s3: FakeS3 = await startFakeS3({ ...S3, buckets: ["kiln-outputs"] });
const servers: LibsqlServer[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const child of children) if (child.pid) stopGroup(child.pid);
  ecs.stop();
  cloudRun.stop();
  kubernetes.close();
  containers.stopAll();
  await s3.stop();
  for (const server of servers) server.stop();
  temp.removeAll();
});

function stopGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** The project: one pipeline whose three blocks each name their executor, and an @once trigger. */
async function writeProject(databaseUrl: string, outputStore: JsonObject): Promise<{ root: string; env: Record<string, string> }> {
  const root = temp.project({
    "pipelines/etl/metadata.yaml": stringify({
      blocks: [
        { uuid: "extract", type: "data_loader", executor_type: "ecs" },
        { uuid: "transform", type: "transformer", executor_type: "cloud_run", upstream_blocks: ["extract"] },
        { uuid: "load", type: "data_exporter", executor_type: "k8s", upstream_blocks: ["transform"] },
      ],
    }),
    "pipelines/etl/triggers.yaml": stringify({
      triggers: [{ name: "once", schedule_type: "time", schedule_interval: "@once", start_time: "2026-01-01 00:00:00", status: "active" }],
    }),
    "data_loaders/extract.js": "export default function extract(ctx) { ctx.logger.info('extracted on ecs'); return [1, 2, 3]; }\n",
    "transformers/transform.js": "export default function transform(rows, ctx) { return rows.map((n) => n * 2); }\n",
    "data_exporters/load.js": "export default function load(rows, ctx) { return { total: rows.reduce((a, b) => a + b, 0), where: process.env.KILN_BLOCK_LOGS }; }\n",
  });
  const kubeconfig = join(root, "kubeconfig.yaml");
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "fake",
      clusters: [{ name: "fake", cluster: { server: kubernetes.url } }],
      users: [{ name: "kiln", user: { token: K8S_TOKEN } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "kiln", namespace: "etl" } }],
    }),
  );
  const keyFile = join(root, "service-account.json");
  writeFileSync(
    keyFile,
    JSON.stringify({ type: "service_account", project_id: GCP_PROJECT, private_key_id: "k1", private_key: await exportPKCS8(privateKey), client_email: CLIENT_EMAIL, token_uri: cloudRun.tokenUri }),
  );
  // the image's project is this folder: the fakes run each container's command on this machine
  writeFileSync(
    join(root, "kiln.yaml"),
    stringify({
      database_url: databaseUrl,
      output_store: outputStore,
      executors: {
        ecs: { cluster: "etl", task_definition: "kiln-project", subnets: ["subnet-1"], region: ecs.region, endpoint: ecs.url, log_group: "/ecs/kiln", log_stream_prefix: "kiln", project_root: root },
        cloud_run: { job: "kiln-project", project: GCP_PROJECT, region: "europe-west1", endpoint: cloudRun.url, logging_endpoint: cloudRun.url, project_root: root },
        k8s: { image: "registry.example/kiln-project:1", project_root: root },
      },
    }),
  );
  const env = {
    AWS_ACCESS_KEY_ID: AWS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: AWS.secretAccessKey,
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    KUBECONFIG: kubeconfig,
    KILN_S3_ACCESS_KEY_ID: S3.accessKeyId,
    KILN_S3_SECRET_ACCESS_KEY: S3.secretAccessKey,
  };
  return { root, env };
}

interface RunRow {
  id: number;
  status: string;
  execution_partition: string;
}

/** Starts the scheduler on the project and waits for the @once run to end. */
async function runThroughScheduler(root: string, databaseUrl: string, env: Record<string, string>): Promise<{ run: RunRow; blocks: Array<{ block_uuid: string; status: string; executor_type: string; error: string | null }>; schedulerOutput: () => string }> {
  let output = "";
  const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--instance-type", "scheduler"], {
    env: { ...process.env, ...env, KILN_DATABASE_URL: "" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  children.push(child);
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const db = createClient({ url: databaseUrl });
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const runs = await db.execute("SELECT id, status, execution_partition FROM pipeline_runs").catch(() => null);
      const run = runs?.rows[0] as unknown as RunRow | undefined;
      if (run && ["completed", "failed", "cancelled"].includes(run.status)) {
        const blocks = await db.execute({ sql: "SELECT block_uuid, status, executor_type, error FROM block_runs WHERE pipeline_run_id = ? ORDER BY id", args: [run.id] });
        return { run, blocks: blocks.rows as unknown as Array<{ block_uuid: string; status: string; executor_type: string; error: string | null }>, schedulerOutput: () => output };
      }
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the run did not end (scheduler ${child.exitCode === null ? "running" : `exited ${child.exitCode}`}):\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    db.close();
    if (child.pid) stopGroup(child.pid);
  }
}

describe("a pipeline on ECS, Cloud Run and Kubernetes, through the scheduler", () => {
  test("outputs pass between the three through the database", async () => {
    const sqld = await startLibsqlServer();
    servers.push(sqld);
    const { root, env } = await writeProject(sqld.url, { type: "database" });
    const { run, blocks, schedulerOutput } = await runThroughScheduler(root, sqld.url, env);
    expect({ status: run.status, blocks }, schedulerOutput()).toEqual({
      status: "completed",
      blocks: [
        { block_uuid: "extract", status: "completed", executor_type: "ecs", error: null },
        { block_uuid: "transform", status: "completed", executor_type: "cloud_run", error: null },
        { block_uuid: "load", status: "completed", executor_type: "k8s", error: null },
      ],
    });
    const db = createClient({ url: sqld.url });
    try {
      const stored = await db.execute("SELECT block_uuid, value FROM block_outputs ORDER BY block_uuid");
      expect(Object.fromEntries(stored.rows.map((r) => [String(r.block_uuid), JSON.parse(String(r.value))]))).toEqual({
        extract: [1, 2, 3],
        transform: [2, 4, 6],
        // the last block ran in a "container": its logs went to stdout
        load: { total: 12, where: "stdout" },
      });
    } finally {
      db.close();
    }
    // the ECS task's log came back from CloudWatch into the block run's log
    expect(readFileSync(join(root, logPath("etl", run.execution_partition, "extract")), "utf8")).toContain("extracted on ecs");
    // each service saw its own credentials
    expect(ecs.requests.filter((r) => r.action === "RunTask").map((r) => [r.accessKeyId, r.outcome])).toEqual([[AWS.accessKeyId, "200"]]);
    expect(cloudRun.requests.filter((r) => r.path.endsWith(":run")).map((r) => [r.headers.authorization?.startsWith("Bearer "), r.status])).toEqual([[true, 200]]);
    expect(kubernetes.requests.filter((r) => r.method === "POST" && r.path.endsWith("/jobs")).map((r) => r.authorization)).toEqual([`Bearer ${K8S_TOKEN}`]);
  }, 150_000);

  test("outputs pass between the three through S3-compatible storage", async () => {
    const sqld = await startLibsqlServer();
    servers.push(sqld);
    const { root, env } = await writeProject(sqld.url, { type: "s3", bucket: "kiln-outputs", prefix: "three/", endpoint: s3.endpoint });
    const before = s3.requests.length;
    const { run, blocks, schedulerOutput } = await runThroughScheduler(root, sqld.url, env);
    expect({ status: run.status, statuses: blocks.map((b) => [b.block_uuid, b.status, b.executor_type]) }, schedulerOutput()).toEqual({
      status: "completed",
      statuses: [
        ["extract", "completed", "ecs"],
        ["transform", "completed", "cloud_run"],
        ["load", "completed", "k8s"],
      ],
    });
    const object = (block: string) => s3.objects.get(`kiln-outputs/three/.variables/pipelines/etl/${run.execution_partition}/${block}/output_0`);
    expect(JSON.parse(new TextDecoder().decode(object("transform")?.body))).toEqual([2, 4, 6]);
    expect(JSON.parse(new TextDecoder().decode(object("load")?.body))).toEqual({ total: 12, where: "stdout" });
    // every request the blocks made was signed, and the fake checked each signature
    const made = s3.requests.slice(before);
    expect(made.filter((r) => r.method === "PUT").length).toBeGreaterThanOrEqual(3);
    expect(made.every((r) => r.status < 400)).toBe(true);
    const db = createClient({ url: sqld.url });
    try {
      expect((await db.execute("SELECT count(*) AS n FROM block_outputs")).rows[0]?.n).toBe(0);
    } finally {
      db.close();
    }
  }, 150_000);
});
