/**
 * A fake Kubernetes API server on 127.0.0.1 for the k8s executor's tests: batch/v1 Jobs and
 * their Pods, with the checks the real API server makes on what the executor sends (bearer
 * token on every request, Job bodies validated into 422 Status answers), and state that moves
 * as a cluster's would: a Job makes a Pod (job-name label), the Pod is Pending, then Running
 * while its FakeContainers process runs, then Succeeded or Failed with the container's exit
 * code; the Job's status and conditions follow. It can refuse to pull an image, fail to
 * schedule a pod, or lack a Secret or ServiceAccount, and it records every request.
 */
import type { Server } from "bun";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeContainers, type FakeContainer } from "./fake-containers.ts";

/** PEM texts of a throwaway certificate authority, a server certificate for 127.0.0.1 and a client certificate, all signed by it. */
export interface TestPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Makes a TestPki with openssl in `dir` (P-256 keys, valid a day). */
export function makeTestPki(dir: string): TestPki {
  mkdirSync(dir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=kiln-test-ca");
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  // X.509 v3 with extensions, as a cluster's certificates are (rustls, under Deno's fetch, refuses v1)
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "server.ext");
  openssl("req", ...ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=kiln/O=kiln-runners");
  openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "1", "-extfile", "client.ext");
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  return { ca: read("ca.crt"), serverCert: read("server.crt"), serverKey: read("server.key"), clientCert: read("client.crt"), clientKey: read("client.key") };
}

type Json = Record<string, unknown>;

export interface FakeKubernetesOptions {
  containers: FakeContainers;
  /** The bearer token every request must carry (unless client certificates authenticate). */
  token?: string | null;
  /** Serve HTTPS with this certificate; with `requireClientCert`, only clients holding a certificate signed by `ca` get through. */
  tls?: { cert: string; key: string; ca?: string; requireClientCert?: boolean };
  /** Namespaces that exist; default ["default"]. */
  namespaces?: string[];
  /** Secrets by "namespace/name", each a map of keys to values. */
  secrets?: Record<string, Record<string, string>>;
  /** ServiceAccounts by "namespace/name", besides each namespace's "default". */
  serviceAccounts?: string[];
  /** Images the fake's registry does not have; default: names containing "does-not-exist". */
  unpullable?: (image: string) => boolean;
  /** The one node's labels; a pod whose nodeSelector asks for others is unschedulable. */
  nodeLabels?: Record<string, string>;
  /** The node's taints; a pod that does not tolerate them is unschedulable. */
  nodeTaints?: { key: string; value?: string; effect: string }[];
  /** How long a pod stays Pending before its container starts (ms); default 30. */
  pendingMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | null;
  contentType: string | null;
  body: unknown;
}

interface FakeJob {
  object: Json & { metadata: Json; spec: Json; status: Json };
  /** Epoch ms the Job finished, for ttlSecondsAfterFinished. */
  finishedAt: number | null;
}

interface FakePod {
  object: Json & { metadata: Json; spec: Json; status: Json };
  jobKey: string;
  createdAt: number;
  container: FakeContainer | null;
  /** Why the container cannot start: an image pull or config error (kept pending). */
  blocked: { reason: string; message: string } | null;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function validLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash >= 0 && !DNS_SUBDOMAIN.test(key.slice(0, slash))) return false;
  return LABEL_NAME.test(slash >= 0 ? key.slice(slash + 1) : key);
}

function status(code: number, reason: string, message: string, details?: Json): Response {
  return Response.json({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code }, { status: code });
}

function randomSuffix(length = 5): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)];
  return out;
}

