/**
 * Where a pipeline run comes to be, whatever asked for it: a time trigger's tick (the
 * scheduler), an API, event or UI trigger and trigger_pipeline (api/schedules.ts's
 * createRunForSchedule), a backfill's start or retry (backfill/service.ts), `kiln run`. For each
 * origin this module decides the execution partition and the variables the run carries; the
 * insert is a named WriteBatch operation; a batch that makes runs ready to start announces them,
 * and the store fires its "runs created" signal after the commit (a co-located scheduler listens).
 *
 * Variables: a run stores only its own layer (the request's, a backfill's); the engine merges
 * project < pipeline < trigger < run < runtime variables when it executes the run, so a trigger
 * edited later still applies to its waiting runs, as in Mage.
 *
 * Run counters (migration 008) are SQL triggers on pipeline_runs: every insert here counts.
 */
import { executionPartition, triggeredExecutionPartition, type Backfill, type JsonObject, type PipelineRun, type PipelineSchedule } from "../domain.ts";
import type { Store } from "../store/index.ts";
import type { NewBackfillRun } from "../store/backfills.ts";
import type { NewPipelineRun } from "../store/pipeline-runs.ts";
import { pipelineRunFromRow } from "../store/rows.ts";
import type { WriteBatch } from "../store/write-batch.ts";

/** Who asked for a run; decides its partition. */
export type RunOrigin =
  | { kind: "time"; pipelineScheduleId: number }
  | { kind: "triggered"; pipelineScheduleId: number }
  | { kind: "backfill"; backfillId: number }
  | { kind: "manual" };

/**
 * The partition rule, one for every origin (the partition names a run's outputs and logs):
 * time trigger `<schedule>/<YYYYMMDDTHHMMSS[mmm]>`; API, event, UI and trigger_pipeline runs
 * Mage's `<schedule>/%Y%m%dT%H%M%S_%f`; backfill `backfill_<id>/<YYYYMMDDTHHMMSS[mmm]>`; manual
 * `manual/<YYYYMMDDTHHMMSS[mmm]>_<run id>` (the id is appended by the insert, once known).
 */
export function runPartition(origin: RunOrigin, executionDate: number): string {
  switch (origin.kind) {
    case "time":
      return executionPartition(origin.pipelineScheduleId, executionDate);
    case "triggered":
      return triggeredExecutionPartition(origin.pipelineScheduleId, executionDate);
    case "backfill":
      return executionPartition(null, executionDate, undefined, origin.backfillId);
    case "manual":
      // without the `_<id>` the insert appends
      return executionPartition(null, executionDate).replace(/_0$/, "");
  }
}

/** The origin a NewPipelineRun describes: a trigger's (triggered or by the clock), a backfill's, or manual. */
function originOf(run: NewPipelineRun): RunOrigin {
  const scheduleId = run.pipelineScheduleId ?? null;
  if (scheduleId !== null) return run.triggered ? { kind: "triggered", pipelineScheduleId: scheduleId } : { kind: "time", pipelineScheduleId: scheduleId };
  if (run.backfillId !== undefined && run.backfillId !== null) return { kind: "backfill", backfillId: run.backfillId };
  return { kind: "manual" };
}

/**
 * Creates one run in `initial` and announces it. A run for a (schedule, execution_date), or a
 * (backfill, execution_date), that exists already is not created again: the result is then
 * null. Manual runs (neither) always get a new row.
 */
export async function createPipelineRun(store: Store, run: NewPipelineRun): Promise<PipelineRun | null> {
  const origin = originOf(run);
  const batch = store.batch();
  const index = batch.insertPipelineRun({
    pipelineUuid: run.pipelineUuid,
    pipelineScheduleId: run.pipelineScheduleId ?? null,
    backfillId: run.backfillId ?? null,
    executionDate: run.executionDate,
    executionPartition: runPartition(origin, run.executionDate),
    variables: run.variables ?? {},
    event: run.event ?? null,
    metrics: run.metrics ?? {},
    partitionEndsWithId: origin.kind === "manual",
    ...(origin.kind === "triggered" && run.afterLatestWithinMs !== undefined ? { afterLatestWithinMs: run.afterLatestWithinMs } : {}),
  });
  // announced with its row and the trigger the caller read: a co-located scheduler starts it as is
  const schedule = run.pipelineScheduleId == null ? null : run.schedule?.id === run.pipelineScheduleId ? run.schedule : undefined;
  batch.announceRuns({ created: schedule === undefined ? { statement: index } : { statement: index, schedule } });
  const results = await store.commit(batch);
  const row = results[index]?.rows[0];
  return row ? pipelineRunFromRow(row) : null;
}

/** A run of `kiln run`: no trigger, the command line's variables. */
export async function createManualRun(store: Store, run: { pipelineUuid: string; executionDate: number; variables?: JsonObject }): Promise<PipelineRun> {
  const created = await store.createPipelineRun({ pipelineUuid: run.pipelineUuid, executionDate: run.executionDate, variables: run.variables ?? {} });
  // a manual run has no unique key to meet: only a broken database gets here
  if (!created) throw new Error(`the pipeline run of ${run.pipelineUuid} was not created`);
  return created;
}

