/**
 * The Workflow that runs blocks on executor_type workflows (`@kiln/worker/workflow`; the entry
 * `kiln build worker` generates exports it as KilnBlockWorkflow, bound as KILN_BLOCKS). One
 * instance per block run attempt kiln starts (the workflows executor creates it); its one
 * durable step runs the block inside this Worker, with the block's retry_config as the step's
 * retries and its timeout as each attempt's, so the block outlives the scheduler's tick.
 *
 * Each attempt opens its own database handle (an attempt may run in a later invocation than the
 * one before it), writes the block's output and log lines as a tick would (the output store, the
 * database log), and ends by flushing the log. The instance's output is the block run's outcome,
 * which the scheduler reads through `instance.status()`; the instance then wakes the scheduler
 * object, so the run goes on at once rather than at the next poll.
 */
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { formatLogLine, parseBlockRunUuid, type BlockJob, type ExecutionStatus } from "@kiln/core";
import { effectiveRetryConfig } from "@kiln/core/engine";
import { maskingExecutor } from "@kiln/core/runtime";
import { stepConfigOf, type BlockWorkflowOutcome, type BlockWorkflowParams } from "@kiln/executor-workflows";
import type { ProjectBundle } from "./bundle.ts";
import { WorkerStartError, type WorkerEnv } from "./env.ts";
import { inWorkerExecutor, invocations } from "./invocation.ts";
import { wakeScheduler } from "./scheduler-object.ts";

/** What one attempt of the step returns (kept by Workflows as the step's result). */
interface AttemptResult {
  attempt: number;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Builds the Workflow class for a bundled project; the generated entry exports it as KilnBlockWorkflow. */
export function createBlockWorkflow(bundle: ProjectBundle) {
  const opener = invocations(bundle);

  /** Runs the block once, as attempt `attempt` of the step; throws the block's error so Workflows retries it. */
  async function attempt(env: WorkerEnv, job: BlockJob, attempt: number): Promise<AttemptResult> {
    const opened = await opener.openForBlocks(env);
    const { runtime, mask, logSink } = opened;
    // Workflows' attempts are the block run's attempts: the block sees which one it is
    const attemptJob: BlockJob = { ...job, attempt: job.attempt + attempt - 1 };
    try {
      if (attempt > 1) {
        const line = formatLogLine(Date.now(), "info", `attempt ${attemptJob.attempt}: Cloudflare Workflows retries the block's step`);
        runtime.logs.append(job.pipelineUuid, job.executionPartition, job.blockUuid, line);
      }
      const executor = maskingExecutor(inWorkerExecutor(runtime, { any: true }), mask);
      const handle = await executor.start(attemptJob);
      const result: ExecutionStatus = (await executor.wait?.(handle)) ?? { state: "failed", error: "the in-Worker executor cannot be waited for" };
      if (result.state === "failed") throw new Error(result.error);
      if (result.state !== "completed") throw new Error(`the block run ended ${result.state}`);
      return { attempt };
    } finally {
      await logSink.flush();
      opened.close();
    }
  }

  return class KilnBlockWorkflow extends WorkflowEntrypoint<WorkerEnv, BlockWorkflowParams> {
    override async run(event: Readonly<WorkflowEvent<BlockWorkflowParams>>, step: WorkflowStep): Promise<BlockWorkflowOutcome> {
      const { job } = event.payload;
      const env = this.env;
      const { project } = await opener.open(env).then((opened) => {
        opened.close();
        return opened;
      });
      const pipeline = project.pipelines.get(job.pipelineUuid);
      const block = pipeline?.blocksByUuid.get(parseBlockRunUuid(job.blockUuid).block);
      if (!pipeline || !block) return { state: "failed", error: `block ${job.blockUuid} of pipeline ${job.pipelineUuid} is not in this Worker's bundle: run kiln build worker again`, attempts: 1 };
      const retry = effectiveRetryConfig(project.settings.retryConfig, pipeline.retryConfig, block.retryConfig);
      // refused at build and at start without one: a step always has a timeout (Workflows' default is 10 minutes)
      if (job.timeout === null) throw new WorkerStartError(`block ${job.blockUuid}: a block on executor_type workflows needs a timeout`);
      const config = stepConfigOf(retry, job.timeout);
      let outcome: BlockWorkflowOutcome;
      try {
        const done = await step.do(`block run ${job.blockRunId}: ${job.blockUuid}`.slice(0, 256), config, (context) => attempt(env, job, context.attempt));
        outcome = { state: "completed", attempts: done.attempt };
      } catch (error) {
        // the step failed for good: every attempt its retries allowed was made
        outcome = { state: "failed", error: messageOf(error), attempts: config.retries.limit + 1 };
      }
      // the run goes on now, not at the scheduler's next poll (a wake is harmless if one is running)
      if (env.KILN_SCHEDULER) {
        await wakeScheduler(env.KILN_SCHEDULER).catch((error: unknown) => console.warn(`WARN kiln: the block run's end could not wake the scheduler: ${messageOf(error)}`));
      }
      return outcome;
    }
  };
}
