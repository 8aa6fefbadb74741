/**
 * @kiln/worker: kiln on Cloudflare Workers. `kiln build worker <project>` generates an entry that
 * calls createWorker and createSchedulerObject with the bundled project; wrangler deploys it.
 */
export { createWorker, createSchedulerObject, WorkerStartError, WORKER_PASSWORD_ITERATIONS, type KilnWorker, type WorkerEnv, type CronEvent, type WorkerContext } from "./worker.ts";
export { moduleMapSource, type ProjectBundle } from "./bundle.ts";
export { workerRefusals, workerWarnings, describeRefusals, ALWAYS_ON_MESSAGE, DEFAULT_TICK_SECONDS, DEFAULT_GRACE_SECONDS, REMOTE_EXECUTOR_TYPES, type WorkerRefusal } from "./refusals.ts";
export { d1Client, type D1Database } from "./d1-client.ts";
export type { TickRecord } from "./scheduler-object.ts";