/** Field errors of a Job body, as the API server's validation would list them. */
function validateJob(body: Json): { field: string; message: string }[] {
  const causes: { field: string; message: string }[] = [];
  const problem = (field: string, message: string) => causes.push({ field, message });
  const metadata = isObject(body.metadata) ? body.metadata : {};
  const spec = isObject(body.spec) ? body.spec : {};
  const template = isObject(spec.template) ? spec.template : {};
  const podSpec = isObject(template.spec) ? template.spec : {};
  const checkLabels = (labels: unknown, field: string) => {
    if (labels === undefined) return;
    if (!isObject(labels)) return problem(field, "must be a map");
    for (const [key, value] of Object.entries(labels)) {
      if (!validLabelKey(key)) problem(`${field}`, `Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
      if (typeof value !== "string" || !LABEL_VALUE.test(value)) problem(`${field}`, `Invalid value: ${JSON.stringify(value)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', at most 63`);
    }
  };
  if (metadata.name === undefined && metadata.generateName === undefined) problem("metadata.name", "Required value: name or generateName is required");
  if (typeof metadata.generateName === "string" && !/^[a-z0-9]([-a-z0-9]*)?$/.test(metadata.generateName)) problem("metadata.generateName", `Invalid value: "${metadata.generateName}"`);
  checkLabels(metadata.labels, "metadata.labels");
  checkLabels(template.metadata && isObject(template.metadata) ? template.metadata.labels : undefined, "spec.template.metadata.labels");
  for (const field of ["backoffLimit", "ttlSecondsAfterFinished"] as const) {
    const value = spec[field];
    if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < 0)) problem(`spec.${field}`, `Invalid value: ${JSON.stringify(value)}: must be greater than or equal to 0`);
  }
  const deadline = spec.activeDeadlineSeconds;
  if (deadline !== undefined && (typeof deadline !== "number" || !Number.isInteger(deadline) || deadline <= 0)) problem("spec.activeDeadlineSeconds", `Invalid value: ${JSON.stringify(deadline)}: must be greater than 0`);
  const restartPolicy = podSpec.restartPolicy;
  if (restartPolicy === undefined) problem("spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"');
  else if (restartPolicy !== "Never" && restartPolicy !== "OnFailure") problem("spec.template.spec.restartPolicy", `Unsupported value: ${JSON.stringify(restartPolicy)}: supported values: "OnFailure", "Never"`);
  if (podSpec.serviceAccountName !== undefined && (typeof podSpec.serviceAccountName !== "string" || !DNS_SUBDOMAIN.test(podSpec.serviceAccountName))) problem("spec.template.spec.serviceAccountName", "Invalid value");
  checkLabels(podSpec.nodeSelector, "spec.template.spec.nodeSelector");
  if (podSpec.tolerations !== undefined) {
    if (!Array.isArray(podSpec.tolerations)) problem("spec.template.spec.tolerations", "must be a list");
    else
      podSpec.tolerations.forEach((t: unknown, i) => {
        const field = `spec.template.spec.tolerations[${i}]`;
        if (!isObject(t)) return problem(field, "must be an object");
        if (t.operator !== undefined && t.operator !== "Exists" && t.operator !== "Equal") problem(`${field}.operator`, `Unsupported value: ${JSON.stringify(t.operator)}`);
        if (t.effect !== undefined && !["NoSchedule", "PreferNoSchedule", "NoExecute", ""].includes(String(t.effect))) problem(`${field}.effect`, `Unsupported value: ${JSON.stringify(t.effect)}`);
      });
  }
  const containers = podSpec.containers;
  if (!Array.isArray(containers) || containers.length === 0) problem("spec.template.spec.containers", "Required value");
  else
    containers.forEach((c: unknown, i) => {
      const field = `spec.template.spec.containers[${i}]`;
      if (!isObject(c)) return problem(field, "must be an object");
      if (typeof c.name !== "string" || !DNS_LABEL.test(c.name)) problem(`${field}.name`, c.name === undefined ? "Required value" : `Invalid value: ${JSON.stringify(c.name)}`);
      if (typeof c.image !== "string" || c.image.trim() === "") problem(`${field}.image`, "Required value");
      if (c.imagePullPolicy !== undefined && !["Always", "IfNotPresent", "Never"].includes(String(c.imagePullPolicy))) problem(`${field}.imagePullPolicy`, `Unsupported value: ${JSON.stringify(c.imagePullPolicy)}`);
      if (c.command !== undefined && (!Array.isArray(c.command) || !c.command.every((w) => typeof w === "string"))) problem(`${field}.command`, "must be a list of strings");
      if (Array.isArray(c.env)) {
        c.env.forEach((e: unknown, j) => {
          const envField = `${field}.env[${j}]`;
          if (!isObject(e) || typeof e.name !== "string" || !ENV_NAME.test(e.name)) return problem(`${envField}.name`, "Invalid value: a valid environment variable name");
          if (e.value !== undefined && typeof e.value !== "string") problem(`${envField}.value`, "must be a string");
          if (e.valueFrom !== undefined) {
            if (e.value !== undefined) problem(`${envField}.valueFrom`, "Invalid value: may not be specified when `value` is not empty");
            const ref = isObject(e.valueFrom) && isObject(e.valueFrom.secretKeyRef) ? e.valueFrom.secretKeyRef : null;
            if (!ref || typeof ref.name !== "string" || typeof ref.key !== "string") problem(`${envField}.valueFrom.secretKeyRef`, "Required value: name and key");
          }
        });
      }
      if (Array.isArray(c.envFrom)) {
        c.envFrom.forEach((e: unknown, j) => {
          const ref = isObject(e) && isObject(e.secretRef) ? e.secretRef : null;
          if (!ref || typeof ref.name !== "string" || !DNS_SUBDOMAIN.test(ref.name)) problem(`${field}.envFrom[${j}].secretRef.name`, "Required value");
        });
      }
      if (isObject(c.resources)) {
        for (const [kind, amounts] of Object.entries(c.resources)) {
          if (kind !== "requests" && kind !== "limits") problem(`${field}.resources.${kind}`, "unknown field");
          else if (isObject(amounts))
            for (const [name, amount] of Object.entries(amounts)) {
              if (typeof amount !== "string" || !QUANTITY.test(amount)) problem(`${field}.resources.${kind}[${name}]`, `Invalid value: ${JSON.stringify(amount)}: quantities must match the regular expression`);
            }
        }
      }
    });
  return causes;
}

/** A fake kube-apiserver; `close()` stops it and the processes of its pods. */
export class FakeKubernetes {
  readonly requests: RecordedRequest[] = [];
  readonly jobs = new Map<string, FakeJob>();
  readonly pods = new Map<string, FakePod>();
  readonly #server: Server<undefined>;
  readonly #options: FakeKubernetesOptions;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  // a cluster moves on whether or not anyone asks: containers end, deadlines pass, TTLs expire
  readonly #clock = setInterval(() => this.refresh(), 50);

  constructor(options: FakeKubernetesOptions) {
    this.#options = options;
    this.#server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      ...(options.tls
        ? { tls: { cert: options.tls.cert, key: options.tls.key, ...(options.tls.ca ? { ca: options.tls.ca } : {}), requestCert: options.tls.requireClientCert === true, rejectUnauthorized: options.tls.requireClientCert === true } }
        : {}),
      fetch: (request) => this.#handle(request),
    });
  }

  /** The API server's URL, as a kubeconfig's clusters[].cluster.server. */
  get url(): string {
    return `${this.#options.tls ? "https" : "http"}://127.0.0.1:${this.#server.port}`;
  }

  /** Stops the server, its timers and every pod's process. */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    clearInterval(this.#clock);
    this.#server.stop(true);
    this.#options.containers.stopAll();
  }

  /** The Job's pods (by its job-name label), oldest first. */
  podsOf(namespace: string, jobName: string): FakePod[] {
    this.refresh();
    return [...this.pods.values()].filter((p) => (p.object.metadata.namespace as string) === namespace && (p.object.metadata.labels as Json)["job-name"] === jobName);
  }

  /** Whether a Job is gone and no process of its pods still runs. */
  stopped(namespace: string, jobName: string): boolean {
    this.refresh();
    if (this.jobs.has(`${namespace}/${jobName}`)) return false;
    const containers = [...this.#options.containers.containers.values()].filter((c) => c.env.KILN_FAKE_K8S_JOB === `${namespace}/${jobName}`);
    return containers.every((c) => c.state === "exited");
  }

  #failures: { count: number; code: number } = { count: 0, code: 503 };

  /** Answers the next `count` requests with `code` (after recording them), as an overloaded API server would. */
  failNext(count: number, code = 503): void {
    this.#failures = { count, code };
  }

  /** Requests to one path suffix and method, in order. */
  requestsTo(method: string, pathPattern: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && pathPattern.test(r.path));
  }

  /** Moves every pod and Job along: containers start, end, deadlines pass, finished Jobs expire. */
  refresh(): void {
    const now = Date.now();
    for (const pod of this.pods.values()) {
      const phase = pod.object.status.phase;
      if (phase === "Pending" && !pod.blocked && now - pod.createdAt >= (this.#options.pendingMs ?? 30)) this.#startPod(pod);
      if (pod.container && pod.object.status.phase === "Running" && pod.container.state === "exited") this.#endPod(pod);
      if (pod.blocked?.reason === "ErrImagePull" && now - pod.createdAt > 1_000) {
        pod.blocked = { reason: "ImagePullBackOff", message: `Back-off pulling image "${this.#containerSpec(pod).image as string}"` };
        this.#setWaiting(pod);
      }
    }
    for (const [key, job] of this.jobs) {
      const spec = job.object.spec;
      const jobStatus = job.object.status;
      const finished = job.finishedAt !== null;
      const deadline = spec.activeDeadlineSeconds as number | undefined;
      const startTime = Date.parse(jobStatus.startTime as string);
      if (!finished && deadline !== undefined && now - startTime > deadline * 1000) {
        // the Job controller fails the Job and deletes its active pods
        for (const pod of this.#podsOfKey(key)) this.#deletePod(pod);
        this.#finishJob(job, false, "DeadlineExceeded", "Job was active longer than specified deadline");
      }
      const ttl = spec.ttlSecondsAfterFinished as number | undefined;
      if (job.finishedAt !== null && ttl !== undefined && now - job.finishedAt >= ttl * 1000) this.#deleteJob(key, "Background");
      if (job.object.metadata.deletionTimestamp && this.#podsOfKey(key).every((p) => p.container === null || p.container.state === "exited")) {
        for (const pod of this.#podsOfKey(key)) this.pods.delete(pod.object.metadata.name as string);
        this.jobs.delete(key);
      }
    }
  }

  #podsOfKey(jobKey: string): FakePod[] {
    return [...this.pods.values()].filter((p) => p.jobKey === jobKey);
  }

  #containerSpec(pod: FakePod): Json {
    return (pod.object.spec.containers as Json[])[0]!;
  }

  #setWaiting(pod: FakePod): void {
    const container = this.#containerSpec(pod);
    pod.object.status.containerStatuses = [{ name: container.name, image: container.image, ready: false, restartCount: 0, state: { waiting: pod.blocked } }];
  }

  #schedulingProblem(pod: FakePod): string | null {
    const selector = (pod.object.spec.nodeSelector ?? {}) as Record<string, string>;
    const labels = this.#options.nodeLabels ?? { "kubernetes.io/os": "linux" };
    if (Object.entries(selector).some(([k, v]) => labels[k] !== v)) return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    const tolerations = (pod.object.spec.tolerations ?? []) as { key?: string; operator?: string; value?: string; effect?: string }[];
    for (const taint of this.#options.nodeTaints ?? []) {
      const tolerated = tolerations.some(
        (t) =>
          (t.effect === undefined || t.effect === "" || t.effect === taint.effect) &&
          (t.operator === "Exists" ? t.key === undefined || t.key === taint.key : t.key === taint.key && (t.value ?? "") === (taint.value ?? "")),
      );
      if (!tolerated) return `0/1 nodes are available: 1 node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}.`;
    }
    return null;
  }

  /** The container's environment with Secret references resolved, or the config error that keeps it from starting. */
  #resolveEnv(pod: FakePod): { env: Record<string, string> } | { error: string } {
    const namespace = pod.object.metadata.namespace as string;
    const container = this.#containerSpec(pod);
    const secrets = this.#options.secrets ?? {};
    const env: Record<string, string> = {};
    for (const from of (container.envFrom ?? []) as { secretRef: { name: string } }[]) {
      const secret = secrets[`${namespace}/${from.secretRef.name}`];
      if (!secret) return { error: `secret "${from.secretRef.name}" not found` };
      Object.assign(env, secret);
    }
    for (const variable of (container.env ?? []) as { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[]) {
      if (variable.valueFrom) {
        const { name, key } = variable.valueFrom.secretKeyRef;
        const secret = secrets[`${namespace}/${name}`];
        if (!secret) return { error: `secret "${name}" not found` };
        if (!(key in secret)) return { error: `couldn't find key ${key} in Secret ${namespace}/${name}` };
        env[variable.name] = secret[key]!;
      } else {
        env[variable.name] = variable.value ?? "";
      }
    }
    return { env };
  }

  #startPod(pod: FakePod): void {
    const container = this.#containerSpec(pod);
    const image = container.image as string;
    const unschedulable = this.#schedulingProblem(pod);
    if (unschedulable) {
      pod.object.status.conditions = [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: unschedulable, lastTransitionTime: new Date().toISOString() }];
      return;
    }
    pod.object.spec.nodeName = "fake-node-1";
    pod.object.status.conditions = [{ type: "PodScheduled", status: "True", lastTransitionTime: new Date().toISOString() }];
    if ((this.#options.unpullable ?? ((name: string) => name.includes("does-not-exist")))(image)) {
      pod.blocked = { reason: "ErrImagePull", message: `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found` };
      this.#setWaiting(pod);
      return;
    }
    const resolved = this.#resolveEnv(pod);
    if ("error" in resolved) {
      pod.blocked = { reason: "CreateContainerConfigError", message: resolved.error };
      this.#setWaiting(pod);
      return;
    }
    const command = (container.command ?? []) as string[];
    pod.container = this.#options.containers.run(command, { ...resolved.env, KILN_FAKE_K8S_JOB: pod.jobKey });
    pod.object.status.phase = "Running";
    pod.object.status.startTime = new Date().toISOString();
    pod.object.status.containerStatuses = [{ name: container.name, image, ready: true, restartCount: 0, state: { running: { startedAt: new Date().toISOString() } } }];
  }

  #endPod(pod: FakePod): void {
    const fake = pod.container!;
    const container = this.#containerSpec(pod);
    const code = fake.exitCode ?? 1;
    const terminated: Json = { exitCode: code, reason: code === 0 ? "Completed" : "Error", startedAt: new Date(fake.startedAt).toISOString(), finishedAt: new Date(fake.finishedAt ?? Date.now()).toISOString() };
    if (code !== 0 && container.terminationMessagePolicy === "FallbackToLogsOnError") {
      // the kubelet's fallback: the last 80 lines of the log, at most 2048 bytes
      terminated.message = fake.output.split("\n").slice(-80).join("\n").slice(-2048);
    }
    pod.object.status.phase = code === 0 ? "Succeeded" : "Failed";
    pod.object.status.containerStatuses = [{ name: container.name, image: container.image, ready: false, restartCount: 0, state: { terminated } }];
    const job = this.jobs.get(pod.jobKey);
    if (job && job.finishedAt === null) {
      if (code === 0) this.#finishJob(job, true, "", "");
      else this.#finishJob(job, false, "BackoffLimitExceeded", "Job has reached the specified backoff limit");
    }
  }

  #finishJob(job: FakeJob, succeeded: boolean, reason: string, message: string): void {
    const now = new Date().toISOString();
    const jobStatus = job.object.status;
    jobStatus.active = 0;
    if (succeeded) {
      jobStatus.succeeded = 1;
      jobStatus.completionTime = now;
      jobStatus.conditions = [{ type: "Complete", status: "True", lastProbeTime: now, lastTransitionTime: now }];
    } else {
      jobStatus.failed = 1;
      jobStatus.conditions = [{ type: "Failed", status: "True", reason, message, lastProbeTime: now, lastTransitionTime: now }];
    }
    job.finishedAt = Date.now();
  }

  #deletePod(pod: FakePod): void {
    if (pod.container && pod.container.state === "running") this.#options.containers.stop(pod.container.id, 1_000);
    this.pods.delete(pod.object.metadata.name as string);
  }

  #deleteJob(key: string, propagation: string): void {
    const job = this.jobs.get(key);
    if (!job) return;
    if (propagation === "Orphan") {
      // the pods stay, running, without their owner
      for (const pod of this.#podsOfKey(key)) pod.object.metadata.ownerReferences = [];
      this.jobs.delete(key);
      return;
    }
    if (propagation === "Foreground") {
      job.object.metadata.deletionTimestamp = new Date().toISOString();
      for (const pod of this.#podsOfKey(key)) if (pod.container?.state === "running") this.#options.containers.stop(pod.container.id, 1_000);
      return;
    }
    for (const pod of this.#podsOfKey(key)) this.#deletePod(pod);
    this.jobs.delete(key);
  }

  #createJob(namespace: string, body: Json): Response {
    if (body.apiVersion !== "batch/v1" || body.kind !== "Job") {
      return status(400, "BadRequest", `the API version in the data (${String(body.apiVersion)}) or kind (${String(body.kind)}) does not match the expected batch/v1 Job`);
    }
    const metadata = isObject(body.metadata) ? { ...body.metadata } : {};
    if (metadata.namespace !== undefined && metadata.namespace !== namespace) return status(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    const causes = validateJob(body);
    let name = typeof metadata.name === "string" ? metadata.name : typeof metadata.generateName === "string" ? `${metadata.generateName}${randomSuffix()}` : "";
    if (name && !DNS_SUBDOMAIN.test(name)) causes.push({ field: "metadata.name", message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'` });
    // the Job's pods carry its name as the job-name label, so it must be a valid label value
    if (name.length > 63) causes.push({ field: "spec.template.labels", message: `Invalid value: "${name}": must be no more than 63 characters` });
    if (causes.length > 0) {
      return status(422, "Invalid", `Job.batch "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`, {
        name,
        group: "batch",
        kind: "Job",
        causes: causes.map((c) => ({ reason: "FieldValueInvalid", message: c.message, field: c.field })),
      });
    }
    if (this.jobs.has(`${namespace}/${name}`)) return status(409, "AlreadyExists", `jobs.batch "${name}" already exists`);
    const uid = crypto.randomUUID();
    const now = new Date().toISOString();
    const spec = { ...(body.spec as Json) };
    const template = spec.template as Json;
    const jobLabels = { ...((metadata.labels as Json) ?? {}) };
    const object = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { ...metadata, name, namespace, uid, creationTimestamp: now, resourceVersion: "1", labels: jobLabels },
      spec,
      status: { active: 1, startTime: now },
    };
    const key = `${namespace}/${name}`;
    this.jobs.set(key, { object, finishedAt: null });
    const podSpec = template.spec as Json;
    const serviceAccount = (podSpec.serviceAccountName as string | undefined) ?? "default";
    const knownAccount = serviceAccount === "default" || (this.#options.serviceAccounts ?? []).includes(`${namespace}/${serviceAccount}`);
    if (knownAccount) {
      // the Job controller makes the pod; with a missing ServiceAccount it cannot (FailedCreate events)
      const templateMeta = (template.metadata ?? {}) as Json;
      const podName = `${name}-${randomSuffix()}`;
      const pod: FakePod = {
        object: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            name: podName,
            namespace,
            uid: crypto.randomUUID(),
            creationTimestamp: now,
            labels: { ...((templateMeta.labels as Json) ?? {}), "job-name": name, "batch.kubernetes.io/job-name": name, "controller-uid": uid },
            annotations: { ...((templateMeta.annotations as Json) ?? {}) },
            ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name, uid, controller: true }],
          },
          spec: structuredClone(podSpec),
          status: { phase: "Pending", conditions: [] },
        },
        jobKey: key,
        createdAt: Date.now(),
        container: null,
        blocked: null,
      };
      this.pods.set(podName, pod);
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.refresh();
      }, (this.#options.pendingMs ?? 30) + 5);
      this.#timers.add(timer);
    }
    return Response.json(object, { status: 201 });
  }

  #patchJob(key: string, request: Request, body: unknown): Response {
    const job = this.jobs.get(key);
    const name = key.split("/")[1];
    if (!job) return status(404, "NotFound", `jobs.batch "${name}" not found`);
    const type = request.headers.get("content-type") ?? "";
    if (!["application/merge-patch+json", "application/strategic-merge-patch+json"].includes(type.split(";")[0]!)) {
      return status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
    }
    if (!isObject(body)) return status(400, "BadRequest", "the patch is not an object");
    const metadata = isObject(body.metadata) ? body.metadata : {};
    if (isObject(metadata.annotations)) job.object.metadata.annotations = { ...((job.object.metadata.annotations as Json) ?? {}), ...metadata.annotations };
    if (isObject(body.spec)) {
      for (const [field, value] of Object.entries(body.spec)) {
        if (field !== "activeDeadlineSeconds" && field !== "ttlSecondsAfterFinished") return status(422, "Invalid", `Job.batch "${name}" is invalid: spec.${field}: Invalid value: field is immutable`);
        if (typeof value !== "number" || !Number.isInteger(value) || value < (field === "activeDeadlineSeconds" ? 1 : 0)) return status(422, "Invalid", `Job.batch "${name}" is invalid: spec.${field}: Invalid value`);
        job.object.spec[field] = value;
      }
    }
    this.refresh();
    return Response.json(job.object);
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const text = await request.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        return status(400, "BadRequest", "the request body is not JSON");
      }
    }
    const authorization = request.headers.get("authorization");
    this.requests.push({ method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams), authorization, contentType: request.headers.get("content-type"), body });
    const token = this.#options.token ?? null;
    if (token !== null && authorization !== `Bearer ${token}`) return status(401, "Unauthorized", "Unauthorized");
    if (token === null && !this.#options.tls?.requireClientCert) return status(401, "Unauthorized", "Unauthorized");
    if (this.#failures.count > 0) {
      this.#failures.count--;
      const reasons: Record<number, string> = { 403: "Forbidden", 429: "TooManyRequests" };
      return status(this.#failures.code, reasons[this.#failures.code] ?? "ServiceUnavailable", this.#failures.code === 403 ? "forbidden by the fake's policy" : "the server is currently unable to handle the request");
    }
    this.refresh();

    const namespaces = this.#options.namespaces ?? ["default"];
    const jobs = url.pathname.match(/^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs(?:\/([^/]+))?$/);
    const pods = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+)(\/log)?)?$/);
    const namespace = decodeURIComponent((jobs ?? pods)?.[1] ?? "");
    if ((jobs || pods) && !namespaces.includes(namespace)) return status(404, "NotFound", `namespaces "${namespace}" not found`);
    if (jobs) {
      const name = jobs[2] ? decodeURIComponent(jobs[2]) : null;
      const key = `${namespace}/${name}`;
      if (!name && request.method === "POST") {
        if ((request.headers.get("content-type") ?? "").split(";")[0] !== "application/json") {
          return status(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf");
        }
        return this.#createJob(namespace, isObject(body) ? body : {});
      }
      if (name && request.method === "GET") {
        const job = this.jobs.get(key);
        return job ? Response.json(job.object) : status(404, "NotFound", `jobs.batch "${name}" not found`, { name, group: "batch", kind: "jobs" });
      }
      if (name && request.method === "PATCH") return this.#patchJob(key, request, body);
      if (name && request.method === "DELETE") {
        if (!this.jobs.has(key)) return status(404, "NotFound", `jobs.batch "${name}" not found`, { name, group: "batch", kind: "jobs" });
        const options = isObject(body) ? body : {};
        const propagation = typeof options.propagationPolicy === "string" ? options.propagationPolicy : "Orphan";
        if (!["Orphan", "Background", "Foreground"].includes(propagation)) return status(400, "BadRequest", `unsupported propagationPolicy ${propagation}`);
        this.#deleteJob(key, propagation);
        return Response.json({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, group: "batch", kind: "jobs", uid: "" } });
      }
    }
    if (pods && !pods[2] && request.method === "GET") {
      const selector = url.searchParams.get("labelSelector") ?? "";
      const wanted = selector
        .split(",")
        .filter(Boolean)
        .map((term) => term.split("=") as [string, string]);
      const items = [...this.pods.values()]
        .filter((p) => p.object.metadata.namespace === namespace)
        .filter((p) => wanted.every(([k, v]) => (p.object.metadata.labels as Json)[k] === v))
        .map((p) => p.object);
      return Response.json({ kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items });
    }
    if (pods && pods[2] && pods[3] && request.method === "GET") {
      const podName = decodeURIComponent(pods[2]);
      const pod = this.pods.get(podName);
      if (!pod || pod.object.metadata.namespace !== namespace) return status(404, "NotFound", `pods "${podName}" not found`);
      const container = this.#containerSpec(pod);
      const asked = url.searchParams.get("container");
      if (asked !== null && asked !== container.name) return status(400, "BadRequest", `container ${asked} is not valid for pod ${podName}`);
      if (!pod.container) {
        const why = pod.blocked ? `trying and failing to pull image` : "ContainerCreating";
        return status(400, "BadRequest", `container "${String(container.name)}" in pod "${podName}" is waiting to start: ${why}`);
      }
      return new Response(pod.container.output, { headers: { "content-type": "text/plain" } });
    }
    return status(404, "NotFound", "the server could not find the requested resource");
  }
}
