/**
 * Records as the API shows them: snake_case as in Mage, times as UTC ISO 8601 strings. One
 * function per record type, so every route shows a record the same way.
 */
import { isoOrNull } from "@kiln/core/bounds";
import type { Backfill, BlockRun, PipelineRun, PipelineSchedule, ScheduleSettings } from "@kiln/core";
import type { Pipeline } from "@kiln/core/project";

// a stored time outside kiln's bounds (a row from before they held) shows as null, never a 500
const iso = isoOrNull;

/** Settings in Mage's spelling. */
export function settingsJson(settings: ScheduleSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (value !== undefined) out[key.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)] = value;
  }
  return out;
}

export function pipelineRunJson(run: PipelineRun): Record<string, unknown> {
  return {
    id: run.id,
    pipeline_uuid: run.pipelineUuid,
    pipeline_schedule_id: run.pipelineScheduleId,
    backfill_id: run.backfillId,
    execution_date: iso(run.executionDate),
    execution_partition: run.executionPartition,
    status: run.status,
    variables: run.variables,
    event: run.event,
    metrics: run.metrics,
    passed_sla: run.passedSla,
    started_at: iso(run.startedAt),
    completed_at: iso(run.completedAt),
    created_at: iso(run.createdAt),
    updated_at: iso(run.updatedAt),
  };
}

export function blockRunJson(blockRun: BlockRun): Record<string, unknown> {
  return {
    id: blockRun.id,
    pipeline_run_id: blockRun.pipelineRunId,
    block_uuid: blockRun.blockUuid,
    status: blockRun.status,
    attempt: blockRun.attempt,
    executor_type: blockRun.executorType,
    error: blockRun.error,
    metrics: blockRun.metrics,
    retry_at: iso(blockRun.retryAt),
    started_at: iso(blockRun.startedAt),
    completed_at: iso(blockRun.completedAt),
    created_at: iso(blockRun.createdAt),
    updated_at: iso(blockRun.updatedAt),
  };
}

/**
 * A schedule; `extra` adds next_pipeline_run_date and last_pipeline_run_status where the route
 * has them. The token is not here: it is sealed in the store, and the route adds it for editors.
 */
export function scheduleJson(schedule: PipelineSchedule, extra: { nextPipelineRunDate?: number | null; lastPipelineRunStatus?: string | null } = {}): Record<string, unknown> {
  return {
    id: schedule.id,
    name: schedule.name,
    pipeline_uuid: schedule.pipelineUuid,
    schedule_type: schedule.scheduleType,
    schedule_interval: schedule.scheduleInterval,
    start_time: iso(schedule.startTime),
    timezone: schedule.timezone,
    status: schedule.status,
    variables: schedule.variables,
    sla: schedule.sla,
    settings: settingsJson(schedule.settings),
    description: schedule.description,
    event_pattern: schedule.eventPattern,
    tags: schedule.tags,
    last_enabled_at: iso(schedule.lastEnabledAt),
    next_pipeline_run_date: extra.nextPipelineRunDate === undefined ? null : iso(extra.nextPipelineRunDate),
    last_pipeline_run_status: extra.lastPipelineRunStatus ?? null,
    created_at: iso(schedule.createdAt),
    updated_at: iso(schedule.updatedAt),
  };
}

export function backfillJson(backfill: Backfill): Record<string, unknown> {
  return {
    id: backfill.id,
    name: backfill.name,
    pipeline_uuid: backfill.pipelineUuid,
    pipeline_schedule_id: backfill.pipelineScheduleId,
    start_datetime: iso(backfill.startDatetime),
    end_datetime: iso(backfill.endDatetime),
    interval_type: backfill.intervalType,
    interval_units: backfill.intervalUnits,
    variables: backfill.variables,
    block_uuid: backfill.blockUuid,
    max_concurrent_runs: backfill.maxConcurrentRuns,
    status: backfill.status,
    started_at: iso(backfill.startedAt),
    completed_at: iso(backfill.completedAt),
    created_at: iso(backfill.createdAt),
    updated_at: iso(backfill.updatedAt),
  };
}

/** A pipeline with its blocks and their upstreams (the detail view). */
export function pipelineJson(pipeline: Pipeline, withBlocks: boolean): Record<string, unknown> {
  const base: Record<string, unknown> = {
    uuid: pipeline.uuid,
    name: pipeline.name,
    description: pipeline.description,
    executor_type: pipeline.executorType,
    variables: pipeline.variables,
    settings: settingsJson(pipeline.settings),
  };
  if (withBlocks) {
    base.blocks = pipeline.blocks.map((block) => ({
      uuid: block.uuid,
      name: block.name,
      type: block.type,
      upstream_blocks: block.upstreamBlocks,
      downstream_blocks: block.downstreamBlocks,
      executor_type: block.executorType,
      timeout: block.timeout,
      configuration: block.configuration,
    }));
  }
  return base;
}
