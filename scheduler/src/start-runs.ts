/**
 * The part of a tick that starts waiting (`initial`) runs, oldest first, within the concurrency
 * limits: per trigger (settings.pipeline_run_limit, or one at a time under an overlap policy
 * other than allow), per pipeline (concurrency_config.pipeline_run_limit and
 * pipeline_run_limit_all_triggers, project values as defaults), per backfill
 * (max_concurrent_runs). A run over a limit waits; it is never cancelled here.
 */
import { type JsonObject, type PipelineRun } from "@kiln/core";
import { backfillRunsToStart } from "@kiln/core/backfill";
import { type RunEngine } from "@kiln/core/engine";
import { type Project } from "@kiln/core/project";
import { schedulingSettings, type SchedulingSettings } from "@kiln/core/schedule";
import { scheduling, type ScheduleState, type Store } from "@kiln/core/store";
import type { Log } from "./log.ts";

export interface StartRunsOptions {
  owner: string;
  limit: number;
  log: Log;
  /** Called with each run handed to the engine and the promise of its end. */
  onStarted(run: PipelineRun, done: Promise<PipelineRun>): void;
}

/** Starts the initial runs the limits allow; returns how many were handed to the engine. */
export async function startInitialRuns(store: Store, project: Project, engine: RunEngine, options: StartRunsOptions): Promise<number> {
  // backfill runs come already within each backfill's max_concurrent_runs
  const backfillRuns = await scheduling.runsByIds(store.client, await backfillRunsToStart(store, options.limit));
  const candidates = [...(await scheduling.initialRuns(store.client, options.limit)), ...backfillRuns].sort((a, b) => a.id - b.id);
  if (candidates.length === 0) return 0;
  const counts = await scheduling.runningCounts(store.client);
  const schedules = new Map<number, { state: ScheduleState | null; settings: SchedulingSettings | null }>();
  const active = new Set(engine.activeRunIds());
  let started = 0;
  for (const run of candidates) {
    if (active.has(run.id)) continue;
    const pipeline = project.pipelines.get(run.pipelineUuid);
    if (!pipeline) continue;
    const defaults = project.settings.concurrencyConfig;
    let perTrigger = pipeline.concurrencyConfig.pipelineRunLimit ?? defaults.pipelineRunLimit ?? null;
    if (run.pipelineScheduleId !== null) {
      let entry = schedules.get(run.pipelineScheduleId);
      if (!entry) {
        const state = await scheduling.scheduleState(store.client, run.pipelineScheduleId);
        let settings: SchedulingSettings | null = null;
        try {
          settings = state ? schedulingSettings(state.settings as JsonObject) : null;
        } catch {
          settings = null;
        }
        entry = { state, settings };
        schedules.set(run.pipelineScheduleId, entry);
      }
      if (entry.settings?.pipelineRunLimit) perTrigger = entry.settings.pipelineRunLimit;
      if (entry.settings && entry.settings.overlap !== "allow") perTrigger = Math.min(perTrigger ?? 1, 1);
      if (perTrigger !== null && (counts.bySchedule.get(run.pipelineScheduleId) ?? 0) >= perTrigger) continue;
    }
    const allTriggers = pipeline.concurrencyConfig.pipelineRunLimitAllTriggers ?? defaults.pipelineRunLimitAllTriggers ?? null;
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
