/**
 * Mage's runtime variables, the kwargs a block function receives: the run's merged variables
 * overlaid with the reserved keys Mage always sets (ds, hr, env, execution_date, ...), and for
 * time triggers the interval the run covers. Computed here, in one place, for every language.
 */
import type { JsonObject, PipelineSchedule } from "./domain.ts";
import { nextOccurrence, previousOccurrence, scheduleSpec } from "./schedule/occurrences.ts";
import { InvalidScheduleError } from "./schedule/errors.ts";

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
  schedule: Pick<PipelineSchedule, "name" | "scheduleType" | "scheduleInterval" | "timezone"> | null;
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

/** interval_* of a time trigger with a recurring interval (Mage computes them for those only). */
function intervalOf(input: RuntimeVariablesInput): JsonObject {
  const schedule = input.schedule;
  if (!schedule || schedule.scheduleType !== "time" || !schedule.scheduleInterval) return {};
  let spec;
  try {
    spec = scheduleSpec({ interval: schedule.scheduleInterval, timezone: schedule.timezone });
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
