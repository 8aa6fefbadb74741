/**
 * The Kubernetes executor inside Cloudflare's workerd: a Worker bundled by `wrangler deploy
 * --dry-run` (no nodejs_compat flag: fetch only, no files) gets its kubeconfig's content from a
 * binding (KILN_KUBECONFIG_DATA) and starts, polls, cancels and reads the logs of Jobs on the
 * fake API server. Each request builds a fresh executor from the stored handle, as a Worker
 * invocation would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { stringify } from "yaml";
import type { BlockJob, ExecutionStatus, JsonObject } from "@kiln/core";
import { FakeContainers } from "../helpers/fake-containers.ts";
import { FakeKubernetes } from "../helpers/fake-kubernetes.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";

const TOKEN = "edge-token-4c1d";
const containers = new FakeContainers();
const fake = new FakeKubernetes({ containers, token: TOKEN, namespaces: ["edge"] });
const KUBECONFIG = stringify({
  "current-context": "edge",
  clusters: [{ name: "c", cluster: { server: fake.url } }],
  users: [{ name: "u", user: { token: TOKEN } }],
  contexts: [{ name: "edge", context: { cluster: "c", user: "u", namespace: "edge" } }],
});

const WORKER = `
import kubernetesExecutorFactory from ${JSON.stringify(join(REPO_ROOT, "plugins/executor-kubernetes/src/index.ts"))};
export default {
  async fetch(request, env) {
    const { op, job, handle } = await request.json();
    const executor = kubernetesExecutorFactory({ projectRoot: "/app", blockEnv: { KILN_DATABASE_URL: "libsql://kiln.example" }, env, logs: { append() {} } });
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
  dir = mkdtempSync(join(tmpdir(), "kiln-k8s-worker-"));
  writeFileSync(join(dir, "worker.js"), WORKER);
  writeFileSync(join(dir, "wrangler.toml"), 'name = "kiln-k8s-check"\nmain = "worker.js"\ncompatibility_date = "2025-01-01"\n');
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
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2025-01-01",
    // the kubeconfig's content: a Worker cannot read a file
    bindings: { KILN_KUBECONFIG_DATA: KUBECONFIG },
  });
}, 150_000);

afterAll(async () => {
  await mf?.dispose();
  fake.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(op: string, body: JsonObject): Promise<unknown> {
  const response = await mf!.dispatchFetch("http://worker/", { method: "POST", body: JSON.stringify({ op, ...body }) });
  const result = (await response.json()) as unknown;
  if (response.status !== 200) throw new Error(`the Worker answered ${response.status}: ${JSON.stringify(result)}`);
  return result;
}

/** A job whose "image" runs a shell script: run-block's args land in $1.. and are ignored. */
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
    executorType: "k8s",
    executorConfig: { image: "registry.example/edge:1", command: ["sh", "-c", script, "sh"] },
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

describe("executor-kubernetes in workerd", () => {
  test("starts a Job with the token from the kubeconfig binding, reads its exit code and its pod's log", async () => {
    const handle = (await call("start", { job: job("echo started on Kubernetes from a Worker; exit 3", 1) })) as JsonObject;
    expect(handle.namespace).toBe("edge");
    expect(fake.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(await settle(handle)).toEqual({ state: "failed", error: "exit code 3: started on Kubernetes from a Worker" });
    expect(await call("logs", { handle })).toEqual(["started on Kubernetes from a Worker"]);
  }, 60_000);

  test("cancels a running Job, and a later invocation reads it as cancelled", async () => {
    const handle = (await call("start", { job: job("sleep 60", 2) })) as JsonObject;
    expect((await call("status", { handle })) as ExecutionStatus).toEqual({ state: "running" });
    await call("cancel", { handle });
    expect(await settle(handle)).toEqual({ state: "cancelled" });
    expect(fake.requestsTo("DELETE", /\/jobs\//).at(-1)!.body).toMatchObject({ propagationPolicy: "Background" });
  }, 60_000);

  test("a kubeconfig with a private CA is refused with a clear message: fetch in workerd takes no TLS options", async () => {
    const withCa = KUBECONFIG.replace(`server: ${fake.url}`, `server: https://127.0.0.1:1\n      certificate-authority-data: ${btoa("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")}`);
    const strict = new Miniflare({ modules: true, scriptPath: join(dir, "dist/worker.js"), modulesRoot: join(dir, "dist"), compatibilityDate: "2025-01-01", bindings: { KILN_KUBECONFIG_DATA: withCa } });
    try {
      const response = await strict.dispatchFetch("http://worker/", { method: "POST", body: JSON.stringify({ op: "start", job: job("true", 3) }) });
      expect(response.status).toBe(500);
      expect(((await response.json()) as { error: string }).error).toContain("needs a custom certificate authority, which fetch on this runtime cannot be given");
    } finally {
      await strict.dispose();
    }
  }, 60_000);
});
