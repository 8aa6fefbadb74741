/**
 * The Cloud Run executor (executor_type "cloud_run"): each block run is an execution of a Cloud
 * Run Job (Admin API v2), run with overrides (kiln run-block's args, the block's environment,
 * task count, timeout). A stateless adapter: the handle stored on the block run names the
 * execution and where its credentials come from (never the credentials), so a restarted
 * scheduler, or any other process, polls, cancels and reads logs from the handle alone.
 *
 * fetch, WebCrypto and jose only, no node: imports, so it also runs on Cloudflare Workers. A
 * key given as a file path is read through `readTextFile`, which the host passes in (kiln's CLI
 * does); on Workers give the key's JSON content in the environment variable instead.
 */
import { blockRunEnv, runBlockArgs, type BlockJob, type ExecutionHandle, type ExecutionStatus, type Executor, type ExecutorContext, type ExecutorFactory, messageOf } from "@kiln/core";
import { CloudRunApi, GoogleApiError, parseExecutionName, type RunOverrides } from "./api.ts";
import { DEFAULT_METADATA_URL, GoogleAuthError, metadataTokenSource, parseServiceAccountKey, serviceAccountTokenSource, type Fetch, type TokenSource } from "./auth.ts";
import { DEFAULT_CREDENTIALS_ENV, parseCloudRunConfig, validateCloudRunConfig, type CloudRunConfig } from "./config.ts";
import { executionFinished, statusOf } from "./status.ts";

export { CloudRunConfigError, parseCloudRunConfig, validateCloudRunConfig, type CloudRunConfig } from "./config.ts";
export { GoogleAuthError, parseServiceAccountKey, type Fetch, type ServiceAccountKey, type TokenSource } from "./auth.ts";
export { GoogleApiError, type Execution, type Task } from "./api.ts";
export { failureMessage, statusOf } from "./status.ts";

/** Where a block run's credentials come from; stored in its handle, so it holds no secret. */
export type CredentialsRef = { env: string } | { file: string } | { metadata: string };

/** What the host gives the executor beyond its context. */
export interface CloudRunExecutorOptions {
  /** The fetch to call Google with (tests, proxies); the global fetch by default. */
  fetch?: Fetch;
  /** Reads a key file; without it only keys given as JSON content work (as on Workers). */
  readTextFile?: (path: string) => Promise<string>;
  /** The clock for token expiry. */
  now?: () => number;
}

/** The handle of one block run's execution, as stored on the block run. */
type CloudRunHandle = {
  /** projects/{p}/locations/{r}/jobs/{j}/executions/{id} */
  execution: string;
  endpoint: string;
  logging_endpoint: string;
  credentials: CredentialsRef;
};

function readHandle(handle: ExecutionHandle): CloudRunHandle {
  const { execution, endpoint, logging_endpoint: loggingEndpoint, credentials } = handle;
  if (typeof execution !== "string" || typeof endpoint !== "string" || typeof loggingEndpoint !== "string") {
    throw new Error(`not a cloud_run execution handle: ${JSON.stringify(handle)}`);
  }
  parseExecutionName(execution);
  const ref = credentials as Record<string, unknown> | null | undefined;
  let parsed: CredentialsRef;
  if (typeof ref?.env === "string") parsed = { env: ref.env };
  else if (typeof ref?.file === "string") parsed = { file: ref.file };
  else if (typeof ref?.metadata === "string") parsed = { metadata: ref.metadata };
  else throw new Error(`cloud_run handle of ${execution}: no credentials reference`);
  return { execution, endpoint, logging_endpoint: loggingEndpoint, credentials: parsed };
}

