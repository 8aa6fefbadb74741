/**
 * The state machines of pipeline runs, block runs and backfills. Nothing else in kiln decides
 * whether a status may change; the store turns each allowed transition into one conditional
 * write (`UPDATE ... WHERE id = ? AND status = ?`), and store/write-batch.ts is where every
 * status actually changes.
 */
import type { BackfillStatus, BlockRunStatus, PipelineRunStatus } from "./domain.ts";
import { KilnError } from "./errors.ts";

export type Entity = "pipeline_run" | "block_run" | "backfill";

export type StatusOf<E extends Entity> = E extends "pipeline_run"
  ? PipelineRunStatus
  : E extends "block_run"
    ? BlockRunStatus
    : BackfillStatus;

const PIPELINE_RUN: Record<PipelineRunStatus, readonly PipelineRunStatus[]> = {
  initial: ["running", "cancelled"],
  running: ["completed", "failed", "cancelled"],
  completed: [],
  // retry_blocks: the run's failed blocks run again (block runs reset to initial in the same write)
  failed: ["running"],
  cancelled: ["running"],
};

const BLOCK_RUN: Record<BlockRunStatus, readonly BlockRunStatus[]> = {
  initial: ["queued", "upstream_failed", "cancelled", "condition_failed"],
  queued: ["running", "upstream_failed", "cancelled", "condition_failed"],
  running: ["completed", "failed", "cancelled"],
  // a retry: the store bumps `attempt` on this edge; to initial: reset by retry_blocks of its pipeline run
  failed: ["queued", "initial"],
  // reset by retry_blocks of an ended pipeline run (completed ones only from from_block_uuid down)
  completed: ["initial"],
  cancelled: ["initial"],
  upstream_failed: ["initial"],
  condition_failed: ["initial"],
};

const BACKFILL: Record<BackfillStatus, readonly BackfillStatus[]> = {
  initial: ["running", "cancelled"],
  running: ["completed", "failed", "cancelled"],
  completed: [],
  // retrying its failed runs
  failed: ["running"],
  cancelled: [],
};

const MACHINES = { pipeline_run: PIPELINE_RUN, block_run: BLOCK_RUN, backfill: BACKFILL } as const;

/** Whether `entity` may move from `from` to `to`. */
export function canTransition<E extends Entity>(entity: E, from: StatusOf<E>, to: StatusOf<E>): boolean {
  const table = MACHINES[entity] as Record<string, readonly string[]>;
  return table[from]?.includes(to) ?? false;
}

/**
 * Whether a status is an end: the record is not live (initial, queued or running). Only a retry
 * leaves an end: a failed block run's own retry, or retry_blocks of its pipeline run.
 */
export function isTerminal<E extends Entity>(entity: E, status: StatusOf<E>): boolean {
  if (entity === "block_run") return BLOCK_RUN_TERMINAL.has(status as BlockRunStatus);
  return status !== "initial" && status !== "running";
}

/** Block-run statuses after which the block will not run again in this pipeline run. */
export const BLOCK_RUN_TERMINAL: ReadonlySet<BlockRunStatus> = new Set([
  "completed",
  "failed",
  "cancelled",
  "upstream_failed",
  "condition_failed",
]);

/** A status change that the state machine forbids, or that lost a race to another writer. */
export class IllegalTransitionError extends KilnError {
  constructor(
    readonly entity: Entity,
    /** Names the record, e.g. "pipeline run 12" or "block run transform:3 of pipeline run 12". */
    readonly subject: string,
    readonly from: string,
    readonly to: string,
    /** The status actually found when the write was refused (a lost race), if known. */
    readonly actual?: string,
  ) {
    const what = subject;
    super(
      "illegal_transition",
      actual === undefined || actual === from
        ? `${what}: cannot move from ${from} to ${to}`
        : `${what}: cannot move from ${from} to ${to}: it is ${actual} now`,
    );
    this.name = "IllegalTransitionError";
  }
}

/** Throws IllegalTransitionError unless the state machine allows the move. */
export function assertTransition<E extends Entity>(entity: E, subject: string, from: StatusOf<E>, to: StatusOf<E>): void {
  if (!canTransition(entity, from, to)) throw new IllegalTransitionError(entity, subject, from, to);
}
