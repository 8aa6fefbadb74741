/**
 * Backfills, the programmatic API the CLI, the server and the scheduler use: create, start,
 * cancel, retry failed runs, settle, status, and which runs may start now.
 *
 * Every status change is a guarded write in a WriteBatch, and the runs a start or retry creates
 * commit in the same batch as the guard, so two processes racing to start (or retry) one
 * backfill create its runs once: the loser's batch rolls back whole.
 */
import {
  BACKFILL_STATUSES,
  INTERVAL_TYPES,
  type Backfill,
  type BackfillStatus,
  type IntervalType,
  type JsonObject,
  type PipelineRunStatus,
} from "../domain.ts";
import { INSTANT_RANGE, isInstant, nameProblem } from "../bounds.ts";
import type { Project } from "../project/types.ts";
import { KilnError } from "../errors.ts";
import { IllegalTransitionError } from "../state-machine.ts";
import type { Store } from "../store/index.ts";
import * as backfills from "../store/backfills.ts";
import type { BackfillFilter, BackfillRecord, BackfillUpdate } from "../store/backfills.ts";
import type { Page, PageRequest } from "../store/page.ts";
import { addBackfillRuns } from "../runs/create.ts";
import { backfillExecutionDates, countBackfillExecutionDates, MAX_BACKFILL_DATES } from "./dates.ts";

export interface BackfillInput {
  name: string;
  pipelineUuid: string;
  /** A trigger of the same pipeline the backfill belongs to (informational; its runs have no schedule). */
  pipelineScheduleId?: number | null;
  /** Epoch ms, or ISO 8601: a date (`2024-01-31`, UTC midnight) or a date-time with `Z` or an offset. */
  startDatetime: number | string;
  /** Inclusive: a date landing exactly on it gets a run. Same forms as startDatetime. */
  endDatetime: number | string;
  intervalType: IntervalType;
  /** Default 1. */
  intervalUnits?: number;
  variables?: JsonObject;
  /** Run only this block of the pipeline in each run. */
  blockUuid?: string | null;
  /** At most this many of the backfill's runs at once; null or absent for no limit of its own. */
  maxConcurrentRuns?: number | null;
}

export interface BackfillStatusReport {
  backfill: BackfillRecord;
  /** Runs per status, each execution date counted once, by its latest run. */
  counts: Record<PipelineRunStatus, number>;
  /** How many execution dates the backfill covers (known before it starts). */
  totalDates: number;
}

