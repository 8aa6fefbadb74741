/**
 * The Kubernetes executor inside Cloudflare's workerd: a Worker bundled by `wrangler deploy
 * --dry-run` (no nodejs_compat flag: fetch only, no files) gets its kubeconfig's content from a
 * binding (KILN_KUBECONFIG_DATA) and starts, polls, cancels and reads the logs of Jobs on the
 * fake API server. Each request builds a fresh executor from the stored handle, as a Worker
 * invocation would.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { stringify } from "yaml";
import type { BlockJob, ExecutionStatus, JsonObject } from "@kiln/core";
import { startExecutorWorker, workerJob, type ExecutorWorkerOptions } from "../helpers/executor-worker.ts";
import { FakeContainers } from "../helpers/fake-containers.ts";
import { FakeKubernetes } from "../helpers/fake-kubernetes.ts";

const TOKEN = "edge-token-4c1d";
const containers = new FakeContainers();
const fake = new FakeKubernetes({ containers, token: TOKEN, namespaces: ["edge"] });
const KUBECONFIG = stringify({
  "current-context": "edge",
  clusters: [{ name: "c", cluster: { server: fake.url } }],
  users: [{ name: "u", user: { token: TOKEN } }],
  contexts: [{ name: "edge", context: { cluster: "c", user: "u", namespace: "edge" } }],
});

const OPTIONS: ExecutorWorkerOptions = {
  name: "k8s",
  module: "plugins/executor-kubernetes/src/index.ts",
  importClause: "factory",
  // the kubeconfig's content: a Worker cannot read a file
  bindings: { KILN_KUBECONFIG_DATA: KUBECONFIG },
};
const worker = await startExecutorWorker(OPTIONS);
const { call, settle } = worker;

afterAll(async () => {
  await worker.dispose();
  fake.close();
});

/** A job whose "image" runs a shell script: run-block's args land in $1.. and are ignored. */
function job(script: string, blockRunId: number): BlockJob {
  return workerJob("k8s", { image: "registry.example/edge:1", command: ["sh", "-c", script, "sh"] }, blockRunId);
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
    const strict = await startExecutorWorker({ ...OPTIONS, bindings: { KILN_KUBECONFIG_DATA: withCa } });
    try {
      const answer = await strict.call("start", { job: job("true", 3) }).then(
        () => "",
        (error: Error) => error.message,
      );
      expect(answer).toContain("the Worker answered 500");
      expect(answer).toContain("needs a custom certificate authority, which fetch on this runtime cannot be given");
    } finally {
      await strict.dispose();
    }
  }, 60_000);
});
