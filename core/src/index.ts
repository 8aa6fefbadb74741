/**
 * @kiln/core: kiln's domain, state machines, store, project loader, run engine and the
 * contracts (executors, outputs, logs) that runtime-specific packages implement. Web-standard
 * APIs only: no node:*, bun:* or Deno here.
 */
export * from "./domain.ts";
export * from "./errors.ts";
export * from "./state-machine.ts";
export * from "./races.ts";
export * from "./clock.ts";
export * from "./blocks.ts";
export * from "./executor.ts";
export * from "./outputs.ts";
export * from "./output-store/index.ts";
export * from "./logs.ts";
export * from "./database-logs.ts";
export * from "./variables.ts";
export * from "./secrets.ts";
export * from "./trigger-tokens.ts";
export * from "./block-runtime.ts";
export * from "./python.ts";
export { pythonAddonRunner, pythonKwargs, runPythonAddon, runPythonBlock, runPythonFile, type PythonAddonArgs, type PythonRunArgs } from "./python-blocks.ts";
export * from "./runtime-variables.ts";
export * from "./addon-runtime.ts";
export * from "./project/index.ts";
export * from "./store/index.ts";
export * from "./engine/run-engine.ts";
export { AddonHooks, callbacksOf, conditionalsOf, type AddonCall, type AddonRunner } from "./engine/addons.ts";
export * from "./schedule/index.ts";
export * as notify from "./notify/index.ts";
export * from "./backfill/index.ts";
export * from "./api/index.ts";
export * from "./runs/index.ts";
export { buildBlockJob, planInputs, executorTypeOf, executorConfigOf, resolveExecutor, outsideUpstreams } from "./engine/plan.ts";
export { effectiveRetryConfig, retryDelayMs, shouldRetry } from "./engine/retry.ts";
export * from "./auth/index.ts";
export * from "./events/index.ts";
export * from "./executor-conformance.ts";
export * from "./bounds.ts";
export * from "./secret-mask.ts";
