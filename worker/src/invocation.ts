/**
 * What one invocation opens: the database (D1 or a libSQL server), the store over it, the
 * project from the bundle, the secret key; and for a tick, the run engine with the in-Worker
 * executor and the remote executors the bundle carries. Project loading is per isolate; all
 * that talks to the database is per invocation (a connection cannot outlive its request).
 */
import { createClient } from "@libsql/client/web";
import { DEFAULT_DATABASE_OUTPUT_BYTES, loadProject, type Project } from "@kiln/core/project";
import { ExecutorRegistry, type BlockJob, type BlockRuntime, type BlockSecrets, type ExecutionHandle, type Executor, type ExecutorContext, type LogReader, type OutputStore } from "@kiln/core";
import { OutputStoreSettingsError, databaseOutputStore, openOutputStore, outputStoreEnv } from "@kiln/core/output-store";
import { RunEngine, executorTypeOf } from "@kiln/core/engine";
import { SecretMask, databaseLogReader, databaseLogSink, importSecretKey, maskingExecutor, maskingLogSink, type BufferedLogSink } from "@kiln/core/runtime";
import { Store, type SqlClient } from "@kiln/core/store";
import { InProcessRunner } from "@kiln/executor-local/in-process";
import { WORKFLOWS_EXECUTOR_TYPE, workflowsExecutor } from "@kiln/executor-workflows";
import { notifyRunEnd } from "@kiln/scheduler";
import { moduleMapSource, type ProjectBundle } from "./bundle.ts";
import { d1Client } from "./d1-client.ts";
import { DEFAULT_GRACE_SECONDS, DEFAULT_TICK_SECONDS, WorkerStartError, databaseUrl, seconds, textVars, workflowsBinding, type WorkerEnv } from "./env.ts";
import type { TickBudget } from "./subrequest-budget.ts";
import { describeRefusals, workerRefusals, REMOTE_EXECUTOR_TYPES } from "./refusals.ts";

/** The executor types the loader accepts, so a Worker-only refusal can say what to use instead. */
const KNOWN_EXECUTORS = ["local", "docker", "ecs", "cloud_run", "k8s", WORKFLOWS_EXECUTOR_TYPE];

/** What a request needs: the store, the project, the key, the log reader. */
export interface Opened {
  client: SqlClient;
  store: Store;
  project: Project;
  secretKey: CryptoKey | null;
  logs: LogReader;
  /** "d1" or "libsql": which database this invocation reached. */
  database: "d1" | "libsql";
  close(): void;
}

/** What running a block in this invocation needs: the block runtime, its secret mask, the log sink to flush at the end. */
export interface OpenedForBlocks extends Opened {
  runtime: BlockRuntime;
  mask: SecretMask;
  logSink: BufferedLogSink;
}

/** What a tick needs besides: the engine, and its executors (a tick stops the executions of runs no engine holds). */
export interface OpenedForTick extends OpenedForBlocks {
  engine: RunEngine;
  executors: ExecutorRegistry;
}

/**
 * The in-Worker executor: blocks run on the Worker's event loop (the local executor's in-process
 * mode). `any` runs a job whatever its executor_config says (a Workflows step runs its block so).
 */
export function inWorkerExecutor(runtime: BlockRuntime, options: { any?: boolean } = {}): Executor {
  const runner = new InProcessRunner(runtime);
  return {
    type: "local",
    async start(job: BlockJob) {
      // refused at build and at start; this guards a block run created with an executor override
      if (!options.any && job.executorConfig.in_process !== true) throw new Error(`block ${job.blockUuid}: a Worker runs blocks in process only (executor_config: {in_process: true})`);
      return runner.start(job);
    },
    status: (handle: ExecutionHandle) => runner.status(handle),
    wait: (handle: ExecutionHandle) => runner.wait(handle),
    cancel: (handle: ExecutionHandle) => runner.cancel(handle),
  };
}

/** The blocks that run on a remote executor, as `pipelines/<uuid>/metadata.yaml: block <uuid> (executor_type T)` each. */
function remoteBlocks(project: Project): string[] {
  const found: string[] = [];
  for (const pipeline of project.pipelines.values()) {
    for (const block of pipeline.blocks) {
      const type = executorTypeOf(project, pipeline, block);
      // a Workflows step runs inside this Worker, which reaches D1
      if (type !== "local" && type !== WORKFLOWS_EXECUTOR_TYPE) found.push(`pipelines/${pipeline.uuid}/metadata.yaml: block ${block.uuid} (executor_type ${type})`);
    }
  }
  return found;
}

