/**
 * The Docker executor: each block run is a container, from executor_config.image, running
 * `kiln run-block <project_root> <pipeline> <block> --pipeline-run-id N --block-run-id M`.
 *
 * Stateless: the handle stored on the block run names the container and the engine it runs on,
 * so any kiln process can poll, cancel or read it. Who cleans up:
 * - a container that ended stays until its log has been read (logs(), which kiln calls when the
 *   block run ends and copies into the block run's log), then logs() removes it; a container
 *   whose log is never read is removed by the next start() on that engine once it has been
 *   finished for REMOVE_UNREAD_AFTER_MS;
 * - cancel renames the container (the name is the cancel marker: its exit code after SIGTERM
 *   would otherwise read as success or failure), stops it, then removes it;
 * - executor_config.keep_container: true keeps every container (for debugging).
 * A container that no longer exists reads as cancelled: kiln removes one only when cancelling it
 * or after its end was reported, so a missing container was stopped from outside the block.
 */
import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import { blockRunEnv, blockRunLabels, runBlockArgs, type BlockJob, type ExecutionHandle, type ExecutionStatus, type Executor, type ExecutorContext, type ExecutorFactory, type JsonObject, messageOf } from "@kiln/core";
import { BLOCK_FAILED_MARK } from "@kiln/executor-local";
import { defaultImage, dockerConfigProblem, parseDockerConfig, type DockerRunConfig } from "./config.ts";
import { DockerClients, dockerEndpoint } from "./connection.ts";
import { CANCELLED_SUFFIX, demuxOutput, outputLines, statusOfContainer, failureDetail } from "./container.ts";

export { DEFAULT_IMAGE, DEFAULT_PROJECT_ROOT, defaultImage, DockerConfigError, parseDockerConfig, parseMemory, type DockerRunConfig, type PullPolicy } from "./config.ts";
export { DEFAULT_DOCKER_HOST, dockerEndpoint, dockerOptions } from "./connection.ts";
export { CANCELLED_SUFFIX, demuxOutput, failureDetail, outputLines, statusOfContainer } from "./container.ts";

/** Labels on every container this executor creates, beside blockRunLabels. */
export const MANAGED_LABEL = "kiln.executor";
export const KEEP_LABEL = "kiln.keep-container";

/** How long a finished container whose log nobody read is kept before start() sweeps it away. */
export const REMOVE_UNREAD_AFTER_MS = 15 * 60_000;

/** What the handle stored on the block run holds. */
export interface DockerHandle extends JsonObject {
  executor: "docker";
  container_id: string;
  container_name: string;
  /** The engine's endpoint (unix://, tcp://, https://); credentials are never stored here. */
  docker_host: string;
  keep_container: boolean;
}

export interface DockerExecutorOptions {
  /** Environment every block needs (KILN_DATABASE_URL, ...), passed into each container. */
  blockEnv?: Record<string, string>;
  /** kiln's own environment, for DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH. */
  env?: Record<string, string | undefined>;
}

function parseHandle(handle: ExecutionHandle): DockerHandle {
  const { container_id: id, container_name: name, docker_host: host } = handle;
  if (typeof id !== "string" || typeof name !== "string" || typeof host !== "string") {
    throw new Error(`not a docker executor handle: ${JSON.stringify(handle)}`);
  }
  return { executor: "docker", container_id: id, container_name: name, docker_host: host, keep_container: handle.keep_container === true };
}

/** Whether dockerode's error is the engine's 404 (no such container or image). */
function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { statusCode?: unknown }).statusCode === 404;
}

/** Whether the engine refused because the container is in a state that already gives what was asked (stopped, being removed). */
function isAlreadyDone(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { statusCode?: unknown }).statusCode : undefined;
  return code === 304 || code === 404 || code === 409;
}

/** The engine's own message of a dockerode error (its Error message adds "(HTTP code N)"), else messageOf's. */
function dockerMessageOf(error: unknown): string {
  const json = typeof error === "object" && error !== null ? (error as { json?: { message?: unknown } }).json : undefined;
  if (json && typeof json.message === "string" && json.message) return json.message;
  return messageOf(error);
}

/** A container name from the block run (Docker names allow [a-zA-Z0-9_.-]), unique across kiln databases sharing an engine. */
function containerName(job: BlockJob): string {
  const safe = (text: string) => text.replace(/[^a-zA-Z0-9_.-]+/g, "-").slice(0, 60);
  return `kiln-${safe(job.pipelineUuid)}-${safe(job.blockUuid)}-${job.blockRunId}-a${job.attempt}-${randomBytes(3).toString("hex")}`;
}

