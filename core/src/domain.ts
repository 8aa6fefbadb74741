/**
 * kiln's domain records, as the rest of the code sees them (camelCase). The database and the
 * JSON API use snake_case; the store converts at the boundary (store/rows.ts).
 */
import { assertInstant } from "./bounds.ts";

export type JsonObject = { [key: string]: unknown };

export const PIPELINE_RUN_STATUSES = ["initial", "running", "completed", "failed", "cancelled"] as const;
export type PipelineRunStatus = (typeof PIPELINE_RUN_STATUSES)[number];

export const BLOCK_RUN_STATUSES = [
  "initial",
  "queued",
  "running",
  "completed",
  "failed",
  "cancelled",
  "upstream_failed",
  "condition_failed",
] as const;
export type BlockRunStatus = (typeof BLOCK_RUN_STATUSES)[number];

export const BACKFILL_STATUSES = ["initial", "running", "completed", "failed", "cancelled"] as const;
export type BackfillStatus = (typeof BACKFILL_STATUSES)[number];

export const SCHEDULE_TYPES = ["time", "event", "api"] as const;
export type ScheduleType = (typeof SCHEDULE_TYPES)[number];

export const SCHEDULE_STATUSES = ["active", "inactive"] as const;
export type ScheduleStatus = (typeof SCHEDULE_STATUSES)[number];

export const INTERVAL_TYPES = ["minute", "hour", "day", "week", "month", "year"] as const;
export type IntervalType = (typeof INTERVAL_TYPES)[number];

/** Status given to a pipeline run that exceeds its timeout (Mage's timeout_status). */
export type TimeoutStatus = "failed" | "cancelled";

/** Settings of a trigger (Mage's SettingsConfig), also accepted on a pipeline for CLI runs. */
export interface ScheduleSettings {
  skipIfPreviousRunning?: boolean;
  allowBlocksToFail?: boolean;
  createInitialPipelineRun?: boolean;
  landingTimeEnabled?: boolean;
  pipelineRunLimit?: number;
  /** Pipeline-run timeout in seconds, measured from started_at. */
  timeout?: number;
  timeoutStatus?: TimeoutStatus;
}

export interface PipelineSchedule {
  id: number;
  name: string;
  pipelineUuid: string;
  scheduleType: ScheduleType;
  scheduleInterval: string | null;
  startTime: number | null;
  timezone: string;
  status: ScheduleStatus;
  variables: JsonObject;
  sla: number | null;
  /**
   * Whether the API or event trigger has a token. The token itself is kept sealed in the
   * database and read only to show it to an editor (Store.revealTriggerToken).
   */
  hasToken: boolean;
  settings: ScheduleSettings;
  description: string | null;
  /** Event triggers: the pattern an event must match (see events/match.ts); null matches nothing. */
  eventPattern: JsonObject | null;
  lastEnabledAt: number | null;
  /** Mage's trigger tags, for filtering (`tag[]`). */
  tags: string[];
  createdAt: number;
  updatedAt: number;
}

export interface PipelineRun {
  id: number;
  pipelineScheduleId: number | null;
  pipelineUuid: string;
  /** UTC epoch milliseconds. */
  executionDate: number;
  executionPartition: string;
  status: PipelineRunStatus;
  variables: JsonObject;
  event: JsonObject | null;
  metrics: JsonObject;
  backfillId: number | null;
  /** The scheduler process executing the run (null when none has claimed it). */
  owner: string | null;
  passedSla: boolean;
  startedAt: number | null;
  completedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface BlockRun {
  id: number;
  pipelineRunId: number;
  /** The block's uuid, or `<uuid>:<index>` for one item of a dynamic fan-out. */
  blockUuid: string;
  status: BlockRunStatus;
  attempt: number;
  executorType: string | null;
  executorHandle: JsonObject | null;
  error: string | null;
  metrics: JsonObject;
  /** When a failed block run waiting out its backoff is retried; null otherwise. */
  retryAt: number | null;
  startedAt: number | null;
  completedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface Backfill {
  id: number;
  name: string;
  pipelineScheduleId: number | null;
  pipelineUuid: string;
  startDatetime: number;
  endDatetime: number;
  intervalType: IntervalType;
  intervalUnits: number;
  variables: JsonObject;
  blockUuid: string | null;
  /** At most this many of its runs at once; null for no limit of its own. */
  maxConcurrentRuns: number | null;
  status: BackfillStatus;
  startedAt: number | null;
  completedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** The execution partition that names a run's outputs and logs: `<schedule>/<YYYYMMDDTHHMMSS[mmm]>`. */
export function executionPartition(
  pipelineScheduleId: number | null,
  executionDate: number,
  pipelineRunId?: number,
  backfillId?: number | null,
): string {
  // every run insert names its partition here: an out-of-range date stops before anything is written
  assertInstant("execution_date", executionDate);
  const d = new Date(executionDate);
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp =
    `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}` +
    // API and event runs fall anywhere in a second (two in one second must not share outputs
    // and logs); scheduled dates are whole seconds and keep Mage's form
    (d.getUTCMilliseconds() === 0 ? "" : String(d.getUTCMilliseconds()).padStart(3, "0"));
  if (pipelineScheduleId === null && backfillId !== undefined && backfillId !== null) return `backfill_${backfillId}/${stamp}`;
  // Runs without a trigger (CLI, ad hoc) can share a second; the run id keeps their outputs apart.
  if (pipelineScheduleId === null) return `manual/${stamp}_${pipelineRunId ?? 0}`;
  return `${pipelineScheduleId}/${stamp}`;
}

/**
 * The partition of a run created through the API, an event, the UI or trigger_pipeline, in
 * Mage's form for those (configure_pipeline_run_payload): `<schedule>/%Y%m%dT%H%M%S_%f`, the
 * execution date to the microsecond, so output folders match a Mage project's.
 */
export function triggeredExecutionPartition(pipelineScheduleId: number, executionDate: number): string {
  assertInstant("execution_date", executionDate);
  const d = new Date(executionDate);
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp =
    `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  // kiln's instants are milliseconds: %f's last three digits are always 0
  return `${pipelineScheduleId}/${stamp}_${String(d.getUTCMilliseconds() * 1000).padStart(6, "0")}`;
}

/** Splits `transform:3` into its block uuid and item index; a plain uuid has no index. */
export function parseBlockRunUuid(blockUuid: string): { block: string; index: number | null } {
  const at = blockUuid.lastIndexOf(":");
  if (at < 0) return { block: blockUuid, index: null };
  const index = Number(blockUuid.slice(at + 1));
  if (!Number.isInteger(index) || index < 0) return { block: blockUuid, index: null };
  return { block: blockUuid.slice(0, at), index };
}

/** The block run uuid of item `index` of a dynamic block. */
export function itemBlockRunUuid(block: string, index: number): string {
  return `${block}:${index}`;
}
