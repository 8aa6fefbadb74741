/**
 * The Kubernetes executor ("k8s"): each block run is a batch/v1 Job running `kiln run-block` in
 * the project's image. It talks to the API server with fetch only, so it loads on Bun, Deno,
 * Node and Workers; files (a kubeconfig path, the service account's token) are read only when
 * the caller gives it a ReadFile (see ./node.ts, which the kiln CLI uses).
 */
import type { BlockJob, ExecutionHandle, ExecutionStatus, Executor, ExecutorContext } from "@kiln/core";
import { KubeApiError, KubeClient, type Fetch } from "./client.ts";
import { DEFAULT_SCHEDULE_TIMEOUT, DEFAULT_TTL_SECONDS, parseKubernetesConfig, validateKubernetesConfig, type ConnectionChoice } from "./config.ts";
import { resolveConnection, type KubeConnection, type ReadFile } from "./connection.ts";
import { buildJobManifest, CANCELLED_ANNOTATION, CONTAINER_NAME, FAILURE_ANNOTATION, type KubeJob, type KubePod } from "./manifest.ts";
import { judge } from "./status.ts";

export { KubeApiError, KubeClient, tlsInit, type Fetch } from "./client.ts";
export { parseKubernetesConfig, validateKubernetesConfig, KubernetesConfigError, DEFAULT_SCHEDULE_TIMEOUT, DEFAULT_TTL_SECONDS, type KubernetesConfig } from "./config.ts";
export { KubeConfigError, KUBECONFIG_DATA_ENV, SERVICE_ACCOUNT_DIR, inClusterConnection, parseKubeconfig, resolveConnection, type KubeConnection, type ReadFile } from "./connection.ts";
export { buildJobManifest, jobLabels, jobNamePrefix, labelKey, labelValue, CANCELLED_ANNOTATION, FAILURE_ANNOTATION, type JobManifest, type KubeJob, type KubePod } from "./manifest.ts";
export { judge, describePodFailure } from "./status.ts";

export interface KubernetesExecutorOptions {
  context: Pick<ExecutorContext, "blockEnv" | "env">;
  /** Reads kubeconfig and service-account files; without it only KILN_KUBECONFIG_DATA's content is used. */
  readFile?: ReadFile | null;
  fetch?: Fetch;
}

/** What a stored handle holds: where the Job is and how to judge it, never a credential. */
interface K8sHandle {
  namespace: string;
  name: string;
  uid: string;
  /** Epoch ms on kiln's clock when the Job was created. */
  startedAt: number;
  ttlSecondsAfterFinished: number;
  scheduleTimeout: number;
  kubeconfig: string | null;
  context: string | null;
  inCluster: boolean;
}

/** A service-account token is rotated on disk: connections are looked up again after this. */
const CONNECTION_TTL_MS = 60_000;

function readHandle(handle: ExecutionHandle): K8sHandle {
  const { namespace, name, uid, startedAt, ttlSecondsAfterFinished, scheduleTimeout, kubeconfig, context, inCluster } = handle;
  if (typeof namespace !== "string" || typeof name !== "string" || typeof startedAt !== "number") {
    throw new Error(`not a k8s executor handle: ${JSON.stringify(handle)}`);
  }
  return {
    namespace,
    name,
    uid: typeof uid === "string" ? uid : "",
    startedAt,
    ttlSecondsAfterFinished: typeof ttlSecondsAfterFinished === "number" ? ttlSecondsAfterFinished : DEFAULT_TTL_SECONDS,
    scheduleTimeout: typeof scheduleTimeout === "number" ? scheduleTimeout : DEFAULT_SCHEDULE_TIMEOUT,
    kubeconfig: typeof kubeconfig === "string" ? kubeconfig : null,
    context: typeof context === "string" ? context : null,
    inCluster: inCluster === true,
  };
}

const jobPath = (namespace: string, name = "") => `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs${name ? `/${encodeURIComponent(name)}` : ""}`;
const podsPath = (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;

/** Splits a streamed body into lines. */
async function* lines(body: ReadableStream<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer) yield buffer;
}

