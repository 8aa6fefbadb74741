/**
 * kiln on Cloudflare Workers: `fetch` serves the same Hono app as `kiln start`, `scheduled` runs
 * one scheduler tick per cron firing. State lives in a remote libSQL database (through
 * @libsql/client/web); the project comes from the bundle `kiln build worker` made; blocks run
 * inside the Worker.
 *
 * A tick is bounded: it drives runs until its deadline, then stops handing out block runs, gives
 * the running ones a grace period, and removes its heartbeat, so the next tick (another
 * invocation, perhaps another isolate) takes over whatever is unfinished at once.
 */
import { createClient } from "@libsql/client/web";
import { ExecutorRegistry, type BlockJob, type BlockRuntime, type BlockSecrets, type ExecutionHandle, type Executor, type ExecutorContext, type LogSink, type OutputStore } from "@kiln/core";
import { RunEngine, executorTypeOf } from "@kiln/core/engine";
import { OutputStoreSettingsError, databaseOutputStore, openOutputStore, outputStoreEnv } from "@kiln/core/output-store";
import { DEFAULT_DATABASE_OUTPUT_BYTES, loadProject, type Project } from "@kiln/core/project";
import { importSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import cloudRunExecutorFactory from "@kiln/executor-cloud-run";
import ecsExecutorFactory from "@kiln/executor-ecs";
import kubernetesExecutorFactory from "@kiln/executor-kubernetes";
import { InProcessRunner } from "@kiln/executor-local/in-process";
import { Scheduler, notifyRunEnd, type Log, type TickReport } from "@kiln/scheduler";
import { createApp, parseTrustProxy } from "@kiln/server";
import { Cron } from "croner";
import { moduleMapSource, type ProjectBundle } from "./bundle.ts";
import { d1Client, type D1Database } from "./d1-client.ts";
import { ALWAYS_ON_MESSAGE, DEFAULT_TICK_SECONDS, describeRefusals, workerRefusals } from "./refusals.ts";

/** The Worker's bindings: vars from wrangler.toml, secrets from `wrangler secret put`. */
export interface WorkerEnv {
  /** The D1 database (a [[d1_databases]] binding named DB): kiln's state, when bound; else LIBSQL_URL. */
  DB?: D1Database;
  /** The libSQL database: `libsql://...` (Turso) or `http(s)://...` (sqld). */
  LIBSQL_URL?: string;
  /** Secret. */
  LIBSQL_AUTH_TOKEN?: string;
  /** Secret: base64 of 32 bytes; encrypts secrets at rest and seals session signing keys. */
  KILN_SECRET_KEY?: string;
  /** Secret: the project-level token for POST /api/events. */
  KILN_EVENTS_TOKEN?: string;
  /** "off" turns authentication off (warned on every request's log). */
  KILN_AUTH?: string;
  /**
   * "true" when a reverse proxy of your own is in front of the Worker: X-Forwarded-Proto/-Host
   * are then used for the URLs kiln shows, and the client is the X-Forwarded-For entry that
   * proxy appended (the one before Cloudflare's). Off by default: anyone could send them.
   */
  KILN_TRUST_PROXY?: string;
  /** Seconds a tick drives runs before it hands over (default 45). */
  KILN_TICK_SECONDS?: string;
  /** Seconds running blocks get after the deadline before the tick ends (default 10). */
  KILN_TICK_GRACE_SECONDS?: string;
  /** Mage's ENV: triggers limited to other environments are left out. */
  ENV?: string;
  /**
   * Anything else the remote executors read: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
   * AWS_REGION (ecs), GOOGLE_APPLICATION_CREDENTIALS as the key's JSON (cloud_run),
   * KILN_KUBECONFIG_DATA (k8s), KILN_S3_* (the S3 output store).
   */
  [name: string]: string | D1Database | undefined;
}

/** What a scheduled invocation receives (Cloudflare's ScheduledController, the parts used). */
export interface CronEvent {
  cron: string;
  scheduledTime: number;
}

/** What a fetch or scheduled invocation receives (Cloudflare's ExecutionContext, the part used). */
export interface WorkerContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** A module Worker: what `kiln build worker`'s entry default-exports. */
export interface KilnWorker {
  fetch(request: Request, env: WorkerEnv, ctx: WorkerContext): Promise<Response>;
  scheduled(event: CronEvent, env: WorkerEnv, ctx: WorkerContext): Promise<void>;
}

/** Workers' WebCrypto refuses PBKDF2 above this many iterations; passwords are hashed with it here. */
export const WORKER_PASSWORD_ITERATIONS = 100_000;

/** A Worker configuration or project it cannot run with; the message says why and what to do. */
export class WorkerStartError extends Error {
  override readonly name = "WorkerStartError";
}

const VERSION = "0.1.0";
const BODY_LIMIT_BYTES = 1024 * 1024;
/** Seconds running blocks get after a tick's deadline when KILN_TICK_GRACE_SECONDS does not say. */
const DEFAULT_GRACE_SECONDS = 10;
/** Time kept free before the cron fires again, so two ticks never overlap. */
const NEXT_TICK_MARGIN_MS = 5_000;

const log: Log = {
  info: (m) => console.log(`INFO kiln: ${m}`),
  warn: (m) => console.warn(`WARN kiln: ${m}`),
  error: (m) => console.error(`ERROR kiln: ${m}`),
};

/** Block logs go to the Worker's own log (wrangler tail, Workers Logs), a line each. */
const consoleLogSink: LogSink = {
  append(pipelineUuid, partition, blockUuid, text) {
    for (const line of text.split("\n")) if (line !== "") console.log(`${pipelineUuid}/${partition}/${blockUuid}: ${line}`);
  },
};

/** The env's text values (vars and secrets), without bindings such as DB: what blocks and executors read. */
function textVars(env: WorkerEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (typeof value === "string") vars[name] = value;
  return vars;
}

function seconds(env: WorkerEnv, name: "KILN_TICK_SECONDS" | "KILN_TICK_GRACE_SECONDS", fallback: number): number {
  const text = textVars(env)[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new WorkerStartError(`${name}: expected a positive number of seconds, got ${JSON.stringify(text)}`);
  return value;
}

/** The libSQL URL as the Worker uses it: over HTTP, since a WebSocket cannot outlive the request that opened it. */
function databaseUrl(env: WorkerEnv): string {
  const url = env.LIBSQL_URL;
  if (!url) throw new WorkerStartError("LIBSQL_URL is not set: set it in wrangler.toml [vars] to your libSQL database's URL (libsql://... or https://...)");
  if (url.startsWith("file:")) throw new WorkerStartError("LIBSQL_URL: a Worker has no disk, so a file: database cannot work; use a libSQL server's libsql:// or https:// URL");
  if (url.startsWith("libsql://")) return `https://${url.slice("libsql://".length)}`;
  if (url.startsWith("wss://")) return `https://${url.slice("wss://".length)}`;
  if (url.startsWith("ws://")) return `http://${url.slice("ws://".length)}`;
  return url;
}

/** The in-Worker executor: blocks run on the Worker's event loop (the local executor's in-process mode). */
function inWorkerExecutor(runtime: BlockRuntime): Executor {
  const runner = new InProcessRunner(runtime);
  return {
    type: "local",
    async start(job: BlockJob) {
      // refused at build and at start; this guards a block run created with an executor override
      if (job.executorConfig.in_process !== true) throw new Error(`block ${job.blockUuid}: a Worker runs blocks in process only (executor_config: {in_process: true})`);
      return runner.start(job);
    },
    status: (handle: ExecutionHandle) => runner.status(handle),
    wait: (handle: ExecutionHandle) => runner.wait(handle),
    cancel: (handle: ExecutionHandle) => runner.cancel(handle),
  };
}

/** The blocks that run on a remote executor, as `pipelines/<uuid>/metadata.yaml: block <uuid>` each. */
function remoteBlocks(project: Project): string[] {
  const found: string[] = [];
  for (const pipeline of project.pipelines.values()) {
    for (const block of pipeline.blocks) {
      if (executorTypeOf(project, pipeline, block) !== "local") found.push(`pipelines/${pipeline.uuid}/metadata.yaml: block ${block.uuid} (executor_type ${executorTypeOf(project, pipeline, block)})`);
    }
  }
  return found;
}

interface Opened {
  store: Store;
  project: Project;
  engine: RunEngine;
  secretKey: CryptoKey | null;
  close(): void;
}

/** Builds the Worker for a bundled project; `kiln build worker` generates the call. */
export function createWorker(bundle: ProjectBundle): KilnWorker {
  // the project is the same for every invocation of this isolate: load and check it once
  let loaded: Promise<Project> | null = null;
  const projectFor = (env: WorkerEnv): Promise<Project> => {
    loaded ??= (async () => {
      const project = await loadProject(moduleMapSource(bundle), { executorTypes: ["local", "docker", "ecs", "cloud_run", "k8s"], env: env.ENV });
      const refusals = workerRefusals(project, seconds(env, "KILN_TICK_SECONDS", DEFAULT_TICK_SECONDS));
      if (refusals.length > 0) throw new WorkerStartError(`this project cannot run on Cloudflare Workers:\n${describeRefusals(refusals)}`);
      return project;
    })();
    // a failed load is retried on the next invocation rather than cached (a var may be fixed meanwhile)
    loaded.catch(() => (loaded = null));
    return loaded;
  };

  /** Opens what one invocation needs; everything that talks to the database is per invocation. */
  async function open(env: WorkerEnv): Promise<Opened> {
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
    const client = env.DB ? d1Client(env.DB) : createClient({ url: databaseUrl(env), ...(env.LIBSQL_AUTH_TOKEN ? { authToken: env.LIBSQL_AUTH_TOKEN } : {}) });
    const store = await Store.open(client);
    let outputs: OutputStore;
    try {
      // a Worker has no folder: outputs kiln.yaml leaves local go to the database, which every tick reaches
      outputs = openOutputStore(project.settings.outputStore, {
        client,
        env: textVars(env),
        local: () => databaseOutputStore(client, { maxBytes: DEFAULT_DATABASE_OUTPUT_BYTES }),
      });
    } catch (error) {
      if (error instanceof OutputStoreSettingsError) throw new WorkerStartError(`kiln.yaml: output_store: ${error.message}`);
      throw error;
    }
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
      await store.sealPlaintextTokens();
    } else {
      const tokened = codeTriggersWithTokens(project);
      if (tokened.length > 0) throw new WorkerStartError(`KILN_SECRET_KEY is not set: trigger(s) ${tokened.join(", ")} have tokens, which kiln keeps encrypted under it: wrangler secret put KILN_SECRET_KEY`);
    }
    const secrets: BlockSecrets = {
      async get(name) {
        if (!secretKey) throw new Error(`cannot read secret ${name}: KILN_SECRET_KEY is not set (wrangler secret put KILN_SECRET_KEY)`);
        const value = await store.getSecret(secretKey, name);
        if (value === null) throw new Error(`no secret named ${name}`);
        return value;
      },
    };
    const runtime: BlockRuntime = { project, source: moduleMapSource(bundle), outputs, logs: consoleLogSink, secrets, clock: store.clock, store };
    const executors = new ExecutorRegistry().register(inWorkerExecutor(runtime));
    // the fetch-only executors: blocks run in containers elsewhere, which reach the same database
    const variables: Record<string, string | undefined> = textVars(env);
    // a container elsewhere reaches a libSQL server, not D1 (a Worker binding): with D1 it gets no database URL
    const blockEnv: Record<string, string> = {
      ...(env.DB ? {} : { KILN_DATABASE_URL: databaseUrl(env) }),
      ...(env.LIBSQL_AUTH_TOKEN ? { KILN_DATABASE_AUTH_TOKEN: env.LIBSQL_AUTH_TOKEN } : {}),
      ...outputStoreEnv(project.settings.outputStore, variables),
    };
    const context: ExecutorContext = { projectRoot: project.root, blockEnv, env: variables, logs: consoleLogSink };
    for (const factory of [ecsExecutorFactory, cloudRunExecutorFactory, kubernetesExecutorFactory]) executors.register(await factory(context));
    const engine = new RunEngine({ store, project, executors, outputs, logs: consoleLogSink, beforeRunEnds: notifyRunEnd(store, () => project) });
    return { store, project, engine, secretKey, close: () => client.close() };
  }

  return {
    async fetch(request, env, ctx) {
      const trustProxy = parseTrustProxy(env.KILN_TRUST_PROXY);
      if (trustProxy === null) return startFailure(new WorkerStartError(`KILN_TRUST_PROXY: expected true or false, got ${JSON.stringify(env.KILN_TRUST_PROXY)}`));
      let opened: Opened;
      try {
        opened = await open(env);
      } catch (error) {
        return startFailure(error);
      }
      const refused = await refuseAlwaysOn(request);
      if (refused) return refused;
      const authEnabled = env.KILN_AUTH !== "off";
      if (!authEnabled) log.warn("AUTHENTICATION IS OFF (KILN_AUTH=off): anyone who can reach this Worker can read and change everything");
      if (!opened.secretKey) {
        const stored = await opened.store.listSecretNames();
        if (stored.length > 0) return startFailure(new WorkerStartError(`KILN_SECRET_KEY is not set, and the database holds ${stored.length} secret(s) encrypted under it: wrangler secret put KILN_SECRET_KEY`));
      }
      const app = createApp(
        {
          store: opened.store,
          project: () => opened.project,
          clock: opened.store.clock,
          version: VERSION,
          authEnabled,
          secretKey: opened.secretKey,
          bodyLimitBytes: BODY_LIMIT_BYTES,
          passwordIterations: WORKER_PASSWORD_ITERATIONS,
          ...(env.KILN_EVENTS_TOKEN ? { eventsToken: env.KILN_EVENTS_TOKEN } : {}),
          trustProxy,
        },
        { log: (message) => log.error(message) },
      );
      const response = await app.fetch(request);
      ctx.waitUntil(Promise.resolve().then(() => opened.close()));
      return response;
    },

    async scheduled(event, env) {
      const opened = await open(env);
      try {
        const report = await tick(opened, event, env);
        log.info(
          `tick for cron ${JSON.stringify(event.cron)}: ${report.tick.runs.created} run(s) created, ${report.tick.started} started, ` +
            `${report.tick.resumed} resumed; ${report.unfinished} run(s) carried over to the next tick`,
        );
      } finally {
        opened.close();
      }
    },
  };
}

/** The project's API and event triggers (pipeline/name), whose tokens need the secret key. */
function codeTriggersWithTokens(project: Project): string[] {
  const names: string[] = [];
  for (const pipeline of project.pipelines.values()) {
    for (const trigger of pipeline.triggers) if (trigger.scheduleType === "api" || trigger.scheduleType === "event") names.push(`${pipeline.uuid}/${trigger.name}`);
  }
  return names;
}

/** The answer to every request while the Worker cannot start; the message says what to fix. */
function startFailure(error: unknown): Response {
  if (!(error instanceof WorkerStartError)) throw error;
  log.error(error.message);
  return Response.json({ error: { code: "worker_misconfigured", message: error.message, details: [] } }, { status: 503 });
}

const SCHEDULE_PATH = /^\/api\/(pipelines\/[^/]+\/pipeline_schedules|pipeline_schedules\/\d+)\/?$/;

/**
 * Refuses an @always_on trigger created or updated through the API: the Worker could never run
 * it. Other bad input is left to the app, which answers it as on every runtime.
 */
async function refuseAlwaysOn(request: Request): Promise<Response | null> {
  if (request.method !== "POST" && request.method !== "PUT") return null;
  if (!SCHEDULE_PATH.test(new URL(request.url).pathname)) return null;
  let body: unknown;
  try {
    body = await request.clone().json();
  } catch {
    return null;
  }
  const schedule = (body as { pipeline_schedule?: { schedule_interval?: unknown } } | null)?.pipeline_schedule;
  if (typeof schedule?.schedule_interval !== "string" || schedule.schedule_interval.trim() !== "@always_on") return null;
  const field = "pipeline_schedule.schedule_interval";
  return Response.json(
    { error: { code: "unsupported_on_workers", message: `${field}: ${ALWAYS_ON_MESSAGE}`, details: [{ field, message: ALWAYS_ON_MESSAGE }] } },
    { status: 422 },
  );
}

/**
 * The deadline of a tick: its configured length, cut short so that with its grace period it ends
 * before the cron fires again (the gap between two firings, so a manual /__scheduled works too).
 */
function deadlineOf(event: CronEvent, env: WorkerEnv): number {
  const configuredMs = seconds(env, "KILN_TICK_SECONDS", DEFAULT_TICK_SECONDS) * 1000;
  const graceMs = seconds(env, "KILN_TICK_GRACE_SECONDS", DEFAULT_GRACE_SECONDS) * 1000;
  let periodMs = Number.POSITIVE_INFINITY;
  try {
    const cron = new Cron(event.cron, { timezone: "UTC" });
    const first = cron.nextRun(new Date(event.scheduledTime));
    const second = first ? cron.nextRun(first) : null;
    if (first && second) periodMs = second.getTime() - first.getTime();
  } catch {
    // a cron croner cannot read (Cloudflare accepts a few extensions): the configured length holds
  }
  return event.scheduledTime + Math.max(0, Math.min(configuredMs, periodMs - graceMs - NEXT_TICK_MARGIN_MS));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Resolves once `done()` holds, or at `until` (epoch ms), whichever is first. */
async function waitUntil(until: number, done: () => boolean): Promise<void> {
  while (!done() && Date.now() < until) await sleep(Math.min(100, until - Date.now()));
}

/**
 * One scheduler tick for a cron firing: create due runs, start or take over runs, drive them
 * until the deadline; then hand out no more block runs, let running ones finish within the grace
 * period, and leave (removing the heartbeat, so the next tick takes the rest over at once).
 */
async function tick(opened: Opened, event: CronEvent, env: WorkerEnv): Promise<{ tick: TickReport; unfinished: number }> {
  const { store, project, engine } = opened;
  const deadline = deadlineOf(event, env);
  const grace = seconds(env, "KILN_TICK_GRACE_SECONDS", DEFAULT_GRACE_SECONDS) * 1000;
  // every tick is a new scheduler: one whose heartbeat is still there was stopped mid-tick (the
  // isolate was killed), so any other scheduler counts as gone (orphanAfterMs 0); ticks never
  // overlap, since each ends before the cron fires again
  const scheduler = new Scheduler({ store, project, engine, id: `worker-${crypto.randomUUID()}`, host: "cloudflare-worker", log, orphanAfterMs: 0, tickIntervalMs: 60_000 });
  const report = await scheduler.tick();
  await waitUntil(deadline, () => engine.activeRunIds().length === 0);
  engine.holdLaunches();
  await waitUntil(Math.max(deadline, Date.now()) + grace, () => engine.executingBlockRuns === 0);
  const unfinished = engine.activeRunIds().length;
  await scheduler.stop(0);
  return { tick: report, unfinished };
}
