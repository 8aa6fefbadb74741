/**
 * Races this process lost to another replica, counted. Replicas sharing a database are meant to
 * contend (two schedulers trying to start one run, to take over one orphan, to hold one lease);
 * losing is normal, so it is logged at debug level, never as an error, and counted here for
 * /metrics (kiln_races_lost_total), where a rate that climbs says replicas step on each other.
 */

/** What a lost race was about. */
export type RaceKind =
  /** Another scheduler created a trigger's run (or moved one of its live runs) first. */
  | "run_create"
  /** Another scheduler started the initial run first. */
  | "run_start"
  /** Another scheduler took the orphaned run over first. */
  | "run_takeover"
  /** Another scheduler took over a run this engine drove (it presumed this one dead): this engine let go. */
  | "run_taken_over"
  /** A block run's or run's outcome was already recorded the way this engine wanted (by the same attempt). */
  | "outcome_recorded"
  /** A trigger's shard lease is held by another replica. */
  | "lease";

export const RACE_KINDS: readonly RaceKind[] = ["run_create", "run_start", "run_takeover", "run_taken_over", "outcome_recorded", "lease"];

/** Counts of lost races, per kind, since this process started. */
export class RaceCounter {
  readonly #counts = new Map<RaceKind, number>();

  /** Counts one lost race. */
  lost(kind: RaceKind): void {
    this.#counts.set(kind, (this.#counts.get(kind) ?? 0) + 1);
  }

  /** Every kind with its count (zero for kinds never lost), for /metrics. */
  snapshot(): Record<RaceKind, number> {
    return Object.fromEntries(RACE_KINDS.map((k) => [k, this.#counts.get(k) ?? 0])) as Record<RaceKind, number>;
  }
}

/** The process's counter: the engine, the scheduler and the leases of one process all count here. */
export const lostRaces = new RaceCounter();
