/**
 * Commits that outlast a database outage: while the database cannot be reached (a sqld restart,
 * a dropped connection), the engine's writes are tried again with backoff instead of failing the
 * run, or being dropped, for a reason that has nothing to do with the run. It gives up only when
 * told to: this process may no longer write for the run (its heartbeat lapsed meanwhile, so
 * another scheduler may take the run over once the database is back).
 */
import type { ResultSet } from "@libsql/client";
import { systemClock } from "../clock.ts";
import { isDatabaseUnavailable, type Store, type WriteBatch } from "../store/index.ts";

/** First wait after a refused connection (ms); doubled each time, up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;

/** Why a retried commit was given up (the caller's `stop` reason), with the outage that caused it. */
export class CommitAbandonedError extends Error {
  readonly code = "commit_abandoned";
  constructor(
    readonly reason: string,
    cause: unknown,
  ) {
    super(`${reason} (while the database could not be reached)`, { cause });
    this.name = "CommitAbandonedError";
  }
}

/**
 * Commits `batch`; while the database is unreachable, waits (real time: the outage is real) and
 * tries again. `stop` is asked before each new try: a reason ends the retries with
 * CommitAbandonedError. Any other error is thrown at once, as from store.commit.
 */
export function commitThroughOutages(store: Pick<Store, "commit">, batch: WriteBatch, stop: () => string | null): Promise<ResultSet[]> {
  return throughOutages(() => store.commit(batch), stop);
}

/** `work` (a read or a commit), tried again with backoff while the database is unreachable, as commitThroughOutages. */
export async function throughOutages<T>(work: () => Promise<T>, stop: () => string | null): Promise<T> {
  let wait = FIRST_BACKOFF_MS;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      await new Promise<void>((resolve) => systemClock.setTimer(wait, resolve));
      wait = Math.min(wait * 2, MAX_BACKOFF_MS);
      const reason = stop();
      if (reason !== null) throw new CommitAbandonedError(reason, error);
    }
  }
}
