/**
 * The "runs created" signal: the store fires it after committing a batch that made runs ready
 * to start (a new run, or a run put back to running with no owner), and a co-located scheduler
 * listens, so those runs start within milliseconds instead of at its next tick. It carries no
 * data across processes: a scheduler elsewhere finds the runs at its next tick, as always.
 * The "runs cancelled" signal beside it names the runs a commit cancelled, so a Worker can have
 * its scheduler object stop their block runs' executions that no engine holds.
 */
import type { PipelineRun, PipelineSchedule } from "../domain.ts";

/** What a commit made ready: `resumed` when runs were put back to running with no owner (retry_blocks). */
export interface RunsCreated {
  resumed: boolean;
  /**
   * The runs the commit created, when they are all it made ready (a trigger's new run), each
   * with its trigger as the creator read it: a listening scheduler can start them without
   * reading them, or the trigger, again. Absent: read what is waiting.
   */
  runs?: readonly CreatedRun[];
}

/** A run a commit created, and its trigger as read by the creator (null: it has none; absent: not read). */
export interface CreatedRun {
  run: PipelineRun;
  schedule?: PipelineSchedule | null;
}

export type RunsCreatedListener = (event: RunsCreated) => void;

/**
 * What a commit cancelled: the pipeline runs whose live block runs it moved to cancelled. An
 * engine holding such a run stops its executions itself; a run no engine holds (a Worker's run
 * between ticks) may still have executions going on elsewhere (a Workflows instance), which
 * the listener (the Worker's wake of its scheduler object) has stopped.
 */
export interface RunsCancelled {
  pipelineRunIds: number[];
}

/** Listeners of one kind of commit; fired by the store after the commit. */
class CommitSignal<E> {
  readonly #listeners = new Set<(event: E) => void>();

  /** Calls `listener` after every such commit; returns the function that stops it. */
  listen(listener: (event: E) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Tells every listener; one that throws is skipped (the commit happened; a tick finds its work). */
  fire(event: E): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // the commit happened; a broken listener only delays what it does to the next tick
      }
    }
  }
}

/** Fired after every commit that made runs ready to start. */
export class RunsCreatedSignal extends CommitSignal<RunsCreated> {}

/** Fired after every commit that cancelled live block runs (see RunsCancelled). */
export class RunsCancelledSignal extends CommitSignal<RunsCancelled> {}
