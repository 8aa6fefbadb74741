/**
 * The part of a tick that starts waiting (`initial`) runs, oldest first, within the concurrency
 * limits: per trigger (settings.pipeline_run_limit, or one at a time under an overlap policy
 * other than allow), per pipeline (concurrency_config.pipeline_run_limit and
 * pipeline_run_limit_all_triggers, project values as defaults), per backfill
 * (max_concurrent_runs). A run over a limit waits; it is never cancelled here.
 */
import { type JsonObject, type PipelineRun, type PipelineSchedule } from "@kiln/core";
import { backfillRunsToStart } from "@kiln/core/backfill";
import { type RunEngine } from "@kiln/core/engine";
import { type Pipeline, type Project } from "@kiln/core/project";
import { schedulingSettings, type SchedulingSettings } from "@kiln/core/schedule";
import { type CreatedRun } from "@kiln/core/runs";
import { scheduling, type Store } from "@kiln/core/store";
import type { Log } from "./log.ts";

export interface StartRunsOptions {
  owner: string;
  limit: number;
  log: Log;
  /** Called with each run handed to the engine and the promise of its end. */
  onStarted(run: PipelineRun, done: Promise<PipelineRun>): void;
}

/** A trigger's scheduling settings; null when they do not parse (then they limit nothing, as in a tick). */
function settingsOf(schedule: Pick<PipelineSchedule, "settings"> | null): SchedulingSettings | null {
  try {
    return schedule ? schedulingSettings(schedule.settings as JsonObject) : null;
  } catch {
    return null;
  }
}

/**
 * How many runs of one trigger of `pipeline` may run at once (null: no limit): the trigger's
 * settings.pipeline_run_limit over the pipeline's and the project's, and one under an overlap
 * policy other than allow.
 */
function perTriggerLimit(project: Project, pipeline: Pipeline, settings: SchedulingSettings | null, hasTrigger: boolean): number | null {
  let perTrigger = pipeline.concurrencyConfig.pipelineRunLimit ?? project.settings.concurrencyConfig.pipelineRunLimit ?? null;
  if (!hasTrigger) return perTrigger;
  if (settings?.pipelineRunLimit) perTrigger = settings.pipelineRunLimit;
  if (settings && settings.overlap !== "allow") perTrigger = Math.min(perTrigger ?? 1, 1);
  return perTrigger;
}

/** How many runs of `pipeline` may run at once over all its triggers (null: no limit). */
function allTriggersLimit(project: Project, pipeline: Pipeline): number | null {
  return pipeline.concurrencyConfig.pipelineRunLimitAllTriggers ?? project.settings.concurrencyConfig.pipelineRunLimitAllTriggers ?? null;
}

/**
 * Starts runs this process just created (the store's "runs created" signal named them, with
 * their triggers as read) that no limit holds back: no concurrency limit applies to them, so no
 * read of the waiting runs, the running counts or the triggers is needed. Returns the runs it
 * did not start, for a full pass: a limit applies (the full pass starts the oldest first), the
 * trigger was not read, a backfill's run, a pipeline the project does not have.
 */
export function startCreatedRuns(project: Project, engine: RunEngine, created: readonly CreatedRun[], options: StartRunsOptions): CreatedRun[] {
  const rest: CreatedRun[] = [];
  const active = new Set(engine.activeRunIds());
  for (const entry of created) {
    const { run, schedule } = entry;
    const pipeline = project.pipelines.get(run.pipelineUuid);
    const known = schedule !== undefined && (schedule === null ? run.pipelineScheduleId === null : schedule.id === run.pipelineScheduleId);
    if (!pipeline || !known || run.status !== "initial" || run.backfillId !== null || allTriggersLimit(project, pipeline) !== null) {
      rest.push(entry);
      continue;
    }
    if (perTriggerLimit(project, pipeline, settingsOf(schedule), schedule !== null) !== null) {
      rest.push(entry);
      continue;
    }
    if (active.has(run.id)) continue;
    const blockUuid = typeof run.metrics.block_uuid === "string" ? run.metrics.block_uuid : null;
    // the run and its trigger as just read: the engine reads neither again
    const done = engine.execute(run.id, { owner: options.owner, blockUuids: blockUuid ? [blockUuid] : undefined, run, schedule });
    options.onStarted(run, done);
  }
  return rest;
}

/** Starts the initial runs the limits allow; returns how many were handed to the engine. */
export async function startInitialRuns(store: Store, project: Project, engine: RunEngine, options: StartRunsOptions): Promise<number> {
  // backfill runs come already within each backfill's max_concurrent_runs
  const backfillRuns = await scheduling.runsByIds(store.client, await backfillRunsToStart(store, options.limit));
  const candidates = [...(await scheduling.initialRuns(store.client, options.limit)), ...backfillRuns].sort((a, b) => a.id - b.id);
  if (candidates.length === 0) return 0;
  const counts = await scheduling.runningCounts(store.client);
  const settings = new Map<number, SchedulingSettings | null>();
  const active = new Set(engine.activeRunIds());
  let started = 0;
  for (const run of candidates) {
    if (active.has(run.id)) continue;
    const pipeline = project.pipelines.get(run.pipelineUuid);
    if (!pipeline) continue;
    if (run.pipelineScheduleId !== null) {
      if (!settings.has(run.pipelineScheduleId)) settings.set(run.pipelineScheduleId, settingsOf(await scheduling.scheduleState(store.client, run.pipelineScheduleId)));
      const perTrigger = perTriggerLimit(project, pipeline, settings.get(run.pipelineScheduleId) ?? null, true);
      if (perTrigger !== null && (counts.bySchedule.get(run.pipelineScheduleId) ?? 0) >= perTrigger) continue;
    }
    const allTriggers = allTriggersLimit(project, pipeline);
    if (allTriggers !== null && (counts.byPipeline.get(run.pipelineUuid) ?? 0) >= allTriggers) continue;
    if (run.pipelineScheduleId !== null) counts.bySchedule.set(run.pipelineScheduleId, (counts.bySchedule.get(run.pipelineScheduleId) ?? 0) + 1);
    counts.byPipeline.set(run.pipelineUuid, (counts.byPipeline.get(run.pipelineUuid) ?? 0) + 1);
    const blockUuid = typeof run.metrics.block_uuid === "string" ? run.metrics.block_uuid : null;
    const done = engine.execute(run.id, { owner: options.owner, blockUuids: blockUuid ? [blockUuid] : undefined });
    options.onStarted(run, done);
    started++;
  }
  return started;
}