/** How far past "now" a triggered run without an execution date may be moved when runs of its trigger take that millisecond. */
const TRIGGERED_RUN_WINDOW_MS = 1000;

/**
 * A run of a trigger fired from outside (API, event, UI, trigger_pipeline), with the caller's
 * variables and event. With one execution date: null when the trigger has a run for that date
 * already. With none it is now, or, when a run of the trigger has that millisecond, the
 * millisecond after the trigger's latest run within the next second, which the insert itself
 * finds: a burst of n triggers in one millisecond takes two rounds of inserts, not n.
 */
export async function createTriggeredRun(
  store: Store,
  schedule: PipelineSchedule,
  options: { variables?: JsonObject; executionDate?: number; event?: JsonObject | null } = {},
): Promise<PipelineRun | null> {
  const fixed = options.executionDate !== undefined;
  const start = options.executionDate ?? store.clock.now();
  const attempt = (afterLatest: boolean) =>
    // through the Store's method (which comes back to createPipelineRun): one seam to replace the insert
    store.createPipelineRun({
      pipelineUuid: schedule.pipelineUuid,
      pipelineScheduleId: schedule.id,
      executionDate: start,
      variables: options.variables ?? {},
      event: options.event ?? null,
      triggered: true,
      schedule,
      ...(afterLatest ? { afterLatestWithinMs: TRIGGERED_RUN_WINDOW_MS } : {}),
    });
  const run = await attempt(false);
  if (run || fixed) return run;
  const moved = await attempt(true);
  if (moved) return moved;
  // the millisecond after the latest run is taken too: only a run dated a second ahead does that
  throw new Error(`could not create a run of schedule ${schedule.id}: runs of it take the ${TRIGGERED_RUN_WINDOW_MS} ms after ${new Date(start).toISOString()}`);
}

/** A time trigger, as the scheduler's tick creates its runs. */
type TimeTrigger = Pick<PipelineSchedule, "id" | "pipelineUuid">;

/**
 * Adds a time trigger's runs for `dates` to the scheduler's batch (which also records how far
 * the trigger got); returns the indexes of the statements whose rows are the runs created (a
 * date that has a run is a no-op). Not announced: the tick that creates them starts them next.
 */
export function addScheduledRuns(batch: WriteBatch, trigger: TimeTrigger, dates: readonly number[]): number[] {
  return dates.map((executionDate) =>
    batch.insertScheduledRun({ pipelineUuid: trigger.pipelineUuid, pipelineScheduleId: trigger.id, executionDate, executionPartition: runPartition({ kind: "time", pipelineScheduleId: trigger.id }, executionDate) }),
  );
}

/** Adds the dates a policy passed over as cancelled runs saying why (Mage's create-and-cancel). */
export function addSkippedRuns(batch: WriteBatch, trigger: TimeTrigger, dates: readonly number[], reason: string): void {
  for (const executionDate of dates) {
    batch.insertSkippedRun({ pipelineUuid: trigger.pipelineUuid, pipelineScheduleId: trigger.id, executionDate, executionPartition: runPartition({ kind: "time", pipelineScheduleId: trigger.id }, executionDate), reason });
  }
}

/** Adds an @always_on trigger's next run, made only if the trigger has no live run at commit time; returns the statement whose rows are the run. */
export function addAlwaysOnRun(batch: WriteBatch, trigger: TimeTrigger, executionDate: number): number {
  return batch.insertAlwaysOnRun({ pipelineUuid: trigger.pipelineUuid, pipelineScheduleId: trigger.id, executionDate, executionPartition: runPartition({ kind: "time", pipelineScheduleId: trigger.id }, executionDate) });
}

/**
 * Adds a backfill's runs for its dates, with the backfill's variables (and its block, if it
 * backfills one); `supersedes` per date is the run a retry replaces (0 for a date's first run),
 * so a start or retry that lost a race creates nothing. Returns the statements whose
 * returned rows add up to the runs created. The caller announces the batch that lets them start
 * (the one moving the backfill to running, or the retry's).
 */
export function addBackfillRuns(
  batch: WriteBatch,
  backfill: Pick<Backfill, "id" | "pipelineUuid" | "variables" | "blockUuid">,
  runs: ReadonlyArray<Omit<NewBackfillRun, "executionPartition"> & { executionPartition?: string }>,
): number[] {
  const origin: RunOrigin = { kind: "backfill", backfillId: backfill.id };
  return batch.insertBackfillRuns(
    backfill,
    // a retry keeps the partition of the run it replaces, so its outputs replace the failed ones
    runs.map((r) => ({ ...r, executionPartition: r.executionPartition ?? runPartition(origin, r.executionDate) })),
  );
}
