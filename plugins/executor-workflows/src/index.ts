/**
 * The "workflows" executor: each block run is a Cloudflare Workflows instance whose one durable
 * step runs the block inside the Worker (the Worker's KilnBlockWorkflow class, made by
 * `kiln build worker`), with the block's retry_config as the step's retries and its timeout as
 * each attempt's. A block so outlives the scheduler's tick (one Durable Object invocation):
 * Workflows keeps the step going, retries it, and keeps its outcome; any later tick finds it
 * again through the stored handle (the instance id) and reads it with `instance.status()`.
 *
 * The instance id is derived from the block run and its attempt, so a start tried again finds
 * the instance it created the first time instead of creating a second one. Stateless: nothing
 * is kept in memory between calls.
 */
import type { BlockJob, ExecutionHandle, ExecutionStatus, Executor, JsonObject } from "@kiln/core";
import type { WorkflowBinding, WorkflowInstanceStatus } from "./binding.ts";

export type { WorkflowBinding, WorkflowInstance, WorkflowInstanceState, WorkflowInstanceStatus, WorkflowStepConfig } from "./binding.ts";
export { stepConfigOf, uncappedWait } from "./step-config.ts";

/** The executor_type blocks name to run as Workflows steps. */
export const WORKFLOWS_EXECUTOR_TYPE = "workflows";

/** Workflows' limit on an instance's parameters (developers.cloudflare.com/workflows/reference/limits). */
export const MAX_PARAMS_BYTES = 1024 * 1024;

/** What an instance is created with: the block run's job, as any executor gets it. */
export interface BlockWorkflowParams {
  job: BlockJob;
}

/** What the Workflow returns (its instance's output): the block run's end, and the attempts it took. */
export type BlockWorkflowOutcome =
  | { state: "completed"; attempts: number; metrics?: JsonObject }
  | { state: "failed"; error: string; attempts: number };

/** The stored handle: the instance's id is all that is needed to find the block run again. */
export interface WorkflowsHandle extends JsonObject {
  workflow_instance: string;
}

/**
 * The instance id for a block run's attempt: `kiln-<run>-<block run>-<attempt>-<hash>`, the hash
 * over the pipeline, execution date and block so that a database started over (ids counted
 * from 1 again) does not meet the instances of the one before. Within Workflows' 64 characters
 * and its `^[a-zA-Z0-9_][a-zA-Z0-9-_]*$`.
 */
export async function instanceIdOf(job: BlockJob): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${job.pipelineUuid}\n${job.executionDate}\n${job.blockUuid}`));
  const hash = [...new Uint8Array(digest).slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `kiln-${job.pipelineRunId}-${job.blockRunId}-${job.attempt}-${hash}`;
}

function instanceOf(handle: ExecutionHandle): string {
  const id = handle.workflow_instance;
  if (typeof id !== "string" || id === "") throw new Error(`not a workflows executor handle (no workflow_instance): ${JSON.stringify(handle)}`);
  return id;
}

/** Reads an instance's output as the Workflow wrote it. */
function outcomeOf(status: WorkflowInstanceStatus, id: string): ExecutionStatus {
  const output = status.output as Partial<BlockWorkflowOutcome> | null | undefined;
  if (output?.state === "completed") return { state: "completed", attempts: output.attempts ?? 1, ...(output.metrics ? { metrics: output.metrics } : {}) };
  if (output?.state === "failed") return { state: "failed", error: output.error ?? "the block failed", attempts: output.attempts ?? 1 };
  return { state: "failed", error: `Workflow instance ${id} completed without a block run outcome (is its class kiln's KilnBlockWorkflow?): ${JSON.stringify(output ?? null)}` };
}

/** The executor over a Workflow binding (the Worker's KILN_BLOCKS). */
export function workflowsExecutor(binding: WorkflowBinding): Executor {
  return {
    type: WORKFLOWS_EXECUTOR_TYPE,
    retriesItself: true,

    async start(job) {
      const id = await instanceIdOf(job);
      const params: BlockWorkflowParams = { job };
      const bytes = new TextEncoder().encode(JSON.stringify(params)).byteLength;
      if (bytes > MAX_PARAMS_BYTES) {
        throw new Error(
          `block ${job.blockUuid}: its job (variables, event and inputs) is ${bytes} bytes as JSON, over the ${MAX_PARAMS_BYTES} bytes Workflows takes as an instance's parameters: pass less through variables, or run the block on another executor`,
        );
      }
      try {
        await binding.create({ id, params });
      } catch (error) {
        // a start tried again after a first one that did create the instance: that instance is
        // this block run's (the id says so), and a second one is never made
        const existing = await binding.get(id).then((instance) => instance.status()).catch(() => null);
        if (existing === null) throw error;
      }
      const handle: WorkflowsHandle = { workflow_instance: id };
      return handle;
    },

    async status(handle) {
      const id = instanceOf(handle);
      const status = await (await binding.get(id)).status();
      switch (status.status) {
        case "complete":
          return outcomeOf(status, id);
        case "errored":
          return { state: "failed", error: `Workflow instance ${id} errored: ${status.error?.message ?? "no error given"}` };
        case "terminated":
          return { state: "cancelled" };
        default:
          // queued, running, waiting, paused: the block run is not over
          return { state: "running" };
      }
    },

    async cancel(handle) {
      const instance = await binding.get(instanceOf(handle));
      const { status } = await instance.status();
      // an instance that has ended keeps its outcome; terminating it would fail
      if (status === "complete" || status === "errored" || status === "terminated") return;
      await instance.terminate();
    },

    validateConfig(config) {
      const [first] = Object.keys(config);
      return first === undefined ? null : `executor_config.${first}: the workflows executor takes no settings (the block's retry_config and timeout are its step's)`;
    },
  };
}
