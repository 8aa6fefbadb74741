/**
 * The contract between kiln and whatever runs a block: a local process, a container, a cloud
 * job. An executor is a stateless adapter: `start` returns a serialisable handle that is stored
 * on the block run, so any process can later poll, cancel or re-attach to the work.
 */
import type { JsonObject, PipelineSchedule } from "./domain.ts";
import type { LogSink } from "./logs.ts";
import type { InlineOutput } from "./outputs.ts";

/**
 * Where a block reads one of its inputs from (see engine/inputs.ts). `json`: the output's JSON
 * text as the run's engine committed it as a row in this very run (RunState.committedOutputs),
 * so the block reads no database for it; absent, it is read from the output store. Only an
 * executor with `inlineInputs` gets it.
 */
export type InputRef =
  /** The whole output of a block run in a partition. */
  | { partition: string; blockUuid: string; json?: string }
  /** Item `item` of a dynamic block's list output. */
  | { partition: string; blockUuid: string; item: number; json?: string };

/** Everything needed to run one block run, serialisable so it can cross a process boundary. */
/** The part of a trigger a block run's runtime variables are computed from (BlockJob.schedule). */
export type JobSchedule = Pick<PipelineSchedule, "name" | "scheduleType" | "scheduleInterval" | "timezone" | "startTime" | "settings">;

export interface BlockJob {
  projectRoot: string;
  pipelineUuid: string;
  /** The block run's uuid: the block's uuid, or `<uuid>:<index>` for a dynamic item. */
  blockUuid: string;
  blockRunId: number;
  pipelineRunId: number;
  /**
   * The run's trigger and backfill (null: none), as the engine read them: the block's runtime
   * variables need no read of the run then. Absent in a job built elsewhere: the run is read.
   */
  pipelineScheduleId?: number | null;
  backfillId?: number | null;
  /**
   * What the runtime variables need of the run's trigger (its name; a time trigger's interval),
   * as the engine read it when the run started (null: no trigger). Absent: the trigger is read.
   */
  schedule?: JobSchedule | null;
  attempt: number;
  /** ISO 8601, UTC. */
  executionDate: string;
  executionPartition: string;
  variables: JsonObject;
  event: JsonObject | null;
  inputs: InputRef[];
  executorType: string;
  executorConfig: JsonObject;
  /** Seconds; the engine enforces it too, an executor may pass it on to its platform. */
  timeout: number | null;
}

/**
 * What an executor needs to find its work again, stored on the block run. A handle with
 * `transient: true` only means something inside the process that made it (an in-process block)
 * and is not stored.
 */
export type ExecutionHandle = JsonObject;

export type ExecutionStatus =
  | { state: "running" }
  | { state: "completed"; metrics?: JsonObject; attempts?: number; output?: InlineOutput }
  | { state: "failed"; error: string; metrics?: JsonObject; attempts?: number }
  | { state: "cancelled" };
// `output`: an in-process block run's output not stored yet (OutputStore.inline), which the engine
// commits as a row with the completion
// `attempts`: how many attempts an executor that retries by itself (retriesItself) made for this
// start; the engine records the last one as the block run's attempt and retries only what is left


export interface Executor {
  /** The name blocks use in executor_type: "local", "docker", "ecs", "cloud_run", "k8s", ... */
  readonly type: string;
  /**
   * True when the block runs somewhere that cannot see this machine's disk (a container, a cloud
   * job): its project then needs a database and an output store reachable from there.
   */
  readonly remote?: boolean;
  /**
   * True when the executor's platform runs the block's retry_config itself and enforces its
   * timeout per attempt (Cloudflare Workflows' step retries): the engine then arms no block
   * timeout of its own (an attempt's timeout is the platform's) and counts the attempts the
   * executor reports (ExecutionStatus `attempts`) before retrying anything.
   */
  readonly retriesItself?: boolean;
  /**
   * True when a job reaches its block in memory or through a pipe (the local executor): its
   * inputs then carry the upstream outputs the engine has in hand (InputRef.json). Others get
   * references only, so a job they pass on (Workflows' params) stays small.
   */
  readonly inlineInputs?: boolean;
  start(job: BlockJob): Promise<ExecutionHandle>;
  status(handle: ExecutionHandle): Promise<ExecutionStatus>;
  cancel(handle: ExecutionHandle): Promise<void>;
  logs?(handle: ExecutionHandle): AsyncIterable<string>;
  /**
   * Resolves when the work ends, for executors that learn it by a push (a child's exit, a
   * promise) rather than by polling. The engine polls `status` when this is absent, or when the
   * handle was started by another process.
   */
  wait?(handle: ExecutionHandle): Promise<ExecutionStatus>;
  /** Checks a block's executor_config; returns a message naming the bad field, or null. */
  validateConfig?(config: JsonObject): string | null;
  /**
   * The engine has committed the end of the execution `handle` names (completed, failed or
   * cancelled): what the executor kept so that a restarted kiln could learn that end (the local
   * executor's result file) may go. Called once, after the commit, never for an end that was not
   * committed; an execution still stopping (a timeout's kill) is the executor's to wait for.
   */
  release?(handle: ExecutionHandle): void;
}

