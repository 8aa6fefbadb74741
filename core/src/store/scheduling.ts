/** Store operations the scheduler's tick uses: due schedules, live runs, heartbeats, orphans. */
import type { InValue } from "@libsql/client";
import { type JsonObject, type PipelineRun, type PipelineSchedule } from "../domain.ts";
import { pipelineRunFromRow, pipelineScheduleFromRow } from "./rows.ts";
import type { SqlClient } from "./sql-client.ts";
import type { TriggerConfig } from "../project/types.ts";
import { toJson } from "./json.ts";
import type { SealedToken } from "../trigger-tokens.ts";

/** A schedule as the scheduler needs it: the row plus its scheduling bookkeeping. */
export interface ScheduleState extends PipelineSchedule {
  source: "code" | "api";
  invalidReason: string | null;
  nextRunAt: number | null;
  lastExecutionDate: number | null;
  /** The digest of the sealed token (null: none, or not sealed yet), to tell whether triggers.yaml changed it. */
  tokenDigest: string | null;
}

function scheduleStateFromRow(r: Record<string, unknown>): ScheduleState {
  const base = pipelineScheduleFromRow(r as never);
  return {
    ...base,
    source: r.source === "code" ? "code" : "api",
    invalidReason: r.invalid_reason === null || r.invalid_reason === undefined ? null : String(r.invalid_reason),
    nextRunAt: r.next_run_at === null || r.next_run_at === undefined ? null : Number(r.next_run_at),
    lastExecutionDate: r.last_execution_date === null || r.last_execution_date === undefined ? null : Number(r.last_execution_date),
    tokenDigest: r.token_digest === null || r.token_digest === undefined ? null : String(r.token_digest),
  };
}

/**
 * Active schedules due at `now` (next_run_at reached), soonest first: what one tick works on.
 * With `shards`, only the schedules whose id falls in one of them (id mod count).
 */
export async function dueSchedules(client: SqlClient, now: number, limit: number, shards?: { count: number; held: readonly number[] }): Promise<ScheduleState[]> {
  if (shards && shards.held.length === 0) return [];
  const shardFilter = shards ? ` AND (id % ${Math.trunc(shards.count)}) IN (${shards.held.map((s) => Math.trunc(s)).join(", ")})` : "";
  const rs = await client.execute({
    sql: `SELECT * FROM pipeline_schedules WHERE status = 'active' AND next_run_at <= ?${shardFilter} ORDER BY next_run_at LIMIT ?`,
    args: [now, limit],
  });
  return rs.rows.map((r) => scheduleStateFromRow(r));
}

/** Every schedule that came from triggers.yaml, for the sync. */
export async function codeSchedules(client: SqlClient): Promise<ScheduleState[]> {
  const rs = await client.execute("SELECT * FROM pipeline_schedules WHERE source = 'code'");
  return rs.rows.map((r) => scheduleStateFromRow(r));
}

/** One schedule with its bookkeeping, or null. */
export async function scheduleState(client: SqlClient, id: number): Promise<ScheduleState | null> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE id = ?", args: [id] });
  return rs.rows[0] ? scheduleStateFromRow(rs.rows[0]) : null;
}

/** A triggers.yaml entry as the sync writes it: the loaded trigger, of a pipeline, its token sealed (null: keep the row's). */
export type CodeTrigger = Omit<TriggerConfig, "envs" | "lastEnabledAt" | "settings" | "token"> & { pipelineUuid: string; settings: JsonObject; sealedToken: SealedToken | null };

/**
 * Inserts or updates a schedule from triggers.yaml; `nextRunAt` set means "evaluate it now";
 * `rearm` forgets how far it got (an @once whose start_time changed fires again).
 */
