/**
 * The "runs created" signal: the store fires it after committing a batch that made runs ready
 * to start (a new run, or a run put back to running with no owner), and a co-located scheduler
 * listens, so those runs start within milliseconds instead of at its next tick. It carries no
 * data across processes: a scheduler elsewhere finds the runs at its next tick, as always.
 */

/** What a commit made ready: `resumed` when runs were put back to running with no owner (retry_blocks). */
export interface RunsCreated {
  resumed: boolean;
}

export type RunsCreatedListener = (event: RunsCreated) => void;

export class RunsCreatedSignal {
  readonly #listeners = new Set<RunsCreatedListener>();

  /** Calls `listener` after every commit that made runs ready; returns the function that stops it. */
  listen(listener: RunsCreatedListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Tells every listener; one that throws is skipped (the runs are committed, a tick finds them). */
  fire(event: RunsCreated): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // the commit happened; a broken listener only delays the start to the next tick
      }
    }
  }
}