/** The events of a pull's progress stream; a failed pull still answers HTTP 200, with `error` in an event. */
interface PullEvent {
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** Pulls an image, failing with the registry's message whether it comes as an HTTP error or inside the progress stream. */
async function pullImage(docker: Docker, image: string): Promise<void> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.pull(image);
  } catch (error) {
    throw new Error(`could not pull image ${image}: ${dockerMessageOf(error)}`);
  }
  const events = await new Promise<PullEvent[]>((resolve, reject) => {
    docker.modem.followProgress(stream, (error: Error | null, result: PullEvent[]) => (error ? reject(error) : resolve(result)));
  }).catch((error: unknown) => {
    throw new Error(`could not pull image ${image}: ${dockerMessageOf(error)}`);
  });
  const failed = events.find((event) => event.error || event.errorDetail?.message);
  if (failed) throw new Error(`could not pull image ${image}: ${failed.errorDetail?.message || failed.error}`);
}

/** Makes sure the image is there as the pull policy asks; a missing default image says how to make it. */
async function ensureImage(docker: Docker, config: DockerRunConfig): Promise<void> {
  if (!config.imageIsDefault) return ensureNamedImage(docker, config);
  try {
    await ensureNamedImage(docker, config);
  } catch (error) {
    throw new Error(
      `${dockerMessageOf(error)} (no executor_config.image, so kiln's own image: build it in kiln's repository with \`docker build -t kiln .\` or \`podman build -t kiln .\`, set KILN_DOCKER_IMAGE to where you pushed it, or name an image in executor_config.image)`,
    );
  }
}

/** Makes sure the image is there as the pull policy asks. */
async function ensureNamedImage(docker: Docker, config: DockerRunConfig): Promise<void> {
  if (config.pull === "never") return;
  if (config.pull === "missing") {
    try {
      await docker.getImage(config.image).inspect();
      return;
    } catch (error) {
      if (!isNotFound(error)) throw new Error(`could not look up image ${config.image}: ${dockerMessageOf(error)}`);
    }
  }
  await pullImage(docker, config.image);
}

/** The container's whole output so far, as frames. */
async function readOutput(container: Docker.Container): Promise<ReturnType<typeof demuxOutput>> {
  const bytes: Buffer = await container.logs({ stdout: true, stderr: true, follow: false });
  return demuxOutput(bytes);
}