export function upsertCodeTriggerStatement(t: CodeTrigger, now: number, lastEnabledAt: number | null, nextRunAt: number | null, rearm = false) {
  return {
    sql: `INSERT INTO pipeline_schedules (name, pipeline_uuid, schedule_type, schedule_interval, start_time, timezone, status,
            variables, sla, token_sealed, token_digest, settings, description, event_pattern, last_enabled_at, next_run_at, tags, source, invalid_reason, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'code', NULL, ?, ?)
          ON CONFLICT (pipeline_uuid, name) DO UPDATE SET
            schedule_type = excluded.schedule_type, schedule_interval = excluded.schedule_interval,
            start_time = excluded.start_time, timezone = excluded.timezone, status = excluded.status,
            variables = excluded.variables, sla = excluded.sla,
            token = CASE WHEN excluded.token_sealed IS NULL THEN pipeline_schedules.token ELSE NULL END,
            token_sealed = coalesce(excluded.token_sealed, pipeline_schedules.token_sealed),
            token_digest = coalesce(excluded.token_digest, pipeline_schedules.token_digest),
            settings = excluded.settings, description = excluded.description, event_pattern = excluded.event_pattern, tags = excluded.tags,
            last_enabled_at = coalesce(excluded.last_enabled_at, pipeline_schedules.last_enabled_at),
            next_run_at = coalesce(excluded.next_run_at, pipeline_schedules.next_run_at),
            last_execution_date = CASE WHEN ${rearm ? 1 : 0} THEN NULL ELSE pipeline_schedules.last_execution_date END,
            source = 'code', updated_at = excluded.updated_at,
            invalid_reason = CASE WHEN excluded.next_run_at IS NULL THEN pipeline_schedules.invalid_reason ELSE NULL END`,
    args: [
      t.name,
      t.pipelineUuid,
      t.scheduleType,
      t.scheduleInterval,
      t.startTime,
      t.timezone,
      t.status,
      toJson(t.variables),
      t.sla,
      t.sealedToken?.sealed ?? null,
      t.sealedToken?.digest ?? null,
      toJson(t.settings),
      t.description,
      t.eventPattern ? JSON.stringify(t.eventPattern) : null,
      lastEnabledAt,
      nextRunAt,
      JSON.stringify(t.tags),
      now,
      now,
    ] as InValue[],
  };
}

/**
 * Mage's rule for @once: the trigger becomes inactive once its run has ended. Returns the ids
 * switched off. A spent @once switched on again is switched off here again (it does not refire).
 */
export async function deactivateSpentOnceTriggers(client: SqlClient, now: number): Promise<number[]> {
  const rs = await client.execute({
    sql: `UPDATE pipeline_schedules SET status = 'inactive', next_run_at = NULL, updated_at = ?
          WHERE status = 'active' AND schedule_interval = '@once' AND last_execution_date IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM pipeline_runs r WHERE r.pipeline_schedule_id = pipeline_schedules.id AND r.status IN ('initial', 'running'))
          RETURNING id`,
    args: [now],
  });
  return rs.rows.map((r) => Number(r.id));
}

/** Records what a tick decided for a schedule: when to look again, how far it has got, or why it cannot run. */
export function scheduleProgressStatement(id: number, nextRunAt: number | null, lastExecutionDate: number | null, invalidReason: string | null, now: number) {
  return {
    sql: `UPDATE pipeline_schedules SET next_run_at = ?, invalid_reason = ?, updated_at = ?,
            last_execution_date = coalesce(max(last_execution_date, ?), last_execution_date, ?)
          WHERE id = ?`,
    // null means "no new date": it must stay null on a trigger that has never run (@once, first runs)
    args: [nextRunAt, invalidReason, now, lastExecutionDate, lastExecutionDate, id] as InValue[],
  };
}

/** Runs of a schedule that are initial or running, oldest first. */
export async function liveRunsOfSchedule(client: SqlClient, scheduleId: number): Promise<PipelineRun[]> {
  const rs = await client.execute({
    sql: "SELECT * FROM pipeline_runs WHERE pipeline_schedule_id = ? AND status IN ('initial', 'running') ORDER BY id",
    args: [scheduleId],
  });
  return rs.rows.map(pipelineRunFromRow);
}

/** Runtimes (ms) of a schedule's most recent completed runs, newest first (landing time). */
export async function recentRuntimes(client: SqlClient, scheduleId: number, sampleSize: number): Promise<number[]> {
  const rs = await client.execute({
    sql: `SELECT completed_at - started_at AS runtime FROM pipeline_runs
          WHERE pipeline_schedule_id = ? AND status = 'completed' AND started_at IS NOT NULL AND completed_at IS NOT NULL
          ORDER BY execution_date DESC LIMIT ?`,
    args: [scheduleId, sampleSize],
  });
  return rs.rows.map((r) => Number(r.runtime));
}

/** Initial runs in creation order: the queue the scheduler starts from, within the limits. */
export async function initialRuns(client: SqlClient, limit: number): Promise<PipelineRun[]> {
  // backfill runs are picked per backfill (backfillRunsToStart): thousands of them waiting on
  // max_concurrent_runs must not fill this window and starve every other run
  const rs = await client.execute({
    sql: "SELECT * FROM pipeline_runs WHERE status = 'initial' AND backfill_id IS NULL ORDER BY id LIMIT ?",
    args: [limit],
  });
  return rs.rows.map(pipelineRunFromRow);
}

/** Runs by id, in id order. */
export async function runsByIds(client: SqlClient, ids: readonly number[]): Promise<PipelineRun[]> {
  if (ids.length === 0) return [];
  const rs = await client.execute({ sql: `SELECT * FROM pipeline_runs WHERE id IN (${ids.map(() => "?").join(", ")}) ORDER BY id`, args: [...ids] });
  return rs.rows.map(pipelineRunFromRow);
}

