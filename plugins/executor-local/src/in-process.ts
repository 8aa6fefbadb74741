/**
 * Block runs inside the kiln process (`executor_config: {in_process: true}`): no process start
 * per block, so the fastest path, at the price of isolation: a block that loops forever or
 * crashes the runtime takes kiln with it, and a cancel can only ask the block (ctx.signal) to stop.
 */
import { BlockError, runBlockCode, type BlockJob, type BlockRuntime, type ExecutionHandle, type ExecutionStatus } from "@kiln/core";

interface Running {
  controller: AbortController;
  result: Promise<ExecutionStatus>;
}

export class InProcessRunner {
  readonly #running = new Map<number, Running>();
  #next = 1;

  constructor(private readonly runtime: BlockRuntime) {}

  /** Starts the block on this event loop. */
  start(job: BlockJob): ExecutionHandle {
    const key = this.#next++;
    const controller = new AbortController();
    // a small output is handed to the engine, which commits it as a row with the completion
    // (OutputStore.inline): no file, and no write of its own
    const inlineMaxBytes = this.runtime.outputs.inline?.maxBytes ?? 0;
    const result = runBlockCode(job, this.runtime, controller.signal, inlineMaxBytes).then(
      (ran): ExecutionStatus => {
        if (controller.signal.aborted) return { state: "cancelled" };
        return ran.inline === null ? { state: "completed" } : { state: "completed", output: ran.inline };
      },
      (error: unknown): ExecutionStatus => {
        if (controller.signal.aborted) return { state: "cancelled" };
        this.runtime.logs.append(job.pipelineUuid, job.executionPartition, job.blockUuid, errorLines(error));
        return { state: "failed", error: error instanceof Error ? error.message : String(error) };
      },
    );
    this.#running.set(key, { controller, result });
    void result.then(() => this.#running.delete(key));
    return { mode: "in_process", key, transient: true };
  }

  wait(handle: ExecutionHandle): Promise<ExecutionStatus> {
    return this.#running.get(Number(handle.key))?.result ?? Promise.resolve(lost());
  }

  async status(handle: ExecutionHandle): Promise<ExecutionStatus> {
    const running = this.#running.get(Number(handle.key));
    if (!running) return lost();
    return Promise.race([running.result, Promise.resolve<ExecutionStatus>({ state: "running" })]);
  }

  /** Aborts the block's signal; the block decides when to stop. */
  async cancel(handle: ExecutionHandle): Promise<void> {
    this.#running.get(Number(handle.key))?.controller.abort(new BlockError("block run cancelled"));
  }
}

function lost(): ExecutionStatus {
  return { state: "failed", error: "the in-process block run is not in this process (kiln restarted while it ran)" };
}

function errorLines(error: unknown): string {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return text
    .split("\n")
    .map((line) => `${new Date().toISOString()} ERROR ${line}\n`)
    .join("");
}
