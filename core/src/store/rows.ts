/** The snake_case <-> camelCase boundary: database rows to domain records. */
import type { Row } from "@libsql/client";
import type {
  Backfill,
  BackfillStatus,
  BlockRun,
  BlockRunStatus,
  IntervalType,
  PipelineRun,
  PipelineRunStatus,
  PipelineSchedule,
  ScheduleSettings,
  ScheduleStatus,
  ScheduleType,
} from "../domain.ts";
import { parseJsonObject } from "./json.ts";

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function pipelineRunFromRow(r: Row): PipelineRun {
  return {
    id: num(r.id),
    pipelineScheduleId: numOrNull(r.pipeline_schedule_id),
    pipelineUuid: String(r.pipeline_uuid),
    executionDate: num(r.execution_date),
    executionPartition: String(r.execution_partition),
    status: String(r.status) as PipelineRunStatus,
    variables: parseJsonObject(r.variables) ?? {},
    event: parseJsonObject(r.event),
    metrics: parseJsonObject(r.metrics) ?? {},
    backfillId: numOrNull(r.backfill_id),
    owner: strOrNull(r.owner),
    passedSla: Boolean(num(r.passed_sla)),
    startedAt: numOrNull(r.started_at),
    completedAt: numOrNull(r.completed_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function blockRunFromRow(r: Row): BlockRun {
  return {
    id: num(r.id),
    pipelineRunId: num(r.pipeline_run_id),
    blockUuid: String(r.block_uuid),
    status: String(r.status) as BlockRunStatus,
    attempt: num(r.attempt),
    executorType: strOrNull(r.executor_type),
    executorHandle: parseJsonObject(r.executor_handle),
    error: strOrNull(r.error),
    metrics: parseJsonObject(r.metrics) ?? {},
    retryAt: numOrNull(r.retry_at),
    startedAt: numOrNull(r.started_at),
    completedAt: numOrNull(r.completed_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** A trigger's tags column (a JSON list of strings; absent before migration 11). */
function tagList(value: unknown): string[] {
  if (typeof value !== "string") return [];
  const parsed: unknown = JSON.parse(value);
  return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === "string") : [];
}

export function pipelineScheduleFromRow(r: Row): PipelineSchedule {
  return {
    id: num(r.id),
    name: String(r.name),
    pipelineUuid: String(r.pipeline_uuid),
    scheduleType: String(r.schedule_type) as ScheduleType,
    scheduleInterval: strOrNull(r.schedule_interval),
    startTime: numOrNull(r.start_time),
    timezone: String(r.timezone),
    status: String(r.status) as ScheduleStatus,
    variables: parseJsonObject(r.variables) ?? {},
    sla: numOrNull(r.sla),
    hasToken: strOrNull(r.token_sealed) !== null || strOrNull(r.token) !== null,
    settings: (parseJsonObject(r.settings) ?? {}) as ScheduleSettings,
    description: strOrNull(r.description),
    eventPattern: parseJsonObject(r.event_pattern),
    lastEnabledAt: numOrNull(r.last_enabled_at),
    tags: tagList(r.tags),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function backfillFromRow(r: Row): Backfill {
  return {
    id: num(r.id),
    name: String(r.name),
    pipelineScheduleId: numOrNull(r.pipeline_schedule_id),
    pipelineUuid: String(r.pipeline_uuid),
    startDatetime: num(r.start_datetime),
    endDatetime: num(r.end_datetime),
    intervalType: String(r.interval_type) as IntervalType,
    intervalUnits: num(r.interval_units),
    variables: parseJsonObject(r.variables) ?? {},
    blockUuid: strOrNull(r.block_uuid),
    maxConcurrentRuns: numOrNull(r.max_concurrent_runs),
    status: String(r.status) as BackfillStatus,
    startedAt: numOrNull(r.started_at),
    completedAt: numOrNull(r.completed_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}
