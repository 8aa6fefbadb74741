/**
 * kiln on Cloudflare Workers: `fetch` serves the same Hono app as `kiln start`; scheduling
 * belongs to a Durable Object (scheduler-object.ts), which the cron trigger and every route that
 * creates runs only wake. State lives in D1 (a DB binding) or a remote libSQL server
 * (LIBSQL_URL); the project comes from the bundle `kiln build worker` made; blocks run inside
 * the Worker, or on the remote executors the bundle carries.
 */
import { syncTriggers } from "@kiln/scheduler";
import { createApp, parseTrustProxy } from "@kiln/server";
import type { ProjectBundle } from "./bundle.ts";
import { WorkerStartError, schedulerBinding, type WorkerEnv } from "./env.ts";
import { invocations, type Opened } from "./invocation.ts";
import { ALWAYS_ON_MESSAGE } from "./refusals.ts";
import { createSchedulerObject, wakeScheduler } from "./scheduler-object.ts";

export { WorkerStartError, type WorkerEnv } from "./env.ts";

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

const VERSION = "0.1.0";
const BODY_LIMIT_BYTES = 1024 * 1024;

const log = {
  warn: (m: string) => console.warn(`WARN kiln: ${m}`),
  error: (m: string) => console.error(`ERROR kiln: ${m}`),
};

/**
 * The response, with the invocation's database handle kept until its body ends: a live stream
 * (the UI's Server-Sent Events, a log stream) reads the database long after fetch returned.
 */
function closingWhenDone(response: Response, opened: Opened, ctx: WorkerContext): Response {
  if (!response.body) {
    opened.close();
    return response;
  }
  const { readable, writable } = new TransformStream();
  // the pipe ends when the body does, or errors when the client goes away: either way, close then
  ctx.waitUntil(response.body.pipeTo(writable).catch(() => undefined).finally(() => opened.close()));
  return new Response(readable, response);
}

/** Builds the Worker for a bundled project; `kiln build worker` generates the call. */
export function createWorker(bundle: ProjectBundle): KilnWorker {
  const opener = invocations(bundle);
  // the project's triggers.yaml reaches the database on this isolate's first request, so the API
  // shows (and takes runs for) the triggers of a fresh deploy before any tick has run
  let synced: Promise<unknown> | null = null;
  const syncOnce = (opened: Opened): Promise<unknown> => {
    synced ??= syncTriggers(opened.store, opened.project, Date.now()).catch((error: unknown) => {
      synced = null;
      throw error;
    });
    return synced;
  };
  return {
    async fetch(request, env, ctx) {
      const trustProxy = parseTrustProxy(env.KILN_TRUST_PROXY);
      if (trustProxy === null) return startFailure(new WorkerStartError(`KILN_TRUST_PROXY: expected true or false, got ${JSON.stringify(env.KILN_TRUST_PROXY)}`));
      let opened: Opened;
      try {
        opened = await opener.open(env);
      } catch (error) {
        return startFailure(error);
      }
      await syncOnce(opened);
      const refused = await refuseAlwaysOn(request);
      if (refused) {
        opened.close();
        return refused;
      }
      const authEnabled = env.KILN_AUTH !== "off";
      if (!authEnabled) log.warn("AUTHENTICATION IS OFF (KILN_AUTH=off): anyone who can reach this Worker can read and change everything");
      if (!opened.secretKey) {
        const stored = await opened.store.listSecretNames();
        if (stored.length > 0) {
          opened.close();
          return startFailure(new WorkerStartError(`KILN_SECRET_KEY is not set, and the database holds ${stored.length} secret(s) encrypted under it: wrangler secret put KILN_SECRET_KEY`));
        }
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
          logs: opened.logs,
          ...(env.KILN_EVENTS_TOKEN ? { eventsToken: env.KILN_EVENTS_TOKEN } : {}),
          trustProxy,
        },
        { log: (message) => log.error(message) },
      );
      // a run created by the API, an event or the UI starts now, not at the next cron firing
      // (without the binding the API still answers; the wake's error names what wrangler.toml lacks)
      opened.store.runsCreated.listen(() =>
        ctx.waitUntil(
          Promise.resolve()
            .then(() => wakeScheduler(schedulerBinding(env)))
            .catch((error: unknown) => log.error(`waking the scheduler: ${error instanceof Error ? error.message : String(error)}`)),
        ),
      );
      // a run cancelled while no tick holds it: the woken tick stops its block runs' Workflows instances
      opened.store.runsCancelled.listen(({ pipelineRunIds }) =>
        ctx.waitUntil(
          Promise.resolve()
            .then(() => wakeScheduler(schedulerBinding(env), pipelineRunIds))
            .catch((error: unknown) => log.error(`waking the scheduler to stop cancelled runs: ${error instanceof Error ? error.message : String(error)}`)),
        ),
      );
      const response = await app.fetch(request);
      return closingWhenDone(response, opened, ctx);
    },

    // the cron trigger only wakes the scheduler object, which runs the tick (one at a time)
    async scheduled(_event, env) {
      await wakeScheduler(schedulerBinding(env));
    },
  };
}

/** The scheduler Durable Object's class for a bundled project: the generated entry exports it as KilnScheduler. */
export { createSchedulerObject };

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