/**
 * What an executor factory is given to build an executor for a project. Settings per block run
 * come in BlockJob.executorConfig (kiln.yaml's `executors.<type>` merged under the project's,
 * pipeline's and block's executor_config), so one executor serves every block of its type.
 */
export interface ExecutorContext {
  projectRoot: string;
  /**
   * Environment a block needs wherever it runs (KILN_DATABASE_URL, its auth token, the output
   * store's settings and credentials): a remote executor passes it into the container.
   */
  blockEnv: Record<string, string>;
  /** The environment of the process running kiln, for credentials (AWS_*, KUBECONFIG, ...). */
  env: Record<string, string | undefined>;
  /** Where block-run logs go, for executors that copy logs in from elsewhere. */
  logs: LogSink;
}

/** Builds an executor for a project; third-party executor packages default-export one. */
export type ExecutorFactory = (context: ExecutorContext) => Executor | Promise<Executor>;

/** The arguments of `kiln run-block` for a job, with the project at `projectRoot` (a path inside a container, for remote executors). */
export function runBlockArgs(job: BlockJob, projectRoot: string = job.projectRoot): string[] {
  return [
    "run-block",
    projectRoot,
    job.pipelineUuid,
    job.blockUuid,
    "--pipeline-run-id",
    String(job.pipelineRunId),
    "--block-run-id",
    String(job.blockRunId),
  ];
}

/** Environment telling `kiln run-block` which block run it is, beside the context's blockEnv. */
export function blockRunEnv(job: BlockJob): Record<string, string> {
  return {
    KILN_PIPELINE_UUID: job.pipelineUuid,
    KILN_PIPELINE_RUN_ID: String(job.pipelineRunId),
    KILN_BLOCK_RUN_ID: String(job.blockRunId),
    KILN_BLOCK_UUID: job.blockUuid,
    KILN_EXECUTION_PARTITION: job.executionPartition,
    KILN_ATTEMPT: String(job.attempt),
    // a container's files are gone when it ends: its block logs go to stdout, which the
    // executor reads back (logs()) and kiln copies into the block run's log
    KILN_BLOCK_LOGS: "stdout",
  };
}

/** Labels naming a block run on a platform's resources (container labels, Kubernetes labels, ECS tags). */
export function blockRunLabels(job: BlockJob): Record<string, string> {
  return {
    "kiln.pipeline-uuid": job.pipelineUuid,
    "kiln.pipeline-run-id": String(job.pipelineRunId),
    "kiln.block-run-id": String(job.blockRunId),
    "kiln.attempt": String(job.attempt),
  };
}

/** Executors by type name; entry points register them, the engine looks them up. */
export class ExecutorRegistry {
  #executors = new Map<string, Executor>();

  register(executor: Executor): this {
    this.#executors.set(executor.type, executor);
    return this;
  }

  get(type: string): Executor {
    const executor = this.#executors.get(type);
    if (!executor) {
      throw new Error(`executor_type "${type}" is not registered (known: ${this.types().join(", ") || "none"})`);
    }
    return executor;
  }

  has(type: string): boolean {
    return this.#executors.has(type);
  }

  types(): string[] {
    return [...this.#executors.keys()];
  }
}
