/**
 * The programmatic API for triggers: the TypeScript counterpart of Mage's PipelineSchedule
 * model methods. The scheduler, the CLI and the server go through these, so a schedule created
 * anywhere is checked the same way.
 *
 * ```ts
 * const schedule = await createSchedule(store, project, {
 *   name: "daily_etl", pipelineUuid: "etl", scheduleType: "time", scheduleInterval: "@daily",
 *   timezone: "Europe/Paris", status: "active", variables: { env: "prod" }, sla: 3600,
 * });
 * await updateSchedule(store, schedule.id, { status: "inactive" });
 * const avg = await runtimeAverage(store, schedule.id, 10); // seconds, or null
 * ```
 */
import { INSTANT_RANGE, isInstant, MAX_SETTING_NUMBER, nameProblem } from "../bounds.ts";
import type { JsonObject, PipelineRun, PipelineRunStatus, PipelineSchedule, ScheduleType } from "../domain.ts";
import { SCHEDULE_STATUSES, SCHEDULE_TYPES } from "../domain.ts";
import type { Project } from "../project/types.ts";
import { parseScheduleInterval } from "../schedule/interval.ts";
import { schedulingSettings } from "../schedule/settings.ts";
import { nextOccurrence, scheduleSpec } from "../schedule/occurrences.ts";
import { assertTimeZone } from "../schedule/wall-time.ts";
import type { Page, Store } from "../store/index.ts";
import * as schedules from "../store/schedules.ts";
import type { NewPipelineSchedule } from "../store/schedules.ts";
import * as pipelineRunReads from "../store/pipeline-runs.ts";
import { createTriggeredRun } from "../runs/create.ts";
import { checkEventPattern, EventPatternError } from "../events/pattern.ts";
import { KilnError, type ErrorCode, messageOf } from "../errors.ts";
import { writeBackCodeTrigger, type CodeTriggerAccess } from "./code-triggers.ts";

/** Bad input to the schedule API; `field` names it in snake_case, as the API and YAML spell it. */
export class ScheduleInputError extends KilnError {
  declare readonly field: string;

  constructor(field: string, message: string, code: ErrorCode = "invalid_input") {
    super(code, `${field}: ${message}`, field, message);
    this.name = "ScheduleInputError";
  }
}

/** A new trigger: the store's fields, with settings in either spelling (checked by schedulingSettings). */
export type ScheduleInput = Omit<NewPipelineSchedule, "settings"> & { settings?: JsonObject };

function check(field: string, fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    throw new ScheduleInputError(field, messageOf(error));
  }
}

function checkTiming(input: Partial<ScheduleInput>): void {
  if (input.scheduleType !== undefined && !SCHEDULE_TYPES.includes(input.scheduleType)) {
    throw new ScheduleInputError("schedule_type", `expected one of ${SCHEDULE_TYPES.join(", ")}`);
  }
  if (input.status !== undefined && !SCHEDULE_STATUSES.includes(input.status)) {
    throw new ScheduleInputError("status", `expected one of ${SCHEDULE_STATUSES.join(", ")}`);
  }
  if (input.scheduleInterval) check("schedule_interval", () => parseScheduleInterval(input.scheduleInterval as string));
  if (input.timezone !== undefined) check("timezone", () => assertTimeZone(input.timezone as string));
  if (input.settings !== undefined) check("settings", () => schedulingSettings(input.settings as JsonObject));
  if (input.sla !== undefined && input.sla !== null && !(input.sla > 0 && input.sla <= MAX_SETTING_NUMBER)) {
    throw new ScheduleInputError("sla", `expected a positive number of seconds up to ${MAX_SETTING_NUMBER}`);
  }
  if (input.startTime !== undefined && input.startTime !== null && !isInstant(input.startTime)) {
    throw new ScheduleInputError("start_time", `expected a time ${INSTANT_RANGE}`);
  }
  if (input.name !== undefined) {
    const problem = nameProblem(input.name);
    if (problem) throw new ScheduleInputError("name", problem);
  }
  if (input.eventPattern !== undefined && input.eventPattern !== null) {
    try {
      checkEventPattern(input.eventPattern);
    } catch (error) {
      if (error instanceof EventPatternError) throw new ScheduleInputError(error.path ? `event_pattern.${error.path}` : "event_pattern", error.detail);
      throw error;
    }
  }
}

