/**
 * The local executor: each block run in its own process by default, or in kiln's own process
 * with `executor_config: {in_process: true}`. The processes are warm: started ahead of need and
 * handed their block run when it is claimed (`warm: false` starts one for the run instead);
 * `reuse: N` lets one run N block runs in sequence.
 */
import type { BlockJob, BlockRuntime, ExecutionHandle, ExecutionStatus, Executor, JsonObject } from "@kiln/core";
import { availableParallelism } from "node:os";
import { InProcessRunner } from "./in-process.ts";
import { ProcessRunner, type ProcessOptions } from "./process.ts";

export { BLOCK_FAILED_MARK, RESULT_FILE_ENV, writeResult } from "./process.ts";
export { thinWorkerArgs, warmWorkerArgs, type BlockCall, type WarmBlockRun } from "./warm-protocol.ts";

export interface LocalExecutorOptions extends Omit<ProcessOptions, "logs" | "spares"> {
  /** Warm processes to keep per project; default: the local executor limit, at most two per core (at least 4). */
  spares?: () => number;
  runtime: BlockRuntime;
}

/**
 * Spare processes per project when no executor limit says otherwise: two per core, at least 4.
 * A chain of blocks takes a spare at every hand-over, and a spare boots in about four hand-overs'
 * time (a thin one: ~40 ms against ~10 on a quiet 2-core machine), so fewer would leave the
 * chain waiting on a boot while a core is free. A thin spare holds about 35 MiB, and all retire
 * after a minute without a claim.
 */
function defaultSpares(): number {
  return Math.max(4, 2 * availableParallelism());
}

/** Checks the local executor's executor_config (in_process, warm, reuse); a message naming the bad field, or null. */
export function validateLocalConfig(config: JsonObject): string | null {
  if ("in_process" in config && typeof config.in_process !== "boolean") return "executor_config.in_process: expected true or false";
  if ("warm" in config && typeof config.warm !== "boolean") return "executor_config.warm: expected true or false";
  if ("reuse" in config && !(typeof config.reuse === "number" && Number.isInteger(config.reuse) && config.reuse >= 1)) {
    return "executor_config.reuse: expected a whole number of block runs per process, at least 1";
  }
  return null;
}

/** The local executor, and a way to end its spare processes (when its project is closed). */
export interface LocalExecutor extends Executor {
  /** Ends the warm processes waiting for a block run; block runs under way are left to run. */
  retireSpares(): void;
}

/** Builds the "local" executor. */
export function localExecutor(options: LocalExecutorOptions): LocalExecutor {
  const inProcess = new InProcessRunner(options.runtime);
  // the pool follows the executor limit: no more spares than block runs the local executor may run at once
  const spares = options.spares ?? (() => Math.min(options.runtime.project.settings.concurrencyConfig.executorLimits?.local ?? Infinity, defaultSpares()));
  const processes = new ProcessRunner({ ...options, spares, logs: options.runtime.logs, runtime: options.runtime });
  const runnerOf = (handle: ExecutionHandle) => (handle.mode === "in_process" ? inProcess : processes);
  return {
    type: "local",
    // an in-process job is handed over in memory, a warm process's through its pipe
    inlineInputs: true,
    async start(job: BlockJob) {
      return job.executorConfig.in_process === true ? inProcess.start(job) : processes.start(job);
    },
    status: (handle): Promise<ExecutionStatus> => runnerOf(handle).status(handle),
    wait: (handle): Promise<ExecutionStatus> => runnerOf(handle).wait(handle),
    cancel: (handle) => runnerOf(handle).cancel(handle),
    // a process's result file, kept for a kiln that restarts before the end is committed (an in-process handle names none)
    release: (handle) => processes.release(handle),
    validateConfig: validateLocalConfig,
    retireSpares: () => processes.retireSpares(),
  };
}
