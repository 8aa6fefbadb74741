/**
 * The k8s executor beyond the conformance suite, against the fake API server: the Job it sends,
 * pods that can never start (the mage-ai #4150 case), timeouts, a Job removed after it
 * finished, credentials (kubeconfig forms, in-cluster, a wrong token, TLS with a private CA and
 * a client certificate on Bun), and validateConfig.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type BlockJob, type ExecutionHandle, type ExecutionStatus, type Executor, type JsonObject } from "@kiln/core";
import { settleExecution } from "@kiln/core/conformance";
import {
  buildJobManifest,
  jobLabels,
  jobNamePrefix,
  judge,
  kubernetesExecutor,
  parseKubeconfig,
  parseKubernetesConfig,
  resolveConnection,
  validateKubernetesConfig,
  type JobManifest,
  type KubeJob,
  type KubePod,
  type ReadFile,
} from "@kiln/executor-kubernetes";
import { readTextFile } from "@kiln/executor-kubernetes/node";
import { stringify } from "yaml";
import { conformanceProject } from "../helpers/conformance.ts";
import { FakeContainers } from "../helpers/fake-containers.ts";
import { FakeKubernetes, makeTestPki } from "../helpers/fake-kubernetes.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";

const TOKEN = "k8s-test-token-93be1c";
const NAMESPACE = "etl";

const containers = new FakeContainers();
const fake = new FakeKubernetes({
  containers,
  token: TOKEN,
  namespaces: [NAMESPACE, "default"],
  secrets: { "etl/db-creds": { DB_PASSWORD: "hunter2", DB_USER: "etl" }, "etl/api": { key: "api-key-value" } },
  serviceAccounts: ["etl/kiln-runner"],
  nodeLabels: { "kubernetes.io/os": "linux", pool: "batch" },
});
const fixture = await conformanceProject({ executorType: "k8s", executorConfig: { image: "registry.example/etl:1" } });
afterAll(() => {
  fake.close();
  fixture.close();
});

/** A kubeconfig for the fake (or `server`), written into the project's folder. */
function kubeconfigFile(name: string, user: JsonObject, cluster: JsonObject = {}, server = fake.url): string {
  const path = join(fixture.root, name);
  writeFileSync(
    path,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "fake",
      clusters: [{ name: "fake", cluster: { server, ...cluster } }],
      users: [{ name: "kiln", user }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "kiln", namespace: NAMESPACE } }],
    }),
  );
  return path;
}

const goodKubeconfig = kubeconfigFile("kubeconfig.yaml", { token: TOKEN });

function executor(env: Record<string, string | undefined> = { KUBECONFIG: goodKubeconfig }, readFile: ReadFile | null = readTextFile): Executor {
  return kubernetesExecutor({ context: { blockEnv: { KILN_DATABASE_URL: fixture.databaseUrl }, env }, readFile });
}