/** Only event triggers match events; a pattern on another type would be ignored silently. */
function checkPatternType(scheduleType: ScheduleType, eventPattern: JsonObject | null | undefined): void {
  if (eventPattern !== undefined && eventPattern !== null && scheduleType !== "event") {
    throw new ScheduleInputError("event_pattern", `only event triggers have one (this is a ${scheduleType} trigger)`);
  }
}

/** A random API-trigger token (128 bits, hex), like Mage's uuid4().hex. */
export function newToken(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Creates a schedule after checking it; an active one counts as enabled now. */
export async function createSchedule(store: Store, project: Project, input: ScheduleInput): Promise<PipelineSchedule> {
  if (typeof input.name !== "string" || !input.name.trim()) throw new ScheduleInputError("name", "expected a non-empty name");
  if (!project.pipelines.has(input.pipelineUuid)) throw new ScheduleInputError("pipeline_uuid", `no pipeline ${input.pipelineUuid} in the project`);
  checkTiming(input);
  if (input.scheduleType === "time" && !input.scheduleInterval) throw new ScheduleInputError("schedule_interval", "a time trigger needs one");
  checkPatternType(input.scheduleType, input.eventPattern);
  const created = await store.createPipelineSchedule({
    ...input,
    // api and event triggers are called from outside with their own token
    token: input.token ?? (input.scheduleType === "api" || input.scheduleType === "event" ? newToken() : null),
  });
  // the scheduler evaluates it at its next tick
  return (await schedules.updatePipelineSchedule(store.client, created.id, { nextRunAt: store.clock.now() }, store.clock.now())) ?? created;
}

export interface ScheduleUpdate extends Partial<Omit<ScheduleInput, "pipelineUuid">> {
  /** A new random token (API triggers). */
  rotateToken?: boolean;
}

/**
 * Updates a schedule; activating it sets last_enabled_at, so it does not fire for past dates.
 * With `code`, a schedule defined in triggers.yaml is changed in that file first (see
 * code-triggers.ts), so the sync keeps the change; without it, the sync reverts such an edit.
 */
export async function updateSchedule(store: Store, id: number, update: ScheduleUpdate, code?: CodeTriggerAccess): Promise<PipelineSchedule> {
  const current = await store.getPipelineSchedule(id);
  if (!current) throw new ScheduleInputError("id", `no pipeline schedule ${id}`, "not_found");
  if (update.name !== undefined && !update.name.trim()) throw new ScheduleInputError("name", "expected a non-empty name");
  checkTiming(update);
  checkPatternType(update.scheduleType ?? current.scheduleType, update.eventPattern);
  const now = store.clock.now();
  // the file first: if the database write then fails, the sync applies the file's change anyway
  if (code) await writeBackCodeTrigger(store, id, update, code, now);
  const activating = update.status === "active" && current.status !== "active";
  // an @once that ran fires again only for a new start_time (a second activation alone does not)
  const interval = update.scheduleInterval !== undefined ? update.scheduleInterval : current.scheduleInterval;
  const rearm = interval === "@once" && (update.startTime !== undefined && update.startTime !== current.startTime || current.scheduleInterval !== "@once");
  const { rotateToken, token, ...fields } = update;
  const newTokenValue = rotateToken ? newToken() : token;
  const updated = await schedules.updatePipelineSchedule(
    store.client,
    id,
    {
      ...fields,
      ...(newTokenValue !== undefined ? { sealedToken: newTokenValue === null ? null : await store.sealTriggerToken(newTokenValue) } : {}),
      ...(activating ? { lastEnabledAt: now } : {}),
      ...(rearm ? { lastExecutionDate: null } : {}),
      nextRunAt: now,
    },
    now,
  );
  if (!updated) throw new ScheduleInputError("id", `no pipeline schedule ${id}`, "not_found");
  return updated;
}

/** Deletes a schedule; its runs stay. */
export function deleteSchedule(store: Store, id: number): Promise<boolean> {
  return schedules.deletePipelineSchedule(store.client, id);
}

/** Active schedules, of the given pipelines or all. */
export function activeSchedules(store: Store, pipelineUuids?: readonly string[]): Promise<PipelineSchedule[]> {
  return schedules.activeSchedules(store.client, pipelineUuids);
}

/** A schedule's runs, newest first, a page at a time. */
export function pipelineRuns(store: Store, scheduleId: number, page: { limit?: number; after?: string | null } = {}): Promise<Page<PipelineRun>> {
  return store.listPipelineRuns({ pipelineScheduleId: scheduleId }, page);
}

/** The schedule's most recently completed runs (by execution date), newest first. */
export function recentlyCompletedPipelineRuns(store: Store, scheduleId: number, sampleSize = 20): Promise<PipelineRun[]> {
  return pipelineRunReads.recentlyCompletedRuns(store.client, scheduleId, sampleSize);
}

/** Mean runtime in seconds of the recent completed runs, or null with none. */
export async function runtimeAverage(store: Store, scheduleId: number, sampleSize = 20): Promise<number | null> {
  const runs = await recentlyCompletedPipelineRuns(store, scheduleId, sampleSize);
  const runtimes = runs.filter((r) => r.startedAt !== null && r.completedAt !== null).map((r) => ((r.completedAt as number) - (r.startedAt as number)) / 1000);
  return runtimes.length === 0 ? null : runtimes.reduce((a, b) => a + b, 0) / runtimes.length;
}

/** Status of the schedule's latest run (by execution date), or null with none. */
export function lastPipelineRunStatus(store: Store, scheduleId: number): Promise<PipelineRunStatus | null> {
  return pipelineRunReads.latestRunStatus(store.client, scheduleId);
}

/** How many of the schedule's runs are initial or running. */
export function pipelineInProgressRunsCount(store: Store, scheduleId: number): Promise<number> {
  return pipelineRunReads.liveRunCount(store.client, scheduleId);
}

/**
 * Creates a run of a schedule now (Mage's PipelineRun.create): its variables override the
 * schedule's; it starts when the scheduler next finds it within the limits. The schedule by id,
 * or as the caller just read it (the API trigger route: no second read).
 */
export async function createRunForSchedule(
  store: Store,
  scheduleOrId: number | PipelineSchedule,
  options: { variables?: JsonObject; executionDate?: number; event?: JsonObject | null } = {},
): Promise<PipelineRun> {
  if (options.executionDate !== undefined && !isInstant(options.executionDate)) throw new ScheduleInputError("execution_date", `expected a time ${INSTANT_RANGE}`);
  const schedule = typeof scheduleOrId === "number" ? await store.getPipelineSchedule(scheduleOrId) : scheduleOrId;
  if (!schedule) throw new ScheduleInputError("pipeline_schedule_id", `no pipeline schedule ${scheduleOrId}`, "not_found");
  // the run itself comes to be where every run does (runs/create.ts)
  const run = await createTriggeredRun(store, schedule, options);
  if (!run) throw new ScheduleInputError("execution_date", "a run of this schedule exists for that date", "conflict");
  return run;
}

/** When a time schedule next fires after `now` (Mage's next_pipeline_run_date); null for others or when invalid. */
export function nextPipelineRunDate(schedule: PipelineSchedule, now: number): number | null {
  if (schedule.scheduleType !== "time" || !schedule.scheduleInterval || schedule.scheduleInterval === "@always_on") return null;
  try {
    const settings = schedulingSettings(schedule.settings as JsonObject);
    const spec = scheduleSpec({
      interval: schedule.scheduleInterval,
      timezone: schedule.timezone,
      startTime: schedule.startTime,
      dstGap: settings.dstGap,
      dstOverlap: settings.dstOverlap,
      landingTime: settings.landingTimeEnabled,
    });
    return nextOccurrence(spec, now);
  } catch {
    return null;
  }
}
