/**
 * Mage's runtime variables, the kwargs a block function receives: the run's merged variables
 * overlaid with the reserved keys Mage always sets (ds, hr, env, execution_date, ...), and for
 * time triggers the interval the run covers. Computed here, in one place, for every language.
 */
import { addUtcMonths, type BackfillRange } from "./backfill/dates.ts";
import type { JsonObject, PipelineSchedule } from "./domain.ts";
import type { BlockJob } from "./executor.ts";
import { nextOccurrence, previousOccurrence, scheduleSpec } from "./schedule/occurrences.ts";
import { InvalidScheduleError } from "./schedule/errors.ts";
import { schedulingSettings } from "./schedule/settings.ts";
import { getBackfill } from "./store/backfills.ts";
import type { Store } from "./store/index.ts";

/** Mage's keys that hold datetimes (sent as ISO 8601 strings; Python blocks get datetimes). */
export const DATETIME_RUNTIME_VARIABLES = [
  "execution_date",
  "interval_start_datetime",
  "interval_end_datetime",
  "interval_start_datetime_previous",
] as const;

export interface RuntimeVariablesInput {
  /** UTC epoch milliseconds. */
  executionDate: number;
  executionPartition: string;
  pipelineUuid: string;
  pipelineRunId: number;
  blockUuid: string;
  blockRunId: number;
  /** project < pipeline < trigger < run < runtime variables, already merged. */
  variables: JsonObject;
  /** Mage's ENV; "prod" when unset, as in Mage's run variables. */
  env?: string | null;
  /** The run's trigger, or null for a run without one (`kiln run`). */
  schedule: (Pick<PipelineSchedule, "name" | "scheduleType" | "scheduleInterval" | "timezone"> & Partial<Pick<PipelineSchedule, "startTime" | "settings">>) | null;
  /** The run's backfill: its interval gives the per-date interval_* (as Mage's backfills do). */
  backfill?: BackfillRange | null;
  event?: JsonObject | null;
}

const INTERVAL_KEYS = ["interval_start_datetime", "interval_end_datetime", "interval_seconds", "interval_start_datetime_previous"] as const;

/** The kwargs of a block function, as Mage builds them; later keys win, as in Mage's get_variables. */
export function runtimeVariables(input: RuntimeVariablesInput): JsonObject {
  const date = new Date(input.executionDate);
  const iso = date.toISOString();
  const out: JsonObject = { ...input.variables };
  // a run's own interval (a backfill's per-date variables) stands unless a time trigger defines one
  for (const key of INTERVAL_KEYS) if (!(key in out)) out[key] = null;
  Object.assign(out, intervalOf(input));
  Object.assign(out, {
    ds: iso.slice(0, 10),
    hr: iso.slice(11, 13),
    env: input.env || "prod",
    event: (input.event ?? (isObject(out.event) ? out.event : {})),
    execution_date: iso,
    execution_partition: input.executionPartition,
    pipeline_run_id: input.pipelineRunId,
    block_run_id: input.blockRunId,
    pipeline_uuid: input.pipelineUuid,
    block_uuid: input.blockUuid,
    trigger_name: input.schedule?.name ?? null,
  });
  return out;
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

const FIXED_STEP_MS: Partial<Record<BackfillRange["intervalType"], number>> = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 604_800_000 };

/** interval_* of a backfill's date: from it to the next date of the backfill, the previous date before it. */
function backfillIntervalOf(b: BackfillRange, date: number): JsonObject {
  const fixed = FIXED_STEP_MS[b.intervalType];
  let at: (n: number) => number;
  let n: number;
  if (fixed !== undefined) {
    const step = fixed * b.intervalUnits;
    at = (k) => b.startDatetime + k * step;
    n = Math.round((date - b.startDatetime) / step);
  } else {
    // dates are anchored on the start (never stepped from the previous date), so the same here
    const stepMonths = (b.intervalType === "year" ? 12 : 1) * b.intervalUnits;
    at = (k) => addUtcMonths(b.startDatetime, k * stepMonths);
    const s = new Date(b.startDatetime);
    const d = new Date(date);
    n = Math.round(((d.getUTCFullYear() - s.getUTCFullYear()) * 12 + d.getUTCMonth() - s.getUTCMonth()) / stepMonths);
  }
  const end = at(n + 1);
  return {
    interval_start_datetime: new Date(date).toISOString(),
    interval_end_datetime: new Date(end).toISOString(),
    interval_seconds: (end - date) / 1000,
    interval_start_datetime_previous: new Date(at(n - 1)).toISOString(),
  };
}

/**
 * The runtime variables of a block run, looked up from its run, trigger and backfill: what
 * TypeScript blocks get as ctx.variables and Python blocks as **kwargs (the same object).
 */
export async function blockRunVariables(job: BlockJob, store: Store | undefined, env: string | null): Promise<JsonObject> {
  // the engine's job names the run's trigger and backfill: no read of the run for every block run
  const known = job.pipelineScheduleId !== undefined && job.backfillId !== undefined;
  const run = known ? { pipelineScheduleId: job.pipelineScheduleId ?? null, backfillId: job.backfillId ?? null } : store ? await store.getPipelineRun(job.pipelineRunId) : null;
  // the trigger as the engine read it at the run's start, if the job carries it
  const schedule = job.schedule !== undefined ? job.schedule : run?.pipelineScheduleId != null && store ? await store.getPipelineSchedule(run.pipelineScheduleId) : null;
  const backfill = run?.backfillId != null && store ? await getBackfill(store.client, run.backfillId) : null;
  return runtimeVariables({
    executionDate: Date.parse(job.executionDate),
    executionPartition: job.executionPartition,
    pipelineUuid: job.pipelineUuid,
    pipelineRunId: job.pipelineRunId,
    blockUuid: job.blockUuid,
    blockRunId: job.blockRunId,
    variables: job.variables,
    env,
    schedule,
    backfill,
    event: job.event,
  });
}

/** interval_* of a time trigger with a recurring interval (Mage computes them for those only), or of a backfill's date. */
function intervalOf(input: RuntimeVariablesInput): JsonObject {
  if (input.backfill) return backfillIntervalOf(input.backfill, input.executionDate);
  const schedule = input.schedule;
  if (!schedule || schedule.scheduleType !== "time" || !schedule.scheduleInterval) return {};
  let spec;
  try {
    // the trigger's own dates (landing time and DST rules included), so the interval is the one the run covers
    const settings = schedule.settings ? schedulingSettings(schedule.settings as JsonObject) : null;
    spec = scheduleSpec({
      interval: schedule.scheduleInterval,
      timezone: schedule.timezone,
      startTime: schedule.startTime ?? null,
      ...(settings ? { dstGap: settings.dstGap, dstOverlap: settings.dstOverlap, landingTime: settings.landingTimeEnabled } : {}),
    });
  } catch (error) {
    if (error instanceof InvalidScheduleError) return {};
    throw error;
  }
  if (spec.interval.kind !== "cron") return {};
  const start = input.executionDate;
  const end = nextOccurrence(spec, start);
  const previous = previousOccurrence(spec, start - 1);
  return {
    interval_start_datetime: new Date(start).toISOString(),
    interval_end_datetime: end === null ? null : new Date(end).toISOString(),
    interval_seconds: end === null ? null : (end - start) / 1000,
    interval_start_datetime_previous: previous === null ? null : new Date(previous).toISOString(),
  };
}
