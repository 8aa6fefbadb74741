/**
 * The local executor: each block run in its own process by default, or in kiln's own process
 * with `executor_config: {in_process: true}`.
 */
import type { BlockJob, BlockRuntime, ExecutionHandle, ExecutionStatus, Executor, JsonObject } from "@kiln/core";
import { InProcessRunner } from "./in-process.ts";
import { ProcessRunner, type ProcessOptions } from "./process.ts";

export { BLOCK_FAILED_MARK, RESULT_FILE_ENV, writeResult } from "./process.ts";

export interface LocalExecutorOptions extends Omit<ProcessOptions, "logs"> {
  runtime: BlockRuntime;
}

/** Builds the "local" executor. */
export function localExecutor(options: LocalExecutorOptions): Executor {
  const inProcess = new InProcessRunner(options.runtime);
  const processes = new ProcessRunner({ ...options, logs: options.runtime.logs });
  const runnerOf = (handle: ExecutionHandle) => (handle.mode === "in_process" ? inProcess : processes);
  return {
    type: "local",
    async start(job: BlockJob) {
      return job.executorConfig.in_process === true ? inProcess.start(job) : processes.start(job);
    },
    status: (handle): Promise<ExecutionStatus> => runnerOf(handle).status(handle),
    wait: (handle): Promise<ExecutionStatus> => runnerOf(handle).wait(handle),
    cancel: (handle) => runnerOf(handle).cancel(handle),
    validateConfig(config: JsonObject) {
      if ("in_process" in config && typeof config.in_process !== "boolean") {
        return "executor_config.in_process: expected true or false";
      }
      return null;
    },
  };
}