/** Opens invocations for one bundled project; the project is loaded and checked once per isolate. */
export function invocations(bundle: ProjectBundle): {
  open(env: WorkerEnv): Promise<Opened>;
  openForBlocks(env: WorkerEnv): Promise<OpenedForBlocks>;
  openForTick(env: WorkerEnv, budget?: TickBudget): Promise<OpenedForTick>;
} {
  let loaded: Promise<Project> | null = null;
  const projectFor = (env: WorkerEnv): Promise<Project> => {
    loaded ??= (async () => {
      const project = await loadProject(moduleMapSource(bundle), { executorTypes: KNOWN_EXECUTORS, env: env.ENV });
      const refusals = workerRefusals(project, seconds(env, "KILN_TICK_SECONDS", DEFAULT_TICK_SECONDS), seconds(env, "KILN_TICK_GRACE_SECONDS", DEFAULT_GRACE_SECONDS));
      if (refusals.length > 0) throw new WorkerStartError(`this project cannot run on Cloudflare Workers:\n${describeRefusals(refusals)}`);
      for (const type of new Set(remoteBlocksTypes(project))) {
        if (!bundle.executors?.[type]) throw new WorkerStartError(`executor_type ${type} is named by the project but not in this Worker's bundle: run kiln build worker again`);
      }
      if (usesWorkflows(project)) workflowsBinding(env);
      return project;
    })();
    // a failed load is retried on the next invocation rather than cached (a var may be fixed meanwhile)
    loaded.catch(() => (loaded = null));
    return loaded;
  };

  // per isolate, not per invocation: an isolate's first open brings the schema up to date and
  // seals the trigger tokens an older kiln left in plaintext (kiln seals every token it writes,
  // so none appear later); every later invocation skips both queries
  let migrated = false;
  let sealed: Promise<unknown> | null = null;
  const sealOnce = (store: Store): Promise<unknown> => {
    sealed ??= store.sealPlaintextTokens().catch((error: unknown) => {
      sealed = null;
      throw error;
    });
    return sealed;
  };

  /** Opens one invocation's store and project; with `budget`, its database calls are counted against it. */
  async function open(env: WorkerEnv, budget?: TickBudget): Promise<Opened> {
    const project = await projectFor(env);
    if (env.DB) {
      const remote = remoteBlocks(project);
      if (remote.length > 0) {
        throw new WorkerStartError(
          `${remote.join(", ")}: a block on a remote executor runs kiln in a container, which cannot reach D1 (a Worker binding): ` +
            "keep kiln's state in a libSQL server (LIBSQL_URL, without a DB binding), or run the block in the Worker (executor_type local, executor_config: {in_process: true})",
        );
      }
    }
    const client = env.DB
      ? d1Client(budget ? budget.d1(env.DB) : env.DB)
      : createClient({ url: databaseUrl(env), ...(env.LIBSQL_AUTH_TOKEN ? { authToken: env.LIBSQL_AUTH_TOKEN } : {}), ...(budget ? { fetch: budget.fetch } : {}) });
    const store = await Store.open(client, undefined, { migrate: !migrated });
    migrated = true;
    let secretKey: CryptoKey | null = null;
    if (env.KILN_SECRET_KEY) {
      try {
        secretKey = await importSecretKey(env.KILN_SECRET_KEY);
      } catch (error) {
        throw new WorkerStartError(`KILN_SECRET_KEY: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (secretKey) {
      // trigger tokens are sealed under it; rows an older kiln left in plaintext are sealed now
      store.useSecretKey(secretKey);
      await sealOnce(store);
    } else {
      const tokened = codeTriggersWithTokens(project);
      if (tokened.length > 0) throw new WorkerStartError(`KILN_SECRET_KEY is not set: trigger(s) ${tokened.join(", ")} have tokens, which kiln keeps encrypted under it: wrangler secret put KILN_SECRET_KEY`);
    }
    return { client, store, project, secretKey, logs: databaseLogReader(client), database: env.DB ? "d1" : "libsql", close: () => client.close() };
  }

  async function openForBlocks(env: WorkerEnv, budget?: TickBudget): Promise<OpenedForBlocks> {
    const opened = await open(env, budget);
    const { client, store, project, secretKey } = opened;
    let outputs: OutputStore;
    try {
      // a Worker has no folder: outputs kiln.yaml leaves local go to the database, which every tick reaches
      outputs = openOutputStore(project.settings.outputStore, {
        client,
        env: textVars(env),
        local: () => databaseOutputStore(client, { maxBytes: DEFAULT_DATABASE_OUTPUT_BYTES }),
        // every output is a row here already
        inline: false,
      });
    } catch (error) {
      if (error instanceof OutputStoreSettingsError) throw new WorkerStartError(`kiln.yaml: output_store: ${error.message}`);
      throw error;
    }
    // every secret a block can read is masked in its log lines and errors, as under kiln start
    const mask = new SecretMask();
    if (secretKey) {
      const names = await store.listSecretNames();
      const values = await Promise.all(names.map((name) => store.getSecret(secretKey, name).catch(() => null)));
      mask.set(values.filter((v): v is string => v !== null));
    }
    const secrets: BlockSecrets = {
      async get(name) {
        if (!secretKey) throw new Error(`cannot read secret ${name}: KILN_SECRET_KEY is not set (wrangler secret put KILN_SECRET_KEY)`);
        const value = await store.getSecret(secretKey, name);
        if (value === null) throw new Error(`no secret named ${name}`);
        mask.add(value);
        return value;
      },
    };
    const logSink = databaseLogSink(client);
    const logs = maskingLogSink(logSink, mask);
    const runtime: BlockRuntime = { project, source: moduleMapSource(bundle), outputs, logs, secrets, clock: store.clock, store };
    return { ...opened, runtime, mask, logSink };
  }

  async function openForTick(env: WorkerEnv, budget?: TickBudget): Promise<OpenedForTick> {
    const opened = await openForBlocks(env, budget);
    const { project, runtime, mask } = opened;
    const { logs, outputs } = runtime;
    const executors = new ExecutorRegistry().register(maskingExecutor(inWorkerExecutor(runtime), mask));
    // blocks longer than a tick: each block run a Workflows instance, its step running the block
    // in this Worker (block-workflow.ts), its outcome read back through the binding
    if (usesWorkflows(project)) executors.register(maskingExecutor(workflowsExecutor(workflowsBinding(env)), mask));
    const factories = bundle.executors ?? {};
    if (Object.keys(factories).length > 0) {
      // the fetch-only executors: blocks run in containers elsewhere, which reach the same libSQL server
      const variables: Record<string, string | undefined> = textVars(env);
      const blockEnv: Record<string, string> = {
        KILN_DATABASE_URL: databaseUrl(env),
        ...(env.LIBSQL_AUTH_TOKEN ? { KILN_DATABASE_AUTH_TOKEN: env.LIBSQL_AUTH_TOKEN } : {}),
        ...outputStoreEnv(project.settings.outputStore, variables),
      };
      const context: ExecutorContext = { projectRoot: project.root, blockEnv, env: variables, logs };
      for (const factory of Object.values(factories)) executors.register(maskingExecutor(await factory(context), mask));
    }
    const engine = new RunEngine({
      store: opened.store,
      project,
      executors,
      outputs,
      logs,
      beforeRunEnds: notifyRunEnd(opened.store, () => project),
      ...(budget ? { mayLaunch: (executing: number) => budget.mayLaunch(executing) } : {}),
    });
    return { ...opened, engine, executors };
  }

  return { open, openForBlocks, openForTick };
}

/** Whether any block of the project runs on the workflows executor. */
function usesWorkflows(project: Project): boolean {
  for (const pipeline of project.pipelines.values()) {
    for (const block of pipeline.blocks) if (executorTypeOf(project, pipeline, block) === WORKFLOWS_EXECUTOR_TYPE) return true;
  }
  return false;
}

/** The project's API and event triggers (pipeline/name), whose tokens need the secret key. */
function codeTriggersWithTokens(project: Project): string[] {
  const names: string[] = [];
  for (const pipeline of project.pipelines.values()) {
    for (const trigger of pipeline.triggers) if (trigger.scheduleType === "api" || trigger.scheduleType === "event") names.push(`${pipeline.uuid}/${trigger.name}`);
  }
  return names;
}

function remoteBlocksTypes(project: Project): string[] {
  const types: string[] = [];
  for (const pipeline of project.pipelines.values()) {
    for (const block of pipeline.blocks) {
      const type = executorTypeOf(project, pipeline, block);
      if ((REMOTE_EXECUTOR_TYPES as readonly string[]).includes(type)) types.push(type);
    }
  }
  return types;
}
