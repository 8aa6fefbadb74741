/**
 * Which execution dates a scheduler tick must create now, after any downtime, per the
 * schedule's catch-up policy. Pure: the caller supplies the last run and the clock.
 */
import { InvalidScheduleError } from "./errors.ts";
import { nextOccurrence, occurrences, previousOccurrence, type ScheduleSpec } from "./occurrences.ts";

/**
 * What becomes of missed dates (older than the grace): `latest`: only the newest runs; `none`:
 * none does; `all`: every one, oldest first. On-time dates (within the grace) always run.
 */
export type CatchUpPolicy = "latest" | "none" | "all";

export const CATCH_UP_POLICIES: readonly CatchUpPolicy[] = ["latest", "none", "all"];
export const DEFAULT_CATCH_UP: CatchUpPolicy = "latest";
/** Most execution dates one call returns; the rest come on later ticks. */
export const DEFAULT_CATCH_UP_CAP = 1000;
/** A date this recent (ms) is on time, not missed: a tick every second or minute still sees it. */
export const DEFAULT_GRACE_MS = 60_000;

export interface DueOptions {
  /** The newest execution date already created for this schedule, or null if it never ran. */
  lastExecutionDate: number | null;
  now: number;
  catchUp: CatchUpPolicy;
  /** Dates older than now minus this many seconds are never created (any policy). */
  catchUpWindowSeconds?: number | null;
  /** At most this many dates per call (default 1000). */
  cap?: number;
  /** Dates newer than now - graceMs are on time; older ones are missed (default 60 000). */
  graceMs?: number;
  /** When the schedule was last switched on: dates before it are never created. */
  lastEnabledAt?: number | null;
  /** Never ran yet: also create the latest date at or before lastEnabledAt (Mage's create_initial_pipeline_run). */
  createInitialPipelineRun?: boolean;
}

/**
 * The execution dates to create now, ascending. The caller records the newest as the new
 * lastExecutionDate; with `all`, dates beyond `cap` are returned by the following calls.
 */
export function dueExecutionDates(spec: ScheduleSpec, options: DueOptions): number[] {
  const { lastExecutionDate, now } = options;
  const catchUp = options.catchUp ?? DEFAULT_CATCH_UP;
  const cap = options.cap ?? DEFAULT_CATCH_UP_CAP;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const windowSeconds = options.catchUpWindowSeconds ?? null;
  const lastEnabledAt = options.lastEnabledAt ?? null;
  if (!CATCH_UP_POLICIES.includes(catchUp)) throw new InvalidScheduleError(`invalid catch_up ${JSON.stringify(catchUp)}: expected latest, none or all`);
  if (!Number.isInteger(cap) || cap < 1) throw new InvalidScheduleError(`invalid catch-up cap ${cap}: expected a positive integer`);
  if (!(graceMs >= 0)) throw new InvalidScheduleError(`invalid grace ${graceMs} ms: expected a non-negative number`);
  if (windowSeconds !== null && !(windowSeconds >= 0)) {
    throw new InvalidScheduleError(`invalid catch_up_window ${windowSeconds}: expected a non-negative number of seconds`);
  }

  const interval = spec.interval;
  if (interval.kind === "always_on") return [];
  if (interval.kind === "once") {
    // A one-off runs exactly once however late: catch-up and activation bounds do not apply.
    if (lastExecutionDate !== null) return [];
    const date = spec.startTime ?? lastEnabledAt ?? now;
    return date <= now ? [date] : [];
  }

  // Exclusive lower bound: nothing at or before the last run, before start_time, or from
  // while the schedule was switched off (that is not downtime to make up for).
  let after = -Infinity;
  if (lastExecutionDate !== null) after = lastExecutionDate;
  if (spec.startTime !== null) after = Math.max(after, spec.startTime - 1);
  if (lastEnabledAt !== null) after = Math.max(after, lastEnabledAt - 1);
  // Never ran, no start_time, no activation time: only what is on time now, so a fresh
  // schedule does not reach back into the past.
  if (after === -Infinity) after = now - graceMs;
  if (windowSeconds !== null) after = Math.max(after, now - windowSeconds * 1000 - 1);

  let initial: number | null = null;
  if (options.createInitialPipelineRun && lastExecutionDate === null && lastEnabledAt !== null) {
    initial = previousOccurrence(spec, Math.min(lastEnabledAt, now));
  }
  const room = initial === null ? cap : cap - 1;

  let dates: number[];
  if (catchUp === "none") {
    dates = occurrences(spec, Math.max(after, now - graceMs), now, room);
  } else if (catchUp === "latest") {
    // of the missed dates only the newest; the on-time ones are not missed, they all run (a
    // trigger due every few seconds whose tick came late, e.g. while a dead replica's lease ran
    // out, must not lose the date before the one now due)
    const onTimeFrom = Math.max(after, now - graceMs);
    const onTime = occurrences(spec, onTimeFrom, now, room);
    const missed = after < onTimeFrom ? previousOccurrence(spec, onTimeFrom, after) : null;
    dates = missed === null ? onTime : [missed, ...onTime];
  } else {
    dates = after < now ? occurrences(spec, after, now, room) : [];
  }
  if (initial !== null && !dates.includes(initial)) dates = [initial, ...dates];
  return dates.slice(0, cap);
}

/**
 * When the schedule next needs a tick, assuming the tick for `now` has been processed: the
 * first execution date after both `now` and the last run; null if none (@always_on, a @once
 * that ran). A newly enabled schedule should simply be ticked at once.
 */
export function nextDueAt(spec: ScheduleSpec, lastExecutionDate: number | null, now: number): number | null {
  if (spec.interval.kind === "once" && lastExecutionDate !== null) return null;
  return nextOccurrence(spec, Math.max(lastExecutionDate ?? -Infinity, now));
}
