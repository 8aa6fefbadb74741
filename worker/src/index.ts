/**
 * @kiln/worker: kiln on Cloudflare Workers. `kiln build worker <project>` generates an entry that
 * calls createWorker with the bundled project; wrangler deploys it.
 */
export { createWorker, WorkerStartError, WORKER_PASSWORD_ITERATIONS, type KilnWorker, type WorkerEnv, type CronEvent, type WorkerContext } from "./worker.ts";
export { moduleMapSource, type ProjectBundle } from "./bundle.ts";
export { workerRefusals, describeRefusals, ALWAYS_ON_MESSAGE, DEFAULT_TICK_SECONDS, type WorkerRefusal } from "./refusals.ts";
