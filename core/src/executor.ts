/**
 * The contract between kiln and whatever runs a block: a local process, a container, a cloud
 * job. An executor is a stateless adapter: `start` returns a serialisable handle that is stored
 * on the block run, so any process can later poll, cancel or re-attach to the work.
 */
import type { JsonObject } from "./domain.ts";

/** Where a block reads one of its inputs from (see engine/inputs.ts). */
export type InputRef =
  /** The whole output of a block run in a partition. */
  | { partition: string; blockUuid: string }
  /** Item `item` of a dynamic block's list output. */
  | { partition: string; blockUuid: string; item: number };

/** Everything needed to run one block run, serialisable so it can cross a process boundary. */
export interface BlockJob {
  projectRoot: string;
  pipelineUuid: string;
  /** The block run's uuid: the block's uuid, or `<uuid>:<index>` for a dynamic item. */
  blockUuid: string;
  blockRunId: number;
  pipelineRunId: number;
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
  | { state: "completed"; metrics?: JsonObject }
  | { state: "failed"; error: string; metrics?: JsonObject }
  | { state: "cancelled" };

export interface Executor {
  /** The name blocks use in executor_type: "local", "docker", "ecs", "cloud_run", "k8s", ... */
  readonly type: string;
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
}

/** Builds an executor for a project; third-party executor packages default-export one. */
export type ExecutorFactory = (options: { projectRoot: string; config: JsonObject }) => Executor;

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
