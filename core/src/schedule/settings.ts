/**
 * A trigger's scheduling settings, read from its `settings` JSON in either spelling (triggers.yaml
 * and the API write snake_case, TypeScript callers camelCase) and checked once.
 */
import { MAX_SETTING_NUMBER } from "../bounds.ts";
import type { JsonObject, TimeoutStatus } from "../domain.ts";
import { CATCH_UP_POLICIES, type CatchUpPolicy } from "./catch-up.ts";
import { InvalidScheduleError } from "./errors.ts";
import type { DstGapPolicy, DstOverlapPolicy } from "./occurrences.ts";

export const OVERLAP_POLICIES = ["allow", "skip", "buffer_one", "cancel_previous"] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export interface SchedulingSettings {
  catchUp: CatchUpPolicy;
  /** Seconds; missed dates older than this are not caught up. */
  catchUpWindow: number | null;
  /** At most this many missed dates are created per tick. */
  catchUpCap: number | null;
  overlap: OverlapPolicy;
  dstGap: DstGapPolicy;
  dstOverlap: DstOverlapPolicy;
  pipelineRunLimit: number | null;
  onPipelineRunLimitReached: "wait" | "skip";
  allowBlocksToFail: boolean;
  createInitialPipelineRun: boolean;
  landingTimeEnabled: boolean;
  timeout: number | null;
  timeoutStatus: TimeoutStatus;
}

function pick(raw: JsonObject, camel: string, snake: string): unknown {
  return raw[camel] ?? raw[snake];
}

function oneOf<T extends string>(raw: JsonObject, camel: string, snake: string, allowed: readonly T[], fallback: T): T {
  const value = pick(raw, camel, snake);
  if (value === undefined || value === null) return fallback;
  if (!allowed.includes(value as T)) {
    throw new InvalidScheduleError(`settings.${snake}: expected one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function positive(raw: JsonObject, camel: string, snake: string): number | null {
  const value = pick(raw, camel, snake);
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !(value > 0) || value > MAX_SETTING_NUMBER) {
    throw new InvalidScheduleError(`settings.${snake}: expected a positive number up to ${MAX_SETTING_NUMBER}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function flag(raw: JsonObject, camel: string, snake: string): boolean {
  return pick(raw, camel, snake) === true;
}

/**
 * The `settings` keys kiln acts on, as triggers.yaml spells them (schedulingSettings reads each),
 * and Mage's `invalid_schedule_interval`, the flag Mage's loader writes and kiln replaces with
 * its own check (invalid_reason). The loader names any other key in a warning.
 */
export const TRIGGER_SETTING_KEYS: ReadonlySet<string> = new Set([
  "catch_up",
  "catch_up_window",
  "catch_up_cap",
  "overlap",
  "skip_if_previous_running",
  "dst_gap",
  "dst_overlap",
  "pipeline_run_limit",
  "on_pipeline_run_limit_reached",
  "allow_blocks_to_fail",
  "create_initial_pipeline_run",
  "landing_time_enabled",
  "timeout",
  "timeout_status",
  "invalid_schedule_interval",
]);

/** Reads and checks a trigger's settings; an InvalidScheduleError names the bad key. */
export function schedulingSettings(raw: JsonObject): SchedulingSettings {
  // Mage's skip_if_previous_running is overlap: skip
  const legacySkip = flag(raw, "skipIfPreviousRunning", "skip_if_previous_running");
  return {
    catchUp: oneOf(raw, "catchUp", "catch_up", CATCH_UP_POLICIES, "latest"),
    catchUpWindow: positive(raw, "catchUpWindow", "catch_up_window"),
    catchUpCap: positive(raw, "catchUpCap", "catch_up_cap"),
    overlap: oneOf(raw, "overlap", "overlap", OVERLAP_POLICIES, legacySkip ? "skip" : "allow"),
    dstGap: oneOf(raw, "dstGap", "dst_gap", ["skip", "shift"] as const, "shift"),
    dstOverlap: oneOf(raw, "dstOverlap", "dst_overlap", ["first", "last", "both"] as const, "first"),
    pipelineRunLimit: positive(raw, "pipelineRunLimit", "pipeline_run_limit"),
    onPipelineRunLimitReached: oneOf(raw, "onPipelineRunLimitReached", "on_pipeline_run_limit_reached", ["wait", "skip"] as const, "wait"),
    allowBlocksToFail: flag(raw, "allowBlocksToFail", "allow_blocks_to_fail"),
    createInitialPipelineRun: flag(raw, "createInitialPipelineRun", "create_initial_pipeline_run"),
    landingTimeEnabled: flag(raw, "landingTimeEnabled", "landing_time_enabled"),
    timeout: positive(raw, "timeout", "timeout"),
    timeoutStatus: oneOf(raw, "timeoutStatus", "timeout_status", ["failed", "cancelled"] as const, "failed"),
  };
}
