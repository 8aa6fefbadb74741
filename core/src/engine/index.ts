/** @kiln/core/engine: the run engine, the state machines it moves statuses by, and a block run's plan (job, inputs, executor, retries). */
export * from "./run-engine.ts";
export * from "../state-machine.ts";
export * from "../races.ts";
export { AddonHooks, callbacksOf, conditionalsOf, type AddonCall, type AddonRunner } from "./addons.ts";
export { buildBlockJob, planInputs, executorTypeOf, executorConfigOf, resolveExecutor, outsideUpstreams } from "./plan.ts";
export { effectiveRetryConfig, retryDelayMs, shouldRetry } from "./retry.ts";