/** Builds the Docker executor. */
export function dockerExecutor(options: DockerExecutorOptions = {}): Executor {
  const env = options.env ?? {};
  const blockEnv = options.blockEnv ?? {};
  const clients = new DockerClients(env);
  /** When each engine was last swept of unread finished containers, by endpoint. */
  const sweptAt = new Map<string, number>();

  const containerOf = (handle: DockerHandle) => clients.get(handle.docker_host).getContainer(handle.container_id);

  /** Removes a container, quietly when it is already gone or on its way. */
  async function remove(container: Docker.Container): Promise<void> {
    try {
      await container.remove({ force: true, v: true });
    } catch (error) {
      if (!isAlreadyDone(error)) throw error;
    }
  }

  /** Removes finished, not-kept containers of this executor whose log nobody read, now and then per engine. */
  async function sweep(endpoint: string, docker: Docker): Promise<void> {
    const now = Date.now();
    if (now - (sweptAt.get(endpoint) ?? 0) < REMOVE_UNREAD_AFTER_MS / 3) return;
    sweptAt.set(endpoint, now);
    const finished = await docker.listContainers({
      all: true,
      filters: { label: [`${MANAGED_LABEL}=docker`, `${KEEP_LABEL}=false`], status: ["exited", "dead"] },
    });
    for (const summary of finished) {
      const container = docker.getContainer(summary.Id);
      const info = await container.inspect().catch(() => null);
      const finishedAt = info ? Date.parse(info.State.FinishedAt) : NaN;
      if (Number.isFinite(finishedAt) && now - finishedAt > REMOVE_UNREAD_AFTER_MS) await remove(container).catch(() => {});
    }
  }

  return {
    type: "docker",
    remote: true,

    validateConfig: (config: JsonObject) => dockerConfigProblem(config),

    async start(job: BlockJob): Promise<ExecutionHandle> {
      const config = parseDockerConfig(job.executorConfig, defaultImage(env));
      const endpoint = dockerEndpoint(config, env);
      const docker = clients.get(endpoint);
      void sweep(endpoint, docker).catch(() => {});
      await ensureImage(docker, config);
      const name = containerName(job);
      const containerEnv = { ...blockEnv, ...blockRunEnv(job), ...config.env };
      const hostConfig: Docker.HostConfig = {};
      if (config.volumes.length > 0) hostConfig.Binds = config.volumes;
      if (config.network) hostConfig.NetworkMode = config.network;
      if (config.memoryBytes !== null) hostConfig.Memory = config.memoryBytes;
      if (config.cpus !== null) hostConfig.NanoCpus = Math.round(config.cpus * 1e9);
      if (config.init) hostConfig.Init = true;
      let container: Docker.Container;
      try {
        container = await docker.createContainer({
          name,
          Image: config.image,
          // the command replaces the image's entrypoint (kiln's own image has ENTRYPOINT ["kiln"]), so
          // an image with or without one runs the same `kiln run-block ...`
          Entrypoint: config.command,
          Cmd: runBlockArgs(job, config.projectRoot),
          Env: Object.entries(containerEnv).map(([key, value]) => `${key}=${value}`),
          Labels: {
            ...blockRunLabels(job),
            "kiln.block-uuid": job.blockUuid,
            [MANAGED_LABEL]: "docker",
            [KEEP_LABEL]: String(config.keepContainer),
          },
          StopTimeout: config.stopTimeout,
          Tty: false,
          AttachStdout: false,
          AttachStderr: false,
          HostConfig: hostConfig,
        });
      } catch (error) {
        const hint = config.imageIsDefault && isNotFound(error) ? ` (kiln's default image; build it with \`docker build -t kiln .\` in kiln's repository, or set KILN_DOCKER_IMAGE or executor_config.image)` : "";
        throw new Error(`could not create the container from ${config.image}: ${dockerMessageOf(error)}${hint}`);
      }
      try {
        await container.start();
      } catch (error) {
        // a container that never ran is no use to anyone, even with keep_container
        await remove(container).catch(() => {});
        throw new Error(`could not start the container from ${config.image}: ${dockerMessageOf(error)}`);
      }
      const handle: DockerHandle = {
        executor: "docker",
        container_id: container.id,
        container_name: name,
        docker_host: endpoint,
        keep_container: config.keepContainer,
      };
      return handle;
    },

    async status(raw: ExecutionHandle): Promise<ExecutionStatus> {
      const handle = parseHandle(raw);
      const container = containerOf(handle);
      let info: Docker.ContainerInspectInfo;
      try {
        info = await container.inspect();
      } catch (error) {
        if (isNotFound(error)) return { state: "cancelled" };
        throw error;
      }
      const status = statusOfContainer(info.Name, info.State);
      if (status.state !== "failed" || info.State.OOMKilled) return status;
      // the exit code says that it failed; kiln run-block's marked last line says why
      const message = await readOutput(container)
        .then((frames) => failureDetail(frames, BLOCK_FAILED_MARK))
        .catch(() => null);
      return message ? { ...status, error: `${status.error}: ${message}` } : status;
    },

    async cancel(raw: ExecutionHandle): Promise<void> {
      const handle = parseHandle(raw);
      const container = containerOf(handle);
      try {
        // the mark first: whatever the exit code after the stop, every reader sees a cancel
        await container.rename({ name: `${handle.container_name}${CANCELLED_SUFFIX}` });
      } catch (error) {
        if (isNotFound(error)) return;
        // 409: already renamed by an earlier cancel
        if (!isAlreadyDone(error)) throw new Error(`could not cancel container ${handle.container_name}: ${dockerMessageOf(error)}`);
      }
      try {
        await container.stop();
      } catch (error) {
        if (!isAlreadyDone(error)) throw new Error(`could not stop container ${handle.container_name}: ${dockerMessageOf(error)}`);
      }
      if (!handle.keep_container) await remove(container);
    },

    async *logs(raw: ExecutionHandle): AsyncIterable<string> {
      const handle = parseHandle(raw);
      const container = containerOf(handle);
      let info: Docker.ContainerInspectInfo;
      try {
        info = await container.inspect();
      } catch (error) {
        if (isNotFound(error)) return;
        throw error;
      }
      const frames = await readOutput(container);
      yield* outputLines(frames);
      // read once it ended: its log is now kiln's, and the container has nothing more to give
      const ended = !info.State.Running && ["exited", "dead", "stopped"].includes(info.State.Status.toLowerCase());
      if (ended && !handle.keep_container) await remove(container);
    },
  };
}

/** The factory kiln's CLI registers: containers get the project's block environment, and DOCKER_HOST comes from kiln's environment. */
export const dockerExecutorFactory: ExecutorFactory = (context: ExecutorContext) =>
  dockerExecutor({ blockEnv: context.blockEnv, env: context.env });

export default dockerExecutorFactory;
