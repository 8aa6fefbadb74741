/**
 * What the engine knows of one pipeline run while it drives it: the project and pipeline the
 * run started with (a reloaded project never changes a run in flight), its settings, variables
 * and limits worked out once, its block runs (nodes) and its inbox. Nothing here writes; the
 * engine (run-engine.ts) changes this state only inside a pass over the inbox.
 */
import type { InlineOutput } from "../outputs.ts";
import type { BlockRunStatus, JsonObject, PipelineRun, PipelineRunStatus, PipelineSchedule, ScheduleSettings } from "../domain.ts";
import type { BlockJob, ExecutionHandle, ExecutionStatus, Executor } from "../executor.ts";
import type { BlockConfig, Pipeline, Project, RetryConfig } from "../project/types.ts";
import type { DagNode, NodeKind } from "./dag-rules.ts";
import { buildBlockJob, executorTypeOf } from "./plan.ts";
import { effectiveRetryConfig } from "./retry.ts";

/** Block runs per pipeline run that may execute at once when concurrency_config sets none. */
export const DEFAULT_BLOCK_RUN_LIMIT = 16;

/** Options of one run: what `kiln run`'s flags and the scheduler ask of it. */
export interface RunOptions {
  /** Variables that win over every other layer (`kiln run --runtime-vars`). */
  runtimeVariables?: JsonObject;
  /** Run only these blocks; their upstream outputs come from the latest run in which they completed. */
  blockUuids?: string[];
  /** Treat sensors as satisfied (`kiln run --skip-sensors`). */
  skipSensors?: boolean;
  /** Run every block on this executor (`kiln run --executor-type`). */
  executorType?: string | null;
  /** Recorded on the run: the scheduler process executing it, so others can tell orphans. */
  owner?: string | null;
  /**
   * The run as its creator just read it (initial), so execute reads it no more; its start is
   * still a guarded write, refused if the run moved on meanwhile. Ignored if another run's.
   */
  run?: PipelineRun;
  /** The run's trigger as read with it (null: none), for its settings and variables; absent or another trigger's: read. */
  schedule?: PipelineSchedule | null;
  onEvent?: (event: RunEvent) => void;
}

/** What the engine reports as a run goes (RunOptions.onEvent), once the change is committed. */
export type RunEvent =
  | {
      kind: "block";
      pipelineRunId: number;
      blockUuid: string;
      status: BlockRunStatus;
      attempt: number;
      error: string | null;
      at: number;
    }
  | { kind: "run"; pipelineRunId: number; status: PipelineRunStatus; error: string | null; at: number };

/** One block run as the engine tracks it. */
export interface Node extends DagNode {
  attempt: number;
  id: number | null;
  /** Bumped on every start, so events from an earlier attempt are recognised and dropped. */
  launch: number;
  handle: ExecutionHandle | null;
  executor: Executor | null;
  /** The executor type this node runs on (the run's project snapshot, worked out once per block). */
  executorType: string;
  /** Whether the node holds a place under its executor type's limit (executor-slots.ts) now. */
  holdsSlot: boolean;
  timers: Array<() => void>;
}

/** What is posted to a run's inbox; each pass takes all pending inputs at once. */
export type Input =
  | { type: "start" }
  | { type: "resume"; previousOwner: string | null; retryAt: Map<string, number | null> }
  | { type: "ended_elsewhere"; status: PipelineRunStatus }
  /** Another scheduler took the run over (it presumed this one dead): stop driving it. */
  | { type: "taken_over"; owner: string }
  /** This process may no longer write for the run (its heartbeat lapsed past the orphan window). */
  | { type: "lost"; reason: string }
  /** A slot freed up elsewhere: look at the queued block runs again. */
  | { type: "wake" }
  | { type: "finished"; node: Node; launch: number; result: ExecutionStatus }
  | { type: "retry"; node: Node }
  | { type: "stop"; status: "cancelled" | "failed"; reason: string };

/** How much committed output text (its length, in UTF-16 code units) a run keeps in memory for its downstream jobs; more is read back. */
const COMMITTED_OUTPUTS_MAX_LENGTH = 4 * 1024 * 1024;

/** One pipeline run as this engine drives it. */
export class RunState {
  inbox: Input[] = [];
  processing = false;
  finished = false;
  /** Whether this engine moved the run to running (or took it over); until then a lost race is not ours to clean up. */
  started = false;
  /** This engine is taking the run over from a stopped owner (resume), rather than starting it. */
  takingOver = false;
  /** Set once the run is going down (a failure without allow_blocks_to_fail, a cancel, a timeout). */
  stopping: { status: PipelineRunStatus; reason: string } | null = null;
  nodes = new Map<string, Node>();
  /** Per fan-out source block: how many items its downstream blocks run for. */
  itemCounts = new Map<string, number>();
  /** Outputs of completed item runs of reduce_output blocks, loaded when they completed (dag-rules' reduce). */
  itemOutputs = new Map<string, unknown>();
  /**
   * The output rows this engine committed in this run, by block-run uuid, up to
   * COMMITTED_OUTPUTS_MAX_LENGTH in all: a downstream job carries them (InputRef.json) instead of
   * reading them back. They are what is stored: set only once the commit that wrote them
   * succeeded, and gone with this state when the engine lets the run go.
   */
  readonly committedOutputs = new Map<string, string>();
  #committedOutputLength = 0;
  /** Block runs of this run executing now (under blockRunLimit). */
  running = 0;
  timers: Array<() => void> = [];
  done: Promise<PipelineRun>;
  resolve!: (run: PipelineRun) => void;
  /** The settings the run goes by: the pipeline's, under its trigger's. */
  readonly settings: ScheduleSettings;
  /** Queued + running block runs this run may have (concurrency_config.block_run_limit). */
  readonly blockRunLimit: number;
  readonly #executorTypes = new Map<string, string>();
  readonly #retryConfigs = new Map<string, RetryConfig>();