async function jobWith(block: "succeeds" | "fails" | "sleeps" | "logs", config: JsonObject, timeout: number | null = null): Promise<BlockJob> {
  const job = await fixture.harness.job(block);
  return { ...job, executorConfig: { image: "registry.example/etl:1", ...config }, timeout };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the status is not running (or 30 s pass). */
const settle = (k8s: Executor, handle: ExecutionHandle): Promise<ExecutionStatus> => settleExecution(k8s, handle, 30_000);

async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Each test may start `kiln run-block` processes, slow on a loaded machine. */
const it = (name: string, run: () => Promise<void> | void) => test(name, run, 60_000);

const handleOf = (handle: ExecutionHandle) => ({ namespace: String(handle.namespace), name: String(handle.name) });

describe("the Job kiln sends", () => {
  it("backoffLimit 0, ttlSecondsAfterFinished, restartPolicy Never, valid labels, env, Secrets, scheduling fields; the block sees its Secrets", async () => {
    const k8s = executor();
    const job = await jobWith("succeeds", {
      ttl_seconds_after_finished: 600,
      service_account: "kiln-runner",
      node_selector: { pool: "batch" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule" }],
      resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi", cpu: 1 } },
      env: { REGION: "eu" },
      env_from_secrets: ["db-creds", { name: "API_KEY", secret: "api", key: "key" }],
      image_pull_policy: "IfNotPresent",
      image_pull_secrets: ["registry-creds"],
    });
    const before = fake.requests.length;
    const handle = await k8s.start(job);
    expect(handle.namespace).toBe(NAMESPACE); // from the kubeconfig context
    expect(JSON.stringify(handle)).not.toContain(TOKEN);
    expect(await settle(k8s, handle)).toEqual({ state: "completed" });
    expect(((await fixture.harness.output(job)) as { ok?: boolean }).ok).toBe(true);

    const post = fake.requests.slice(before).find((r) => r.method === "POST")!;
    expect(post.path).toBe(`/apis/batch/v1/namespaces/${NAMESPACE}/jobs`);
    const body = post.body as JobManifest;
    expect(body.apiVersion).toBe("batch/v1");
    expect(body.kind).toBe("Job");
    expect(body.metadata.generateName).toBe(`kiln-conformance-succeeds-${job.blockRunId}-${job.attempt}-`);
    expect(body.spec.backoffLimit).toBe(0);
    expect(body.spec.ttlSecondsAfterFinished).toBe(600);
    expect(body.spec.activeDeadlineSeconds).toBeUndefined();
    const pod = body.spec.template.spec;
    expect(pod.restartPolicy).toBe("Never");
    expect(pod.serviceAccountName).toBe("kiln-runner");
    expect(pod.nodeSelector).toEqual({ pool: "batch" });
    expect(pod.tolerations).toEqual([{ key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule" }]);
    expect(pod.imagePullSecrets).toEqual([{ name: "registry-creds" }]);
    expect(body.metadata.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "kiln",
      "kiln.dev/pipeline-uuid": "conformance",
      "kiln.dev/pipeline-run-id": String(job.pipelineRunId),
      "kiln.dev/block-run-id": String(job.blockRunId),
      "kiln.dev/attempt": String(job.attempt),
      "kiln.dev/block-uuid": "succeeds",
    });
    expect(body.spec.template.metadata.labels).toEqual(body.metadata.labels!);
    const [container] = pod.containers;
    expect(container!.name).toBe("block");
    expect(container!.image).toBe("registry.example/etl:1");
    expect(container!.imagePullPolicy).toBe("IfNotPresent");
    expect(container!.resources).toEqual({ requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi", cpu: "1" } });
    expect(container!.command).toEqual(["kiln", "run-block", fixture.root, "conformance", "succeeds", "--pipeline-run-id", String(job.pipelineRunId), "--block-run-id", String(job.blockRunId)]);
    const env = Object.fromEntries(container!.env!.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({ KILN_DATABASE_URL: fixture.databaseUrl, KILN_BLOCK_LOGS: "stdout", KILN_BLOCK_RUN_ID: String(job.blockRunId), REGION: "eu" });
    expect(env.API_KEY).toEqual({ secretKeyRef: { name: "api", key: "key" } });
    expect(container!.envFrom).toEqual([{ secretRef: { name: "db-creds" } }]);
    // the Secret's values reached the block's process, and never the Job body
    expect(JSON.stringify(body)).not.toContain("hunter2");
    const ran = [...containers.containers.values()].find((c) => c.env.KILN_BLOCK_RUN_ID === String(job.blockRunId))!;
    expect(ran.env.DB_PASSWORD).toBe("hunter2");
    expect(ran.env.API_KEY).toBe("api-key-value");

    // every request carried the bearer token
    expect(fake.requests.slice(before).every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    // pods are found by the job-name label the Job controller gives them
    const list = fake.requests.slice(before).find((r) => r.method === "GET" && r.path.endsWith("/pods"))!;
    expect(list.query.labelSelector).toBe(`job-name=${String(handle.name)}`);
  });

  it("a variable mapped from a Secret replaces kiln's plain value, so the database token can stay out of the Job", async () => {
    const job = await jobWith("succeeds", { env_from_secrets: [{ name: "KILN_DATABASE_AUTH_TOKEN", secret: "db-creds", key: "DB_PASSWORD" }] });
    const manifest = buildJobManifest(job, parseKubernetesConfig(job.executorConfig), NAMESPACE, { KILN_DATABASE_URL: "libsql://db", KILN_DATABASE_AUTH_TOKEN: "plain-db-token" });
    const env = manifest.spec.template.spec.containers[0]!.env!;
    expect(env.filter((e) => e.name === "KILN_DATABASE_AUTH_TOKEN")).toEqual([{ name: "KILN_DATABASE_AUTH_TOKEN", valueFrom: { secretKeyRef: { name: "db-creds", key: "DB_PASSWORD" } } }]);
    expect(JSON.stringify(manifest)).not.toContain("plain-db-token");
  });

  it("labels and names are made valid for Kubernetes; the exact uuids go in annotations", async () => {
    const job = await jobWith("succeeds", {});
    const odd: BlockJob = { ...job, pipelineUuid: "Daily ETL/über_pipeline_with_a_name_much_longer_than_sixty-three_characters", blockUuid: "transform:12" };
    const prefix = jobNamePrefix(odd);
    expect(prefix).toMatch(/^[a-z0-9]([-a-z0-9]*)-$/);
    expect(prefix.length + 5).toBeLessThanOrEqual(63);
    expect(prefix.endsWith(`-${job.blockRunId}-${job.attempt}-`)).toBe(true);
    const labels = jobLabels(odd);
    for (const [key, value] of Object.entries(labels)) {
      expect(key).toMatch(/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
      expect(value).toMatch(/^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/);
    }
    expect(labels["kiln.dev/block-uuid"]).toBe("transform_12");
    const manifest = buildJobManifest(odd, parseKubernetesConfig({ image: "x:1" }), "default", {});
    expect(manifest.metadata.annotations).toEqual({ "kiln.dev/pipeline-uuid": odd.pipelineUuid, "kiln.dev/block-uuid": "transform:12" });
    // the fake validates labels and names as the API server does: the Job is accepted
    const k8s = executor();
    const handle = await k8s.start({ ...odd, executorConfig: { image: "registry.example/etl:1", command: ["true"] } });
    expect(String(handle.name).startsWith(prefix)).toBe(true);
  });

  it("a block's timeout becomes activeDeadlineSeconds, and passing it fails the block run as timed out", async () => {
    const k8s = executor();
    const job = await jobWith("sleeps", {}, 1);
    const before = fake.requests.length;
    const handle = await k8s.start(job);
    const post = fake.requests.slice(before).find((r) => r.method === "POST")!;
    expect((post.body as JobManifest).spec.activeDeadlineSeconds).toBe(1);
    const status = await settle(k8s, handle);
    expect(status.state).toBe("failed");
    expect(status.state === "failed" && status.error).toContain("timed out");
    await until(() => fake.stopped(handleOf(handle).namespace, handleOf(handle).name) || fake.podsOf(handleOf(handle).namespace, handleOf(handle).name).length === 0, "the pod to be gone");
  });

  it("the fake refuses what the API server would: restartPolicy Always, a missing image (422 naming the field)", async () => {
    const job = await jobWith("succeeds", {});
    const manifest = buildJobManifest(job, parseKubernetesConfig({ image: "x:1" }), NAMESPACE, {});
    manifest.spec.template.spec.restartPolicy = "Always";
    manifest.spec.template.spec.containers[0]!.image = "";
    const response = await fetch(`${fake.url}/apis/batch/v1/namespaces/${NAMESPACE}/jobs`, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" }, body: JSON.stringify(manifest) });
    expect(response.status).toBe(422);
    const body = (await response.json()) as { kind: string; reason: string; details: { causes: { field: string }[] } };
    expect(body.kind).toBe("Status");
    expect(body.reason).toBe("Invalid");
    expect(body.details.causes.map((c) => c.field).sort()).toEqual(["spec.template.spec.containers[0].image", "spec.template.spec.restartPolicy"]);
  });
});

describe("pods that never start are failures, not running (mage-ai #4150)", () => {
  it("an image that cannot be pulled: failed with the reason, the Job ended, the same answer for a fresh executor", async () => {
    const k8s = executor();
    const handle = await k8s.start(await jobWith("succeeds", { image: "registry.example/does-not-exist:404" }));
    const status = await settle(k8s, handle);
    expect(status.state).toBe("failed");
    const error = status.state === "failed" ? status.error : "";
    expect(error).toMatch(/ErrImagePull|ImagePullBackOff/);
    expect(error).toContain("does-not-exist:404");
    // kiln ended the Job (its pod would otherwise pull for ever) and wrote the reason on it
    const patch = fake.requestsTo("PATCH", new RegExp(`/jobs/${String(handle.name)}$`))[0]!;
    expect(patch.contentType).toBe("application/merge-patch+json");
    expect(patch.body).toMatchObject({ spec: { activeDeadlineSeconds: 1 }, metadata: { annotations: { "kiln.dev/failure": error } } });
    const fresh = executor();
    expect(await fresh.status(handle)).toEqual(status);
    // no container ever ran, so there is no log, and reading it is no error
    const lines: string[] = [];
    for await (const line of fresh.logs!(handle)) lines.push(line);
    expect(lines).toEqual([]);
  });

  it("an unschedulable pod is running within schedule_timeout, failed with the scheduler's message after it", async () => {
    const k8s = executor();
    const patient = await k8s.start(await jobWith("succeeds", { node_selector: { pool: "gpu" }, schedule_timeout: 3600 }));
    await until(() => fake.podsOf(NAMESPACE, String(patient.name)).some((p) => (p.object.status.conditions as { reason?: string }[]).some((c) => c.reason === "Unschedulable")), "the pod to be unschedulable");
    expect(await k8s.status(patient)).toEqual({ state: "running" });

    const impatient = await k8s.start(await jobWith("succeeds", { node_selector: { pool: "gpu" }, schedule_timeout: 0.2 }));
    const status = await settle(k8s, impatient);
    expect(status.state).toBe("failed");
    expect(status.state === "failed" && status.error).toMatch(/could not be scheduled in 0.2 s \(executor_config.schedule_timeout\): 0\/1 nodes are available: 1 node\(s\) didn't match/);
    await k8s.cancel(patient);
  });

  it("a pod that does not tolerate the node's taint is unschedulable too; one that does runs", async () => {
    const tainted = new FakeKubernetes({ containers, token: TOKEN, namespaces: [NAMESPACE], nodeTaints: [{ key: "dedicated", value: "batch", effect: "NoSchedule" }] });
    try {
      const k8s = executor({ KUBECONFIG: kubeconfigFile("tainted.yaml", { token: TOKEN }, {}, tainted.url) });
      const status = await settle(k8s, await k8s.start(await jobWith("succeeds", { schedule_timeout: 0.2 })));
      expect(status.state === "failed" && status.error).toContain("untolerated taint {dedicated: batch}");
      const tolerant = await k8s.start(await jobWith("succeeds", { schedule_timeout: 0.2, tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }] }));
      expect(await settle(k8s, tolerant)).toEqual({ state: "completed" });
    } finally {
      tainted.close();
    }
  });

  it("a missing Secret (CreateContainerConfigError) fails at once", async () => {
    const k8s = executor();
    const status = await settle(k8s, await k8s.start(await jobWith("succeeds", { env_from_secrets: [{ name: "X", secret: "nope", key: "k" }] })));
    expect(status.state === "failed" && status.error).toMatch(/CreateContainerConfigError: secret "nope" not found/);
  });

  it("a Job that gets no pod (a missing ServiceAccount) fails after schedule_timeout", async () => {
    const k8s = executor();
    const status = await settle(k8s, await k8s.start(await jobWith("succeeds", { service_account: "missing", schedule_timeout: 0.2 })));
    expect(status.state === "failed" && status.error).toMatch(/no pod was created for the Job etl\/kiln-conformance-succeeds-.* in 0.2 s/);
  });
});

describe("cancel and Jobs that are gone", () => {
  it("cancel while the container runs: DELETE with Background propagation stops it; a fresh executor reads cancelled", async () => {
    const k8s = executor();
    const handle = await k8s.start(await jobWith("sleeps", {}));
    const { namespace, name } = handleOf(handle);
    await until(() => fake.podsOf(namespace, name).some((p) => p.object.status.phase === "Running"), "the pod to run");
    const container = fake.podsOf(namespace, name)[0]!.container!;
    await k8s.cancel(handle);
    const deleted = fake.requestsTo("DELETE", new RegExp(`/jobs/${name}$`));
    expect(deleted).toHaveLength(1);
    expect(deleted[0]!.body).toMatchObject({ kind: "DeleteOptions", propagationPolicy: "Background" });
    await until(() => container.state === "exited", "the container's process to end");
    expect(fake.stopped(namespace, name)).toBe(true);
    expect(await executor().status(handle)).toEqual({ state: "cancelled" });
    // cancelling again is harmless
    await k8s.cancel(handle);
  });

  it("cancel still deletes the Job when kiln may not patch it", async () => {
    const k8s = executor();
    const handle = await k8s.start(await jobWith("sleeps", {}));
    fake.failNext(1, 403);
    await k8s.cancel(handle);
    expect(fake.requestsTo("PATCH", new RegExp(`/jobs/${String(handle.name)}$`))).toHaveLength(1);
    expect(fake.requestsTo("DELETE", new RegExp(`/jobs/${String(handle.name)}$`))).toHaveLength(1);
    await until(() => fake.stopped(handleOf(handle).namespace, handleOf(handle).name), "the Job to be gone");
    expect(await executor().status(handle)).toEqual({ state: "cancelled" });
  });

  it("a finished Job removed by ttlSecondsAfterFinished: its outcome is unknown, said so rather than guessed", async () => {
    const k8s = executor();
    const handle = await k8s.start(await jobWith("succeeds", { ttl_seconds_after_finished: 0 }));
    const { namespace, name } = handleOf(handle);
    await until(() => !fake.jobs.has(`${namespace}/${name}`), "the Job to be removed after it finished");
    const status = await executor().status(handle);
    expect(status.state).toBe("failed");
    expect(status.state === "failed" && status.error).toContain("ttl_seconds_after_finished (0 s)");
  });

  it("the pod's log is read back line by line, with the block's own lines", async () => {
    const k8s = executor();
    const handle = await k8s.start(await jobWith("logs", {}));
    expect(await settle(k8s, handle)).toEqual({ state: "completed" });
    const lines: string[] = [];
    for await (const line of executor().logs!(handle)) lines.push(line);
    expect(lines.some((line) => line.includes("conformance log line (stdout)"))).toBe(true);
    expect(lines.every((line) => !line.includes("\n"))).toBe(true);
  });

  it("a status poll rides out two 503s; a create is never repeated", async () => {
    const k8s = executor();
    const handle = await k8s.start(await jobWith("succeeds", {}));
    const gets = fake.requestsTo("GET", new RegExp(`/jobs/${String(handle.name)}$`)).length;
    fake.failNext(2, 503);
    expect((await k8s.status(handle)).state).toMatch(/running|completed/);
    expect(fake.requestsTo("GET", new RegExp(`/jobs/${String(handle.name)}$`)).length).toBe(gets + 3);
    const posts = fake.requestsTo("POST", /\/jobs$/).length;
    fake.failNext(1, 503);
    await expect(k8s.start(await jobWith("succeeds", {}))).rejects.toThrow("503 ServiceUnavailable");
    expect(fake.requestsTo("POST", /\/jobs$/).length).toBe(posts + 1);
    expect(await settle(k8s, handle)).toEqual({ state: "completed" });
  });

  it("a failed block's error carries the exit code and the block's message from the termination message", async () => {
    const k8s = executor();
    const status = await settle(k8s, await k8s.start(await jobWith("fails", {})));
    expect(status).toEqual({ state: "failed", error: "exit code 1: planned failure" });
  });
});

describe("credentials", () => {
  it("a wrong token: a clear 401 error that does not contain the token", async () => {
    const wrong = kubeconfigFile("wrong.yaml", { token: "not-the-token-7781" });
    const error = await executor({ KUBECONFIG: wrong })
      .start(await jobWith("succeeds", {}))
      .then(() => null, (e: unknown) => e as Error);
    expect(error?.message).toContain("401 Unauthorized");
    expect(error?.message).toContain(`kubeconfig ${wrong}, context fake`);
    expect(error?.message).not.toContain("not-the-token-7781");
    expect(fake.requests.at(-1)!.authorization).toBe("Bearer not-the-token-7781");
  });

  it("kubeconfig: current-context or executor_config.context, namespace, CA and client certificate data, tokenFile relative to the file", async () => {
    const pemText = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    writeFileSync(join(fixture.root, "token.txt"), "file-token\n");
    const text = stringify({
      "current-context": "a",
      clusters: [
        { name: "one", cluster: { server: "https://one.example:6443/", "certificate-authority-data": btoa(pemText) } },
        { name: "two", cluster: { server: "https://two.example", "insecure-skip-tls-verify": true } },
      ],
      users: [
        { name: "u1", user: { token: "t1" } },
        { name: "u2", user: { tokenFile: "token.txt", "client-certificate-data": btoa("CERT"), "client-key-data": btoa("KEY") } },
      ],
      contexts: [
        { name: "a", context: { cluster: "one", user: "u1", namespace: "team-a" } },
        { name: "b", context: { cluster: "two", user: "u2" } },
      ],
    });
    const path = join(fixture.root, "multi.yaml");
    const a = await parseKubeconfig(text, { path, contextName: null, readFile: readTextFile });
    expect(a).toMatchObject({ server: "https://one.example:6443", namespace: "team-a", token: "t1", tls: { ca: pemText, cert: null, key: null, insecureSkipVerify: false } });
    const b = await parseKubeconfig(text, { path, contextName: "b", readFile: readTextFile });
    expect(b).toMatchObject({ server: "https://two.example", namespace: null, token: "file-token", tls: { ca: null, cert: "CERT", key: "KEY", insecureSkipVerify: true } });
    await expect(parseKubeconfig(text, { path, contextName: "c", readFile: readTextFile })).rejects.toThrow('no context named "c"');
    const exec = stringify({ "current-context": "x", clusters: [{ name: "c", cluster: { server: "https://x" } }], users: [{ name: "u", user: { exec: { command: "aws" } } }], contexts: [{ name: "x", context: { cluster: "c", user: "u" } }] });
    await expect(parseKubeconfig(exec, { path: null, contextName: null, readFile: null })).rejects.toThrow("users.u.exec: credential plugins");
    await expect(parseKubeconfig("clusters: []", { path: null, contextName: null, readFile: null })).rejects.toThrow("no current-context: set executor_config.context");
  });

  it("where the cluster comes from: KILN_KUBECONFIG_DATA without files, in-cluster from the service account, and clear errors", async () => {
    const data = readFileSync(goodKubeconfig, "utf8");
    // no ReadFile at all (as on Workers): the inline kubeconfig works end to end
    const k8s = executor({ KILN_KUBECONFIG_DATA: data }, null);
    expect(await settle(k8s, await k8s.start(await jobWith("succeeds", {})))).toEqual({ state: "completed" });
    await expect(resolveConnection({ kubeconfig: "/etc/kube.yaml", context: null, inCluster: false }, {}, null)).rejects.toThrow(
      "executor_config.kubeconfig is the file /etc/kube.yaml, and kiln cannot read files on this runtime",
    );
    await expect(resolveConnection({ kubeconfig: null, context: null, inCluster: false }, {}, null)).rejects.toThrow("no Kubernetes cluster configured");
    // KUBECONFIG's first file that exists; ~/.kube/config last
    const listed = await resolveConnection({ kubeconfig: null, context: null, inCluster: false }, { KUBECONFIG: `${join(fixture.root, "absent.yaml")}:${goodKubeconfig}` }, readTextFile);
    expect(listed.source).toBe(`kubeconfig ${goodKubeconfig}, context fake`);
    await expect(resolveConnection({ kubeconfig: null, context: null, inCluster: false }, { KUBECONFIG: join(fixture.root, "absent.yaml") }, readTextFile)).rejects.toThrow("KUBECONFIG: none of its files exist");
    const home = join(fixture.root, "home");
    mkdirSync(join(home, ".kube"), { recursive: true });
    writeFileSync(join(home, ".kube/config"), data);
    expect((await resolveConnection({ kubeconfig: null, context: null, inCluster: false }, { HOME: home }, readTextFile)).server).toBe(fake.url);
    const files: Record<string, string> = {
      "/var/run/secrets/kubernetes.io/serviceaccount/token": "sa-token\n",
      "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt": "CA PEM",
      "/var/run/secrets/kubernetes.io/serviceaccount/namespace": "jobs\n",
    };
    const inCluster = await resolveConnection({ kubeconfig: null, context: null, inCluster: false }, { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" }, async (p) => files[p] ?? null);
    expect(inCluster).toMatchObject({ server: "https://10.0.0.1:443", token: "sa-token", namespace: "jobs", tls: { ca: "CA PEM" } });
    await expect(resolveConnection({ kubeconfig: null, context: null, inCluster: true }, {}, null)).rejects.toThrow("KUBERNETES_SERVICE_HOST is not set");
  });

  it("TLS with a private CA and a client certificate (Bun's fetch tls option)", async () => {
    const pki = makeTestPki(join(fixture.root, "pki"));
    const secure = new FakeKubernetes({ containers, token: null, namespaces: [NAMESPACE], tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requireClientCert: true } });
    try {
      const withCert = kubeconfigFile("tls.yaml", { "client-certificate-data": btoa(pki.clientCert), "client-key-data": btoa(pki.clientKey) }, { "certificate-authority-data": btoa(pki.ca) }, secure.url);
      const k8s = executor({ KUBECONFIG: withCert });
      const handle = await k8s.start(await jobWith("succeeds", {}));
      expect(await settle(k8s, handle)).toEqual({ state: "completed" });
      expect(secure.requests.length).toBeGreaterThan(0);

      // the CA by file path, relative to the kubeconfig, works the same
      const byPath = kubeconfigFile("pki/tls-paths.yaml", { "client-certificate": "client.crt", "client-key": "client.key" }, { "certificate-authority": "ca.crt" }, secure.url);
      expect((await executor({ KUBECONFIG: byPath }).start(await jobWith("succeeds", {}))).namespace).toBe(NAMESPACE);

      // insecure-skip-tls-verify trusts any server certificate (the client certificate still goes)
      const insecure = kubeconfigFile("tls-insecure.yaml", { "client-certificate-data": btoa(pki.clientCert), "client-key-data": btoa(pki.clientKey) }, { "insecure-skip-tls-verify": true }, secure.url);
      expect((await executor({ KUBECONFIG: insecure }).start(await jobWith("succeeds", {}))).namespace).toBe(NAMESPACE);

      // without the CA the server's certificate is not trusted; without the client certificate the handshake is refused
      const noCa = kubeconfigFile("tls-no-ca.yaml", { "client-certificate-data": btoa(pki.clientCert), "client-key-data": btoa(pki.clientKey) }, {}, secure.url);
      await expect(executor({ KUBECONFIG: noCa }).start(await jobWith("succeeds", {}))).rejects.toThrow(`cannot reach the Kubernetes API at ${secure.url}`);
      const noCert = kubeconfigFile("tls-no-cert.yaml", {}, { "certificate-authority-data": btoa(pki.ca) }, secure.url);
      await expect(executor({ KUBECONFIG: noCert }).start(await jobWith("succeeds", {}))).rejects.toThrow(`cannot reach the Kubernetes API at ${secure.url}`);
    } finally {
      secure.close();
    }
  });

  it("the package's main entry imports nothing from node: (it must load on Workers)", () => {
    const src = join(REPO_ROOT, "plugins/executor-kubernetes/src");
    for (const file of readdirSync(src).filter((f) => f !== "node.ts")) {
      expect({ file, nodeImports: readFileSync(join(src, file), "utf8").match(/from\s+["']node:[^"']+["']|import\(["']node:/g) ?? [] }).toEqual({ file, nodeImports: [] });
    }
  });
});

describe("validateConfig", () => {
  const cases: [JsonObject, string][] = [
    [{}, "executor_config.image: required"],
    [{ image: "x:1", namespace: "Not_A_Namespace" }, "executor_config.namespace"],
    [{ image: "x:1", ttl_seconds_after_finished: -1 }, "executor_config.ttl_seconds_after_finished"],
    [{ image: "x:1", schedule_timeout: 0 }, "executor_config.schedule_timeout"],
    [{ image: "x:1", resources: { limits: { memory: "lots" } } }, "executor_config.resources.limits.memory"],
    [{ image: "x:1", resources: { request: { cpu: "1" } } }, "executor_config.resources.request"],
    [{ image: "x:1", tolerations: [{ key: "a", operator: "Sometimes" }] }, "executor_config.tolerations[0].operator"],
    [{ image: "x:1", node_selector: { pool: "has spaces" } }, "executor_config.node_selector.pool"],
    [{ image: "x:1", env_from_secrets: [{ name: "X", secret: "s" }] }, "executor_config.env_from_secrets[0].key"],
    [{ image: "x:1", env: { A: 1 } }, "executor_config.env.A"],
    [{ image: "x:1", image_pull_policy: "Sometimes" }, "executor_config.image_pull_policy"],
    [{ image: "x:1", in_cluster: "yes" }, "executor_config.in_cluster"],
    [{ image: "x:1", nodeSelector: {} }, "executor_config.nodeSelector: unknown field"],
    [{ image: "x:1", token: "abc" }, "executor_config.token: credentials do not belong in kiln.yaml"],
  ];
  for (const [config, expected] of cases) {
    it(`${JSON.stringify(config)} -> ${expected}`, () => {
      expect(validateKubernetesConfig(config)).toContain(expected);
    });
  }

  it("a full config is accepted", () => {
    expect(
      validateKubernetesConfig({
        image: "ghcr.io/acme/etl:2026.1",
        namespace: "etl",
        command: ["bun", "/app/cli/src/main.ts"],
        project_root: "/app/project",
        env: { A: "1" },
        env_from_secrets: ["db", { name: "K", secret: "s", key: "k" }],
        resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: 2, "nvidia.com/gpu": "1" } },
        service_account: "kiln",
        node_selector: { "cloud.google.com/gke-nodepool": "batch" },
        tolerations: [{ operator: "Exists" }, { key: "k", operator: "Equal", value: "v", effect: "NoExecute", tolerationSeconds: 60 }],
        image_pull_policy: "Always",
        image_pull_secrets: ["ghcr"],
        ttl_seconds_after_finished: 3600,
        schedule_timeout: 120,
        kubeconfig: "/etc/kiln/kubeconfig",
        context: "prod",
        in_cluster: false,
      }),
    ).toBeNull();
  });
});

describe("judging a Job and its pod (objects as a real cluster returns them)", () => {
  const job = (status: JsonObject, extra: JsonObject = {}): KubeJob => ({ metadata: { name: "kiln-etl-load-7-1-x2x9q", namespace: "etl", uid: "u1", ...extra }, spec: { activeDeadlineSeconds: 600 }, status });
  const pod = (phase: string, status: JsonObject = {}): KubePod => ({ metadata: { name: "kiln-etl-load-7-1-x2x9q-abcde", creationTimestamp: "2026-01-01T00:00:00Z" }, status: { phase, ...status } });
  const terminated = (exitCode: number, reason: string, message?: string) => ({ containerStatuses: [{ name: "block", state: { terminated: { exitCode, reason, ...(message ? { message } : {}) } } }] });

  it("an out-of-memory kill, an eviction, a deadline, a config error", () => {
    const failed = { failed: 1, conditions: [{ type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded" }, { type: "Failed", status: "True", reason: "BackoffLimitExceeded" }] };
    expect(judge(job(failed), [pod("Failed", terminated(137, "OOMKilled"))], 0, 300)).toEqual({ status: { state: "failed", error: "exit code 137 (OOMKilled)" } });
    expect(judge(job(failed), [pod("Failed", { reason: "Evicted", message: "The node was low on resource: memory." })], 0, 300)).toEqual({
      status: { state: "failed", error: "the pod kiln-etl-load-7-1-x2x9q-abcde failed: Evicted: The node was low on resource: memory." },
    });
    const deadline = { failed: 1, conditions: [{ type: "Failed", status: "True", reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" }] };
    expect(judge(job(deadline), [], 0, 300)).toEqual({ status: { state: "failed", error: "timed out: the Job ran longer than its activeDeadlineSeconds (600 s, the block's timeout)" } });
    const waiting = { containerStatuses: [{ name: "block", state: { waiting: { reason: "InvalidImageName", message: 'couldn\'t parse image name "Bad Image"' } } }] };
    expect(judge(job({ active: 1 }), [pod("Pending", waiting)], 0, 300)).toEqual({ stuck: `the pod kiln-etl-load-7-1-x2x9q-abcde cannot start: InvalidImageName: couldn't parse image name "Bad Image"` });
  });

  it("the block's marked error is taken from the termination message; otherwise its last line", () => {
    const log = "2026-01-01T00:00:00Z INFO loading\nError: boom\n    at load (custom/load.js:3:9)\nkiln: block failed: boom: the table is missing\n";
    expect(judge(job({ failed: 1 }), [pod("Failed", terminated(1, "Error", log))], 0, 300)).toEqual({ status: { state: "failed", error: "exit code 1: boom: the table is missing" } });
    expect(judge(job({ failed: 1 }), [pod("Failed", terminated(2, "Error", "kiln: no pipeline etl in /app\n"))], 0, 300)).toEqual({ status: { state: "failed", error: "exit code 2: kiln: no pipeline etl in /app" } });
  });

  it("completed, running, pending within the grace; cancelled while a finalizer holds the Job", () => {
    expect(judge(job({ succeeded: 1, conditions: [{ type: "Complete", status: "True" }] }), [], 0, 300)).toEqual({ status: { state: "completed" } });
    expect(judge(job({ active: 1 }), [pod("Running", { containerStatuses: [{ name: "block", state: { running: {} } }] })], 0, 300)).toEqual({ status: { state: "running" } });
    const unschedulable = { conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient cpu." }] };
    expect(judge(job({ active: 1 }), [pod("Pending", unschedulable)], 299_000, 300)).toEqual({ status: { state: "running" } });
    expect(judge(job({ active: 1 }), [pod("Pending", unschedulable)], 301_000, 300)).toEqual({
      stuck: "the pod kiln-etl-load-7-1-x2x9q-abcde could not be scheduled in 300 s (executor_config.schedule_timeout): 0/3 nodes are available: 3 Insufficient cpu.",
    });
    expect(judge(job({ active: 1 }, { deletionTimestamp: "2026-01-01T00:00:05Z" }), [pod("Running")], 0, 300)).toEqual({ status: { state: "cancelled" } });
    expect(judge(job({ active: 1 }, { annotations: { "kiln.dev/failure": "earlier verdict" } }), [], 0, 300)).toEqual({ status: { state: "failed", error: "earlier verdict" } });
  });
});