export interface RunningCounts {
  bySchedule: Map<number, number>;
  byPipeline: Map<string, number>;
}

/** How many runs are running, per schedule and pipeline (the concurrency limits). */
export async function runningCounts(client: SqlClient): Promise<RunningCounts> {
  const rs = await client.execute(
    "SELECT pipeline_schedule_id, pipeline_uuid, count(*) AS n FROM pipeline_runs WHERE status = 'running' GROUP BY 1, 2",
  );
  const counts: RunningCounts = { bySchedule: new Map(), byPipeline: new Map() };
  const add = <K>(map: Map<K, number>, key: K, n: number) => map.set(key, (map.get(key) ?? 0) + n);
  for (const r of rs.rows) {
    const n = Number(r.n);
    add(counts.byPipeline, String(r.pipeline_uuid), n);
    if (r.pipeline_schedule_id !== null) add(counts.bySchedule, Number(r.pipeline_schedule_id), n);
  }
  return counts;
}

/** Records that a scheduler process is alive: its beat count goes up by one. */
export async function heartbeat(client: SqlClient, id: string, host: string, pid: number | null, now: number): Promise<void> {
  await client.execute({
    sql: `INSERT INTO schedulers (id, host, pid, started_at, heartbeat_at, beats) VALUES (?, ?, ?, ?, ?, 1)
          ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, beats = beats + 1`,
    args: [id, host, pid, now, now],
  });
}

/** Every registered scheduler and its beat count. */
export async function schedulerBeats(client: SqlClient): Promise<Map<string, number>> {
  const rs = await client.execute("SELECT id, beats FROM schedulers");
  return new Map(rs.rows.map((r) => [String(r.id), Number(r.beats)]));
}

/** Removes a scheduler's heartbeat (a clean shutdown), so its runs are taken over at once. */
export async function removeScheduler(client: SqlClient, id: string): Promise<void> {
  await client.execute({ sql: "DELETE FROM schedulers WHERE id = ?", args: [id] });
}

/**
 * Running runs to take over: with no owner, owned by one of `deadOwners`, or by a scheduler with
 * no heartbeat row (it stopped cleanly, removing it). The row is looked up by this query, so a
 * scheduler that registered since the caller read the heartbeats keeps its runs.
 */
export async function orphanedRuns(client: SqlClient, deadOwners: Iterable<string>, limit: number): Promise<PipelineRun[]> {
  const rs = await client.execute({
    sql: `SELECT * FROM pipeline_runs
          WHERE status = 'running'
            AND (owner IS NULL OR owner IN (SELECT value FROM json_each(?)) OR owner NOT IN (SELECT id FROM schedulers))
          ORDER BY id LIMIT ?`,
    args: [JSON.stringify([...deadOwners]), limit],
  });
  return rs.rows.map(pipelineRunFromRow);
}

/**
 * Running runs owned by `owner`: a scheduler resumes those its engine is not driving (it let go
 * of them, e.g. after a freeze, and no other scheduler took them over).
 */
export async function runsOwnedBy(client: SqlClient, owner: string, limit: number): Promise<PipelineRun[]> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_runs WHERE status = 'running' AND owner = ? ORDER BY id LIMIT ?", args: [owner, limit] });
  return rs.rows.map(pipelineRunFromRow);
}

/** Live runs past their SLA that have not been flagged yet. */
export async function runsPastSla(client: SqlClient, now: number, limit: number): Promise<Array<PipelineRun & { sla: number }>> {
  const rs = await client.execute({
    sql: `SELECT pr.*, ps.sla AS schedule_sla FROM pipeline_runs pr JOIN pipeline_schedules ps ON ps.id = pr.pipeline_schedule_id
          WHERE pr.status IN ('initial', 'running') AND pr.passed_sla = 0 AND ps.sla IS NOT NULL
            AND pr.execution_date + ps.sla * 1000 < ? LIMIT ?`,
    args: [now, limit],
  });
  return rs.rows.map((r) => ({ ...pipelineRunFromRow(r), sla: Number(r.schedule_sla) }));
}

/** When the soonest active trigger is due (epoch ms), or null with none: how long the scheduler may sleep. */
export async function earliestNextRunAt(client: SqlClient): Promise<number | null> {
  const rs = await client.execute("SELECT min(next_run_at) AS next FROM pipeline_schedules WHERE status = 'active'");
  const next = rs.rows[0]?.next;
  return next === null || next === undefined ? null : Number(next);
}

/** Switches a code trigger off (its entry left triggers.yaml). */
export function deactivateScheduleStatement(id: number, now: number) {
  return { sql: "UPDATE pipeline_schedules SET status = 'inactive', updated_at = ? WHERE id = ?", args: [now, id] as InValue[] };
}