  constructor(
    public run: PipelineRun,
    /** The project as it was when the run started here: executor types, retries and limits come from it. */
    readonly project: Project,
    readonly pipeline: Pipeline,
    /** The run's trigger as read when the run started here (null: none); its settings and variables are in the run's. */
    readonly schedule: PipelineSchedule | null,
    readonly variables: JsonObject,
    /** Upstreams outside this run (single-block runs) and the partition holding their output. */
    readonly external: Map<string, string>,
    readonly options: RunOptions,
  ) {
    this.settings = { ...pipeline.settings, ...schedule?.settings };
    this.blockRunLimit =
      pipeline.concurrencyConfig.blockRunLimit ?? project.settings.concurrencyConfig.blockRunLimit ?? DEFAULT_BLOCK_RUN_LIMIT;
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  /** The executor type a block of this run runs on: the one place the engine works it out. */
  executorTypeOf(block: BlockConfig): string {
    let type = this.#executorTypes.get(block.uuid);
    if (type === undefined) {
      type = executorTypeOf(this.project, this.pipeline, block, this.options.executorType);
      this.#executorTypes.set(block.uuid, type);
    }
    return type;
  }

  /** The retry config of a block of this run: defaults < project < pipeline < block. */
  retryConfigOf(block: BlockConfig): RetryConfig {
    let config = this.#retryConfigs.get(block.uuid);
    if (config === undefined) {
      config = effectiveRetryConfig(this.project.settings.retryConfig, this.pipeline.retryConfig, block.retryConfig);
      this.#retryConfigs.set(block.uuid, config);
    }
    return config;
  }

  /** How many block runs of `type` may execute at once across this engine's runs, per this run's project. */
  executorLimitOf(type: string): number | undefined {
    return this.project.settings.concurrencyConfig.executorLimits?.[type];
  }

  /** The length of the committed output text kept (at most COMMITTED_OUTPUTS_MAX_LENGTH). */
  get committedOutputLength(): number {
    return this.#committedOutputLength;
  }

  /** Notes the output row a commit of this engine stored for `blockRunUuid` (null: the row was deleted, the output is a file). */
  noteCommittedOutput(blockRunUuid: string, row: InlineOutput | null): void {
    const before = this.committedOutputs.get(blockRunUuid);
    if (before !== undefined) {
      this.committedOutputs.delete(blockRunUuid);
      this.#committedOutputLength -= before.length;
    }
    if (row === null || this.#committedOutputLength + row.json.length > COMMITTED_OUTPUTS_MAX_LENGTH) return;
    this.committedOutputs.set(blockRunUuid, row.json);
    this.#committedOutputLength += row.json.length;
  }

  /**
   * The job of a block run (what its executor, or its callbacks and conditionals, get); with
   * `inlineInputs`, its inputs carry the output rows this engine committed in the run.
   */
  jobOf(node: Node, inlineInputs = true): BlockJob {
    const job = this.#jobOf(node);
    if (!inlineInputs || this.committedOutputs.size === 0) return job;
    const partition = this.run.executionPartition;
    for (let i = 0; i < job.inputs.length; i++) {
      const ref = job.inputs[i]!;
      const json = ref.partition === partition ? this.committedOutputs.get(ref.blockUuid) : undefined;
      if (json !== undefined) job.inputs[i] = { ...ref, json };
    }
    return job;
  }

  #jobOf(node: Node): BlockJob {
    return buildBlockJob({
      project: this.project,
      pipeline: this.pipeline,
      run: this.run,
      blockRunUuid: node.uuid,
      blockRunId: node.id ?? 0,
      attempt: node.attempt,
      variables: this.variables,
      partitionOf: (upstream) => this.external.get(upstream) ?? this.run.executionPartition,
      executorType: this.options.executorType,
      schedule: this.schedule,
    });
  }

  /** A new node of this run, not started. */
  node(uuid: string, block: BlockConfig, kind: NodeKind, index: number | null): Node {
    return {
      uuid,
      block,
      kind,
      index,
      status: "initial",
      attempt: 1,
      id: null,
      launch: 0,
      retryPending: false,
      handle: null,
      executor: null,
      executorType: this.executorTypeOf(block),
      holdsSlot: false,
      timers: [],
    };
  }
}