/** Builds the Cloud Run executor for a project. */
export function cloudRunExecutor(context: ExecutorContext, options: CloudRunExecutorOptions = {}): Executor {
  const fetcher: Fetch = options.fetch ?? ((url, init) => fetch(url, init));
  const now = options.now ?? Date.now;
  // one token source per credentials source, so tokens are reused across block runs until they near expiry
  const tokenSources = new Map<string, Promise<TokenSource>>();

  function credentialsOf(config: CloudRunConfig): CredentialsRef {
    if (config.credentialsFile !== null) return { file: config.credentialsFile };
    const name = config.credentialsEnv ?? DEFAULT_CREDENTIALS_ENV;
    if (context.env[name]) return { env: name };
    if (config.credentialsEnv !== null) {
      throw new GoogleAuthError(`executor_config.credentials_env: the environment variable ${name} is not set (it should hold a service-account key's JSON or its path)`);
    }
    const host = context.env.GCE_METADATA_HOST;
    return { metadata: config.metadataUrl ?? (host ? `http://${host}` : DEFAULT_METADATA_URL) };
  }

  async function readKeyText(ref: { env: string } | { file: string }): Promise<{ text: string; source: string }> {
    if ("file" in ref) {
      const source = `executor_config.credentials_file (${ref.file})`;
      if (!options.readTextFile) throw new GoogleAuthError(`${source}: this runtime cannot read files; give the key's JSON in an environment variable (executor_config.credentials_env)`);
      try {
        return { text: await options.readTextFile(ref.file), source };
      } catch (error) {
        throw new GoogleAuthError(`${source}: cannot read it: ${messageOf(error)}`);
      }
    }
    const value = context.env[ref.env];
    if (!value) throw new GoogleAuthError(`the environment variable ${ref.env} is not set (it should hold a service-account key's JSON or its path)`);
    if (value.trimStart().startsWith("{")) return { text: value, source: `the environment variable ${ref.env}` };
    // a path, as GOOGLE_APPLICATION_CREDENTIALS usually is
    const source = `the key file ${value} (from ${ref.env})`;
    if (!options.readTextFile) throw new GoogleAuthError(`${ref.env} holds a path, and this runtime cannot read files: set ${ref.env} to the key's JSON content instead`);
    try {
      return { text: await options.readTextFile(value), source };
    } catch (error) {
      throw new GoogleAuthError(`${source}: cannot read it: ${messageOf(error)}`);
    }
  }

  function tokenSource(ref: CredentialsRef): Promise<TokenSource> {
    const cacheKey = JSON.stringify(ref);
    let source = tokenSources.get(cacheKey);
    if (!source) {
      source = (async () => {
        if ("metadata" in ref) return metadataTokenSource(ref.metadata, fetcher, now);
        const { text, source: where } = await readKeyText(ref);
        return serviceAccountTokenSource(parseServiceAccountKey(text, where), where, fetcher, now);
      })();
      // a failed load is not cached: the key may be fixed without a restart
      source.catch(() => tokenSources.delete(cacheKey));
      tokenSources.set(cacheKey, source);
    }
    return source;
  }

  async function apiFor(handle: CloudRunHandle): Promise<CloudRunApi> {
    return new CloudRunApi(await tokenSource(handle.credentials), fetcher, handle.endpoint, handle.logging_endpoint);
  }

  async function projectOf(config: CloudRunConfig, tokens: TokenSource): Promise<string> {
    const project = config.project ?? context.env.GOOGLE_CLOUD_PROJECT ?? (await tokens.projectId());
    if (!project) throw new GoogleAuthError("executor_config.project: not set, and neither GOOGLE_CLOUD_PROJECT nor the credentials name a project");
    return project;
  }

  return {
    type: "cloud_run",
    remote: true,
    validateConfig: validateCloudRunConfig,

    async start(job: BlockJob): Promise<ExecutionHandle> {
      const config = parseCloudRunConfig(job.executorConfig);
      const credentials = credentialsOf(config);
      const tokens = await tokenSource(credentials);
      const project = await projectOf(config, tokens);
      const api = new CloudRunApi(tokens, fetcher, config.endpoint, config.loggingEndpoint);
      // Cloud Run overrides a container's args but never its entrypoint: command[0] must be the
      // image's (or the job's) entrypoint, and the rest of command leads the args
      const args = [...config.command.slice(1), ...runBlockArgs(job, config.projectRoot ?? job.projectRoot)];
      const env = { ...context.blockEnv, ...blockRunEnv(job), ...config.env };
      const timeout = job.timeout ?? config.timeout;
      const overrides: RunOverrides = {
        containerOverrides: [{ args, env: Object.entries(env).map(([name, value]) => ({ name, value })) }],
        taskCount: config.taskCount,
      };
      if (timeout !== null) overrides.timeout = `${Math.ceil(timeout)}s`;
      const execution = await api.runJob(`projects/${project}/locations/${config.region}/jobs/${config.job}`, overrides);
      const handle: CloudRunHandle = { execution: execution.name, endpoint: config.endpoint, logging_endpoint: config.loggingEndpoint, credentials };
      return handle;
    },

    async status(stored: ExecutionHandle): Promise<ExecutionStatus> {
      const handle = readHandle(stored);
      const api = await apiFor(handle);
      try {
        const execution = await api.getExecution(handle.execution);
        return await statusOf(execution, () => api.listTasks(handle.execution));
      } catch (error) {
        if (error instanceof GoogleApiError && error.httpStatus === 404) {
          return { state: "failed", error: `Cloud Run execution ${handle.execution} no longer exists (deleted outside kiln?)` };
        }
        throw error;
      }
    },

    async cancel(stored: ExecutionHandle): Promise<void> {
      const handle = readHandle(stored);
      const api = await apiFor(handle);
      try {
        await api.cancelExecution(handle.execution);
      } catch (error) {
        if (!(error instanceof GoogleApiError)) throw error;
        if (error.httpStatus === 404) return; // gone: nothing left to stop
        // Cloud Run refuses to cancel an execution that already ended; that is not a failure to cancel
        if (error.httpStatus === 400 || error.httpStatus === 409) {
          const execution = await api.getExecution(handle.execution);
          if (executionFinished(execution)) return;
        }
        throw error;
      }
    },

    async *logs(stored: ExecutionHandle): AsyncIterable<string> {
      const handle = readHandle(stored);
      const api = await apiFor(handle);
      for await (const entry of api.logEntries(handle.execution)) {
        // Cloud Logging stores a JSON stdout line as jsonPayload: give it back as that line
        const text = entry.textPayload ?? (entry.jsonPayload ? JSON.stringify(entry.jsonPayload) : "");
        for (const line of text.replace(/\n$/, "").split("\n")) yield line;
      }
    },
  };
}

/** The factory kiln's CLI registers, and third parties load from the package. */
const factory: ExecutorFactory = (context) => cloudRunExecutor(context);
export default factory;
