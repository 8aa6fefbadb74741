/**
 * Mage's callback and conditional blocks in the run engine. Neither gets a block run:
 *
 * - A block with conditionals attached is evaluated when it becomes ready, before it is queued.
 *   Every conditional must return true; one that returns false or throws makes the block
 *   `condition_failed`, and then every block downstream of it too (the engine's readiness rule),
 *   which counts as done, not failed: the pipeline run still completes. This is Mage's rule.
 * - A block's callbacks run once its block run has ended for good: `on_success` after it
 *   completed (with its output), `on_failure` after its last attempt failed (with the error).
 *   A callback that throws is logged in the block's log and changes no status, as in Mage. The
 *   pipeline run ends only once its callbacks have returned, so `kiln run` does not exit under them.
 *
 * Evaluation is asynchronous: the engine asks gate() in each pass; the first ask starts the
 * conditionals and answers "wait", and when they settle the engine is woken to ask again.
 */
import type { BlockJob } from "../executor.ts";
import { formatLogLine, type LogSink } from "../logs.ts";
import type { AddonBlock, BlockConfig, Pipeline } from "../project/types.ts";
import { messageOf } from "../errors.ts";

/** One call of a callback or conditional, for an AddonRunner. */
export interface AddonCall {
  kind: "condition" | "callback";
  /** Which of Mage's callbacks runs (callbacks only). */
  callback?: "on_success" | "on_failure";
  addon: AddonBlock;
  parent: BlockConfig;
  /** The parent block run's job: its inputs (a conditional's arguments), variables and run ids. */
  job: BlockJob;
  /** on_failure: the parent block run's error. */
  error?: string;
}

/**
 * Runs callback and conditional modules (TypeScript/JavaScript in-process, Python through the
 * Python runner). condition() resolves to the verdict; a rejection is an error in the module.
 */
export interface AddonRunner {
  condition(call: AddonCall): Promise<boolean>;
  callback(call: AddonCall): Promise<void>;
}

export type Gate = "run" | "condition_failed" | "wait";

/** The conditionals attached to a block, in metadata order. */
export function conditionalsOf(pipeline: Pipeline, blockUuid: string): AddonBlock[] {
  return (pipeline.conditionals ?? []).filter((c) => c.parents.includes(blockUuid));
}

/** The callbacks attached to a block, in metadata order. */
export function callbacksOf(pipeline: Pipeline, blockUuid: string): AddonBlock[] {
  return (pipeline.callbacks ?? []).filter((c) => c.parents.includes(blockUuid));
}

/** The engine's bookkeeping of conditionals evaluated and callbacks running, per pipeline run. */
export class AddonHooks {
  /** `<run id>/<block run uuid>` -> the verdict, or null while it is being evaluated. */
  readonly #verdicts = new Map<string, boolean | null>();
  /** Callbacks still running, per run id. */
  readonly #running = new Map<number, number>();

  constructor(
    private readonly runner: AddonRunner | null,
    private readonly logs: LogSink | null,
    /** Asks the engine to look at the run again (an evaluation or a callback settled). */
    private readonly wake: (pipelineRunId: number) => void,
  ) {}

  /**
   * Whether a ready block run may be queued: "run" (no conditionals, or all true),
   * "condition_failed", or "wait" while its conditionals are evaluated. `job` builds the block
   * run's job (its id must be known, i.e. after its row was inserted).
   */
  gate(pipeline: Pipeline, block: BlockConfig, blockRunUuid: string, pipelineRunId: number, job: () => BlockJob): Gate {
    const conditionals = conditionalsOf(pipeline, block.uuid);
    if (conditionals.length === 0) return "run";
    const key = `${pipelineRunId}/${blockRunUuid}`;
    const verdict = this.#verdicts.get(key);
    if (verdict === true) return "run";
    if (verdict === false) return "condition_failed";
    if (verdict === null) return "wait";
    this.#verdicts.set(key, null);
    const parentJob = job();
    void this.#evaluate(conditionals, block, parentJob).then((ok) => {
      this.#verdicts.set(key, ok);
      this.wake(pipelineRunId);
    });
    return "wait";
  }

  /** Runs a block run's callbacks after it ended for good (completed, or failed on its last attempt). */
  afterBlock(pipeline: Pipeline, block: BlockConfig, status: "completed" | "failed", error: string | null, job: () => BlockJob): void {
    const callbacks = callbacksOf(pipeline, block.uuid);
    if (callbacks.length === 0) return;
    const parentJob = job();
    const runId = parentJob.pipelineRunId;
    this.#running.set(runId, (this.#running.get(runId) ?? 0) + 1);
    void this.#runCallbacks(callbacks, block, parentJob, status, error).finally(() => {
      const left = (this.#running.get(runId) ?? 1) - 1;
      if (left > 0) this.#running.set(runId, left);
      else this.#running.delete(runId);
      this.wake(runId);
    });
  }

  /** True while callbacks of the run are still running: the run must not end under them. */
  busy(pipelineRunId: number): boolean {
    return (this.#running.get(pipelineRunId) ?? 0) > 0;
  }

  /** Drops what is kept for a run that ended. */
  forget(pipelineRunId: number): void {
    const prefix = `${pipelineRunId}/`;
    for (const key of this.#verdicts.keys()) if (key.startsWith(prefix)) this.#verdicts.delete(key);
  }

  /** All conditionals true; a false one or an error (logged) makes it false, as in Mage. */
  async #evaluate(conditionals: AddonBlock[], block: BlockConfig, job: BlockJob): Promise<boolean> {
    let ok = true;
    for (const addon of conditionals) {
      let result = false;
      try {
        if (!this.runner) throw new Error("this kiln process has no runner for conditional blocks");
        result = await this.runner.condition({ kind: "condition", addon, parent: block, job });
      } catch (error) {
        this.#log(job, "error", `conditional ${addon.uuid} failed for block ${block.uuid}, which counts as false: ${messageOf(error)}`);
      }
      if (!result) this.#log(job, "info", `conditional ${addon.uuid} evaluated to false for block ${block.uuid}`);
      ok = ok && result;
    }
    if (!ok) this.#log(job, "info", `block ${block.uuid} and its downstream blocks are condition_failed`);
    return ok;
  }

  async #runCallbacks(callbacks: AddonBlock[], block: BlockConfig, job: BlockJob, status: "completed" | "failed", error: string | null): Promise<void> {
    const callback = status === "completed" ? "on_success" : "on_failure";
    for (const addon of callbacks) {
      try {
        if (!this.runner) throw new Error("this kiln process has no runner for callback blocks");
        await this.runner.callback({ kind: "callback", callback, addon, parent: block, job, ...(error !== null ? { error } : {}) });
      } catch (e) {
        this.#log(job, "error", `${callback} callback ${addon.uuid} of block ${block.uuid} failed: ${messageOf(e)}`);
      }
    }
  }

  #log(job: BlockJob, level: "info" | "error", message: string): void {
    try {
      this.logs?.append(job.pipelineUuid, job.executionPartition, job.blockUuid, formatLogLine(Date.now(), level, message));
    } catch {
      // a log that cannot be written must not stop the run
    }
  }
}