/** A backfill that settleBackfills finished. */
export interface SettledBackfill {
  id: number;
  status: "completed" | "failed";
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

function parseTime(value: unknown, field: string): number {
  if (typeof value === "number") {
    if (!isInstant(value)) throw new KilnError("invalid_input", `${field} must be a time ${INSTANT_RANGE} in whole epoch milliseconds, got ${value}`, field);
    return value;
  }
  if (typeof value === "string") {
    // a date-time without an offset would be read in the process's local zone: refuse it
    let ms = DATE_ONLY.test(value) || WITH_OFFSET.test(value) ? Date.parse(value.replace(" ", "T")) : Number.NaN;
    // Date.parse rolls 2024-02-30 over to March 1st; a day the month lacks is a typo, not a date
    const [y, m, d] = value.slice(0, 10).split("-").map(Number);
    if (new Date(Date.UTC(y!, m!, 0)).getUTCDate() < d!) ms = Number.NaN;
    if (Number.isNaN(ms)) throw new KilnError("invalid_input", `${field} must be an ISO 8601 date or a date-time with an offset (e.g. 2024-01-31T00:00:00Z), got ${JSON.stringify(value)}`, field);
    if (!isInstant(ms)) throw new KilnError("invalid_input", `${field} must be a time ${INSTANT_RANGE}, got ${JSON.stringify(value)}`, field);
    return ms;
  }
  throw new KilnError("invalid_input", `${field} is required`, field);
}

function notFound(id: number): KilnError {
  return new KilnError("not_found", `backfill ${id} does not exist`, "id");
}

async function load(store: Store, id: number): Promise<BackfillRecord> {
  const b = await backfills.getBackfill(store.client, id);
  if (!b) throw notFound(id);
  return b;
}

/** A backfill request that passed checkBackfillInput: times as epoch ms, defaults filled in. */
export type CheckedBackfillInput = Pick<
  Backfill,
  "name" | "pipelineUuid" | "pipelineScheduleId" | "startDatetime" | "endDatetime" | "intervalType" | "intervalUnits" | "variables" | "blockUuid" | "maxConcurrentRuns"
> & {
  /** How many execution dates the backfill covers (at most MAX_BACKFILL_DATES). */
  count: number;
};

/**
 * Checks a backfill request against the project (everything but its trigger, which needs the
 * database): the API, the CLI and the UI's preview and form all go through it. Throws a
 * KilnError (invalid_input) naming the field.
 */
export function checkBackfillInput(project: Project, input: BackfillInput): CheckedBackfillInput {
  if (typeof input.name !== "string" || input.name.trim() === "") throw new KilnError("invalid_input", "name must be a non-empty string", "name");
  const nameIssue = nameProblem(input.name);
  if (nameIssue) throw new KilnError("invalid_input", `name ${nameIssue}`, "name");
  const pipeline = typeof input.pipelineUuid === "string" ? project.pipelines.get(input.pipelineUuid) : undefined;
  if (!pipeline) throw new KilnError("invalid_input", `pipeline_uuid: the project has no pipeline ${JSON.stringify(input.pipelineUuid)}`, "pipeline_uuid");
  const blockUuid = input.blockUuid ?? null;
  if (blockUuid !== null && (typeof blockUuid !== "string" || !pipeline.blocksByUuid.has(blockUuid))) {
    throw new KilnError("invalid_input", `block_uuid: pipeline ${pipeline.uuid} has no block ${JSON.stringify(blockUuid)}`, "block_uuid");
  }
  const scheduleId = input.pipelineScheduleId ?? null;
  if (scheduleId !== null && !Number.isSafeInteger(scheduleId)) {
    throw new KilnError("invalid_input", `pipeline_schedule_id must be an integer id, got ${scheduleId}`, "pipeline_schedule_id");
  }
  if (!INTERVAL_TYPES.includes(input.intervalType)) {
    throw new KilnError("invalid_input", `interval_type must be one of ${INTERVAL_TYPES.join(", ")}, got ${JSON.stringify(input.intervalType)}`, "interval_type");
  }
  const intervalUnits = input.intervalUnits ?? 1;
  if (!Number.isSafeInteger(intervalUnits) || intervalUnits < 1) {
    throw new KilnError("invalid_input", `interval_units must be a positive integer, got ${JSON.stringify(intervalUnits)}`, "interval_units");
  }
  const startDatetime = parseTime(input.startDatetime, "start_datetime");
  const endDatetime = parseTime(input.endDatetime, "end_datetime");
  if (endDatetime < startDatetime) {
    const detail = `is before start_datetime ${new Date(startDatetime).toISOString()}`;
    throw new KilnError("invalid_input", `end_datetime ${new Date(endDatetime).toISOString()} ${detail}`, "end_datetime", detail);
  }
  const range = { startDatetime, endDatetime, intervalType: input.intervalType, intervalUnits };
  const count = countBackfillExecutionDates(range);
  if (count > MAX_BACKFILL_DATES) {
    throw new KilnError(
      "invalid_input",
      `end_datetime: the backfill would have ${count} execution dates, more than the limit of ${MAX_BACKFILL_DATES}; narrow the range or raise interval_units`,
      "end_datetime",
    );
  }
  const maxConcurrentRuns = input.maxConcurrentRuns ?? null;
  if (maxConcurrentRuns !== null && (!Number.isSafeInteger(maxConcurrentRuns) || maxConcurrentRuns < 1)) {
    throw new KilnError("invalid_input", `max_concurrent_runs must be a positive integer or null, got ${JSON.stringify(maxConcurrentRuns)}`, "max_concurrent_runs");
  }
  const variables = input.variables ?? {};
  if (typeof variables !== "object" || variables === null || Array.isArray(variables)) {
    throw new KilnError("invalid_input", "variables must be an object", "variables");
  }
  return { name: input.name.trim(), pipelineUuid: pipeline.uuid, pipelineScheduleId: scheduleId, ...range, variables, blockUuid, maxConcurrentRuns, count };
}

/** Validates a backfill request against the project and the database, and stores it in status initial. */
export async function createBackfill(store: Store, project: Project, input: BackfillInput): Promise<BackfillRecord> {
  const checked = checkBackfillInput(project, input);
  const scheduleId = checked.pipelineScheduleId;
  if (scheduleId !== null) {
    const schedule = await store.getPipelineSchedule(scheduleId);
    if (!schedule) throw new KilnError("invalid_input", `pipeline_schedule_id: trigger ${scheduleId} does not exist`, "pipeline_schedule_id");
    if (schedule.pipelineUuid !== checked.pipelineUuid) {
      throw new KilnError("invalid_input", `pipeline_schedule_id: trigger ${scheduleId} belongs to pipeline ${schedule.pipelineUuid}, not ${checked.pipelineUuid}`, "pipeline_schedule_id");
    }
  }
  return backfills.insertBackfill(store.client, checked, store.clock.now());
}

/** Newest-first backfills matching the filter, a page at a time. */
export function listBackfills(store: Store, filter: BackfillFilter = {}, page: PageRequest = {}): Promise<Page<BackfillRecord>> {
  return backfills.listBackfills(store.client, filter, page);
}

/** How many backfills match the filter (Mage's metadata.count). */
export function countBackfills(store: Store, filter: BackfillFilter = {}): Promise<number> {
  return backfills.countBackfills(store.client, filter);
}

/**
 * Changes a backfill's name, variables or max_concurrent_runs; only an initial backfill can
 * change (its runs are made from them at start), anything else is a conflict.
 */
export async function updateBackfill(store: Store, id: number, update: BackfillUpdate): Promise<BackfillRecord> {
  if (update.name !== undefined && (typeof update.name !== "string" || update.name.trim() === "")) throw new KilnError("invalid_input", "name must be a non-empty string", "name");
  const nameIssue = update.name === undefined ? null : nameProblem(update.name);
  if (nameIssue) throw new KilnError("invalid_input", `name ${nameIssue}`, "name");
  const limit = update.maxConcurrentRuns;
  if (limit !== undefined && limit !== null && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new KilnError("invalid_input", `max_concurrent_runs must be a positive integer or null, got ${JSON.stringify(limit)}`, "max_concurrent_runs");
  }
  if (update.variables !== undefined && (typeof update.variables !== "object" || update.variables === null || Array.isArray(update.variables))) {
    throw new KilnError("invalid_input", "variables must be an object", "variables");
  }
  const fields: BackfillUpdate = { ...update, ...(update.name !== undefined ? { name: update.name.trim() } : {}) };
  const updated = await backfills.updateInitialBackfill(store.client, id, fields, store.clock.now());
  if (updated) return updated;
  const current = await load(store, id);
  throw new KilnError("conflict", `backfill ${id} is ${current.status}: only an initial backfill can be changed`, "status");
}

/**
 * Deletes a backfill that is not running (cancel it first); its runs stay, with no backfill.
 * Returns the backfill as it was.
 */
export async function deleteBackfill(store: Store, id: number): Promise<BackfillRecord> {
  const backfill = await load(store, id);
  if (backfill.status === "running") throw new KilnError("conflict", `backfill ${id} is running: cancel it before deleting it`, "status");
  const batch = store.batch();
  batch.deleteBackfill(id, backfill.status);
  try {
    await store.commit(batch);
  } catch (error) {
    if (error instanceof IllegalTransitionError) {
      if (error.actual === "missing") throw notFound(id);
      throw new KilnError("conflict", `backfill ${id} is ${error.actual ?? "changed"}: cancel it before deleting it`, "status");
    }
    throw error;
  }
  return backfill;
}

/** How many runs a start stages per batch: a batch this size commits in a few milliseconds, so a 100,000-date start never holds the event loop for long. */
export const BACKFILL_START_CHUNK = 400;

/** Lets timers and I/O run (a macrotask, not a microtask) between two batches of a start. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Starts an initial backfill: creates one initial run per execution date (partition
 * `backfill_<id>/<YYYYMMDDTHHMMSS>`) and moves it to running. The runs are staged in batches of
 * BACKFILL_START_CHUNK while the backfill stays initial (the scheduler starts only runs of
 * running backfills), yielding to the event loop between them; each batch is guarded on the
 * backfill being initial and unchanged, and inserts a date only once. The last batch moves it to
 * running if every date has its run: of two concurrent starts one wins, the other rejects with
 * IllegalTransitionError; a start interrupted midway leaves an initial backfill that a later start
 * completes (a delete removes the staged runs, an update gives them its variables).
 */
export async function startBackfill(store: Store, id: number): Promise<{ backfill: BackfillRecord; runsCreated: number; totalDates: number }> {
  const backfill = await load(store, id);
  // fail fast (before listing dates) on a backfill that is plainly not startable; the guards below settle races
  if (backfill.status !== "initial") throw new IllegalTransitionError("backfill", `backfill ${id}`, "initial", "running", backfill.status);
  const dates = backfillExecutionDates(backfill);
  let runsCreated = 0;
  for (let start = 0; start < dates.length; start += BACKFILL_START_CHUNK) {
    if (start > 0) await yieldToEventLoop();
    const batch = store.batch();
    batch.requireBackfillUnchangedInitial(id, backfill.updatedAt);
    const inserts = addBackfillRuns(
      batch,
      backfill,
      dates.slice(start, start + BACKFILL_START_CHUNK).map((d) => ({ executionDate: d, supersedes: 0 })),
    );
    const results = await store.commit(batch);
    runsCreated += inserts.reduce((n, i) => n + (results[i]?.rows.length ?? 0), 0);
  }
  await yieldToEventLoop();
  const batch = store.batch();
  batch.requireBackfillRunCount(id, dates.length);
  // the staged runs may start once the backfill is running
  batch.transitionBackfill(id, "initial", "running", { startedAt: batch.now }).announceRuns();
  await store.commit(batch);
  return { backfill: { ...backfill, status: "running", startedAt: batch.now, updatedAt: batch.now }, runsCreated, totalDates: dates.length };
}

/**
 * Cancels an initial or running backfill and every initial or running run of it, and the live
 * block runs of its running runs, in one batch. Returns the ids of the runs it cancelled (a
 * process executing one of them in an engine may stop it now; any engine notices at its next
 * write).
 */
export async function cancelBackfill(store: Store, id: number): Promise<{ backfill: BackfillRecord; cancelledRunIds: number[] }> {
  const backfill = await load(store, id);
  const from = backfill.status;
  if (from !== "initial" && from !== "running") throw new IllegalTransitionError("backfill", `backfill ${id}`, from, "cancelled");
  const running = await backfills.runningBackfillRunIds(store.client, id);
  const batch = store.batch();
  batch.transitionBackfill(id, from, "cancelled", { completedAt: batch.now });
  // An initial run has no block runs (the engine creates them with the move to running); a run
  // that starts between the read above and this commit finds itself cancelled at its next write.
  for (const runId of running) batch.cancelLiveBlockRuns(runId, `backfill ${id} was cancelled`);
  // one statement for all runs, whatever their status at commit time: per-run guarded moves
  // would make the whole cancel fail whenever one run finished meanwhile
  const cancel = batch.cancelBackfillRuns(id);
  const results = await store.commit(batch);
  const cancelledRunIds = (results[cancel]?.rows ?? []).map((r) => Number(r.id)).sort((a, b) => a - b);
  return { backfill: { ...backfill, status: "cancelled", completedAt: batch.now, updatedAt: batch.now }, cancelledRunIds };
}

/**
 * Creates a new initial run for each execution date whose latest run failed or was cancelled,
 * moving a failed backfill back to running (a running one stays running). The new run uses
 * the date's partition, so its outputs replace the failed ones. Returns how many runs it created.
 */
export async function retryFailedBackfillRuns(store: Store, id: number): Promise<number> {
  // a settle or another retry may move the backfill between our read and our commit: read again
  for (let attempt = 1; ; attempt++) {
    const backfill = await load(store, id);
    const from = backfill.status;
    if (from !== "failed" && from !== "running") {
      throw new IllegalTransitionError("backfill", `backfill ${id}`, from, "running");
    }
    const retry = await backfills.latestBackfillRunsIn(store.client, id, ["failed", "cancelled"]);
    if (retry.length === 0) return 0;
    const batch = store.batch().announceRuns();
    if (from === "failed") batch.transitionBackfill(id, "failed", "running", { completedAt: null });
    else batch.requireBackfillStatus(id, "running");
    // `supersedes` makes each insert a no-op if a concurrent retry already replaced that run
    const inserts = addBackfillRuns(
      batch,
      backfill,
      retry.map((r) => ({ executionDate: r.executionDate, executionPartition: r.executionPartition, supersedes: r.id })),
    );
    try {
      const results = await store.commit(batch);
      return inserts.reduce((n, i) => n + (results[i]?.rows.length ?? 0), 0);
    } catch (error) {
      const raced = error instanceof IllegalTransitionError && error.entity === "backfill" && (error.actual === "running" || error.actual === "failed");
      if (!raced || attempt >= 3) throw error;
    }
  }
}

/**
 * Finishes running backfills that have no initial or running run left: completed if every
 * date's latest run completed, failed otherwise. The scheduler calls it every tick; it costs one
 * query when there is nothing to settle. Returns what it settled.
 */
export async function settleBackfills(store: Store, now: number): Promise<SettledBackfill[]> {
  const candidates = await backfills.backfillsToSettle(store.client);
  const settled = await Promise.all(
    candidates.map(async ({ id, allCompleted }) => {
      const to: SettledBackfill["status"] = allCompleted ? "completed" : "failed";
      // one batch per backfill (the group committer still shares the transaction): a backfill
      // cancelled or retried meanwhile loses its own settle only
      const batch = store.batch();
      batch.requireNoLiveBackfillRuns(id, "running", to);
      batch.transitionBackfill(id, "running", to, { completedAt: now });
      try {
        await store.commit(batch);
        return { id, status: to } satisfies SettledBackfill;
      } catch (error) {
        if (error instanceof IllegalTransitionError) return null; // reconsidered next tick, if still running
        throw error;
      }
    }),
  );
  return settled.filter((s) => s !== null);
}

/** The backfill with its run counts per status (latest run per date) and its number of dates. */
export async function backfillStatus(store: Store, id: number): Promise<BackfillStatusReport> {
  const backfill = await load(store, id);
  const counts = await backfills.backfillRunCounts(store.client, id);
  return { backfill, counts, totalDates: countBackfillExecutionDates(backfill) };
}

/**
 * Ids of initial runs of running backfills that may start now, oldest first, at most `limit`,
 * within each backfill's max_concurrent_runs (its running runs count against it). Pipeline and
 * project limits are the caller's to apply on top.
 */
export function backfillRunsToStart(store: Store, limit: number): Promise<number[]> {
  return backfills.backfillRunsToStart(store.client, limit);
}

/** Whether a string is a backfill status (for parsing filters). */
export function isBackfillStatus(value: unknown): value is BackfillStatus {
  return typeof value === "string" && (BACKFILL_STATUSES as readonly string[]).includes(value);
}
