/**
 * Ownership: whether this engine may still drive a run. A run belongs to the process that moved
 * it to running (or took it over); another scheduler may take it over once this one looks dead,
 * or a user may end it elsewhere. The watcher notices both (and this process's own liveness
 * lapsing) and posts them to the run's inbox; the rules here say when a failed write was a race
 * lost to another owner (never the run's failure) and which block processes to leave running
 * for the run's next owner when this engine lets go.
 */
import { systemClock } from "../clock.ts";
import type { BlockRun, JsonObject, PipelineRun, PipelineRunStatus } from "../domain.ts";
import type { ExecutionHandle } from "../executor.ts";
import { BLOCK_RUN_TERMINAL, IllegalTransitionError } from "../state-machine.ts";
import { isDatabaseUnavailable, LeaseLostError, RunTakenOverError, type Store } from "../store/index.ts";
import { CommitAbandonedError } from "./commit-retry.ts";
import type { Input, Node, RunState } from "./run-state.ts";

/**
 * This engine may no longer write for the run: its process may have been presumed dead (its
 * heartbeat lapsed past the orphan window), or another process moved the run on. It lets go.
 */
export class RunLostError extends Error {
  readonly code = "run_lost";
  constructor(
    readonly pipelineRunId: number,
    readonly reason: string,
  ) {
    super(`pipeline run ${pipelineRunId}: this engine let go of it: ${reason}`);
    this.name = "RunLostError";
  }
}

/** The run was ended (cancelled, usually) by another process while this engine was executing it. */
export class RunEndedElsewhereError extends Error {
  constructor(
    readonly pipelineRunId: number,
    readonly status: PipelineRunStatus,
  ) {
    super(`pipeline run ${pipelineRunId} was ${status} by another process`);
    this.name = "RunEndedElsewhereError";
  }
}

export interface OwnershipWatchDeps {
  store: Pick<Store, "getPipelineRun">;
  /** How often to look at the stored run (ms). */
  watchMs: number;
  /** Why this process may not write for its runs now (the engine's liveness), or null. */
  fenced: () => string | null;
  post: (state: RunState, input: Input) => void;
}

/** Checks now and then that each run it watches is still running here, and tells the run's inbox when not. */
export class OwnershipWatch {
  constructor(private readonly deps: OwnershipWatchDeps) {}

  /** Watches the run until it is finished: ended elsewhere, taken over, or this process fenced out. */
  watch(state: RunState): void {
    // real time, not the injected clock: this watches the database, not the schedule
    state.timers.push(
      systemClock.setTimer(this.deps.watchMs, () => {
        if (state.finished) return;
        const fenced = this.deps.fenced();
        if (fenced !== null) return this.deps.post(state, { type: "lost", reason: fenced });
        this.deps.store.getPipelineRun(state.run.id).then(
          (stored) => {
            if (stored && stored.status !== "running") this.deps.post(state, { type: "ended_elsewhere", status: stored.status });
            else if (stored && state.run.owner && stored.owner !== state.run.owner) this.deps.post(state, { type: "taken_over", owner: stored.owner ?? "no owner" });
            else this.watch(state);
          },
          () => this.watch(state),
        );
      }, { background: true }),
    );
  }
}

/**
 * Whether `error`, which stopped the engine driving a run, is a race lost to another owner (or a
 * write this engine cannot explain) rather than something wrong with the run: `current` is the
 * run as stored now and `owner` the one this engine wrote as.
 */
export function lostToAnother(error: unknown, owner: string | null, current: PipelineRun | null): boolean {
  return (
    // the database out of reach (a read that cannot wait, or a commit given up once this process
    // was fenced out): never the run's failure; its next owner, or this one again, drives it on
    isDatabaseUnavailable(error) ||
    error instanceof CommitAbandonedError ||
    error instanceof RunTakenOverError ||
    error instanceof RunLostError ||
    error instanceof LeaseLostError ||
    error instanceof IllegalTransitionError ||
    (owner !== null && current !== null && current.owner !== owner)
  );
}

/** Block runs of a run let go whose execution this engine may still stop (running here, with an executor and handle). */
export function liveExecutions(nodes: Iterable<Node>): Node[] {
  return [...nodes].filter((n) => n.status === "running" && n.kind !== "controller" && n.executor && n.handle);
}

/**
 * Whether a live block process of a run let go is left running for the run's next owner: the
 * stored block run still names that very attempt and process (a process on its way is better
 * followed than run again). In-process runs (transient handles) are never left.
 */
export function leftForNextOwner(node: Node, row: BlockRun | undefined): boolean {
  return (
    node.handle?.transient !== true &&
    row !== undefined &&
    row.attempt === node.attempt &&
    (row.status === "running" || BLOCK_RUN_TERMINAL.has(row.status)) &&
    sameHandle(row.executorHandle, node.handle)
  );
}

/** Whether a stored executor handle names the same execution as this engine's. */
function sameHandle(stored: JsonObject | null, mine: ExecutionHandle | null): boolean {
  return stored !== null && mine !== null && JSON.stringify(stored) === JSON.stringify(mine);
}