/** Builds the "k8s" executor. */
export function kubernetesExecutor(options: KubernetesExecutorOptions): Executor {
  const { context } = options;
  const readFile = options.readFile ?? null;
  const connections = new Map<string, { at: number; client: Promise<KubeClient> }>();
  // Jobs this process deleted: a Job it cancelled is cancelled, whatever its age (see status)
  const cancelledHere = new Set<string>();

  function clientFor(choice: ConnectionChoice): Promise<KubeClient> {
    const key = JSON.stringify([choice.kubeconfig, choice.context, choice.inCluster]);
    const cached = connections.get(key);
    if (cached && Date.now() - cached.at < CONNECTION_TTL_MS) return cached.client;
    const client = resolveConnection(choice, context.env, readFile).then((connection: KubeConnection) => new KubeClient(connection, options.fetch));
    connections.set(key, { at: Date.now(), client });
    client.catch(() => connections.delete(key));
    return client;
  }

  const clientOf = (handle: K8sHandle) => clientFor({ kubeconfig: handle.kubeconfig, context: handle.context, inCluster: handle.inCluster });

  async function podsOf(client: KubeClient, handle: K8sHandle): Promise<KubePod[]> {
    const list = await client.json<{ items?: KubePod[] }>("GET", podsPath(handle.namespace), { query: { labelSelector: `job-name=${handle.name}` } });
    return list.items ?? [];
  }

  /** Ends a Job whose pod cannot start, keeping the reason on it so every later look reads the same failure. */
  async function endStuck(client: KubeClient, handle: K8sHandle, reason: string): Promise<void> {
    // activeDeadlineSeconds 1 makes the Job controller fail the Job and delete its pod; the Job
    // then finishes like any other, and ttlSecondsAfterFinished removes it
    const patch = { metadata: { annotations: { [FAILURE_ANNOTATION]: reason } }, spec: { activeDeadlineSeconds: 1 } };
    await client.send("PATCH", jobPath(handle.namespace, handle.name), { body: patch, contentType: "application/merge-patch+json" }).catch(() => {});
  }

  return {
    type: "k8s",
    remote: true,
    validateConfig: validateKubernetesConfig,

    async start(job: BlockJob): Promise<ExecutionHandle> {
      const config = parseKubernetesConfig(job.executorConfig);
      const client = await clientFor(config.connection);
      const namespace = config.namespace ?? client.connection.namespace ?? "default";
      const manifest = buildJobManifest(job, config, namespace, context.blockEnv);
      const startedAt = Date.now();
      const created = await client.json<KubeJob>("POST", jobPath(namespace), { body: manifest });
      const handle: K8sHandle = {
        namespace,
        name: created.metadata.name ?? "",
        uid: created.metadata.uid ?? "",
        startedAt,
        ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
        scheduleTimeout: config.scheduleTimeout,
        ...config.connection,
      };
      return { ...handle };
    },

    async status(stored: ExecutionHandle): Promise<ExecutionStatus> {
      const handle = readHandle(stored);
      const client = await clientOf(handle);
      let job: KubeJob;
      try {
        job = await client.json<KubeJob>("GET", jobPath(handle.namespace, handle.name));
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 404)) throw error;
        // Gone. Kubernetes removes a finished Job only ttlSecondsAfterFinished after it ends, so a
        // Job missing sooner than that was deleted while it ran: by kiln's cancel (which deletes
        // it) or by someone with kubectl, a cancel either way. Later, it may have finished and
        // been cleaned up: its outcome is lost, and saying so beats guessing.
        const elapsedMs = Date.now() - handle.startedAt;
        if (cancelledHere.has(handle.uid || handle.name) || elapsedMs < handle.ttlSecondsAfterFinished * 1000) return { state: "cancelled" };
        return {
          state: "failed",
          error: `the Job ${handle.namespace}/${handle.name} is gone and its outcome with it: Kubernetes deletes a finished Job ttl_seconds_after_finished (${handle.ttlSecondsAfterFinished} s) after it ends; raise it above the longest time kiln may be down`,
        };
      }
      if (handle.uid && job.metadata.uid && job.metadata.uid !== handle.uid) return { state: "cancelled" };
      const pods = await podsOf(client, handle);
      const verdict = judge(job, pods, Date.now() - handle.startedAt, handle.scheduleTimeout);
      if ("status" in verdict) return verdict.status;
      await endStuck(client, handle, verdict.stuck);
      return { state: "failed", error: verdict.stuck };
    },

    async cancel(stored: ExecutionHandle): Promise<void> {
      const handle = readHandle(stored);
      const client = await clientOf(handle);
      cancelledHere.add(handle.uid || handle.name);
      const path = jobPath(handle.namespace, handle.name);
      const gone = (error: unknown) => error instanceof KubeApiError && error.status === 404;
      try {
        // marked first, so a Job still being deleted (a finalizer holds it) reads as cancelled;
        // only a help, so an identity that may not patch Jobs still gets to delete it
        await client.send("PATCH", path, { body: { metadata: { annotations: { [CANCELLED_ANNOTATION]: "true" } } }, contentType: "application/merge-patch+json" });
      } catch (error) {
        if (gone(error)) return;
      }
      try {
        // Background: the Job goes now and its pod after it; the API's default for Jobs (Orphan) would leave the pod running
        await client.send("DELETE", path, { body: { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background" } });
      } catch (error) {
        if (!gone(error)) throw error;
      }
    },

    async *logs(stored: ExecutionHandle): AsyncIterable<string> {
      const handle = readHandle(stored);
      const client = await clientOf(handle);
      const pods = (await podsOf(client, handle)).sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""));
      for (const pod of pods) {
        if (!pod.metadata.name) continue;
        let response: Response;
        try {
          response = await client.send("GET", `${podsPath(handle.namespace)}/${encodeURIComponent(pod.metadata.name)}/log`, { query: { container: CONTAINER_NAME } });
        } catch (error) {
          // 400: the container never started (its image could not be pulled), so it has no log
          if (error instanceof KubeApiError && (error.status === 400 || error.status === 404)) continue;
          throw error;
        }
        if (response.body) yield* lines(response.body);
      }
    },
  };
}

/** The executor factory without file access (Workers): the kubeconfig comes from KILN_KUBECONFIG_DATA. */
export default function kubernetesExecutorFactory(context: ExecutorContext): Executor {
  return kubernetesExecutor({ context });
}
