/** Store operations on pipeline runs. */
import type { InStatement, InValue } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";
import type { JsonObject, PipelineRun, PipelineRunStatus, PipelineSchedule } from "../domain.ts";
import { pipelineRunFromRow } from "./rows.ts";
import { toJson } from "./json.ts";
import { listPage, type Page, type PageRequest } from "./page.ts";
import { countedPipelineRuns } from "./counters.ts";

export type { Page, PageRequest } from "./page.ts";

export interface NewPipelineRun {
  pipelineUuid: string;
  pipelineScheduleId?: number | null;
  executionDate: number;
  variables?: JsonObject;
  event?: JsonObject | null;
  backfillId?: number | null;
  metrics?: JsonObject;
  /** Created through the API, an event, the UI or trigger_pipeline: Mage's partition for those (with microseconds). */
  triggered?: boolean;
  /** A triggered run whose executionDate is taken: at the millisecond after the trigger's latest run within this many ms of it (see PipelineRunRow). */
  afterLatestWithinMs?: number;
  /**
   * The run's trigger as the creator read it (the row of pipelineScheduleId): announced with the
   * run, so a co-located scheduler starts it without reading either again. Written nowhere.
   */
  schedule?: PipelineSchedule;
}

/** A pipeline_runs row to insert, its partition decided by the run creator (runs/create.ts). */
export interface PipelineRunRow {
  pipelineUuid: string;
  pipelineScheduleId: number | null;
  backfillId: number | null;
  executionDate: number;
  executionPartition: string;
  variables: JsonObject;
  event: JsonObject | null;
  metrics: JsonObject;
  /** Append `_<id>` to the partition once the id is known (a manual run's partition ends with it). */
  partitionEndsWithId?: boolean;
  /**
   * A triggered run whose executionDate is taken: the insert itself gives it the millisecond
   * after the trigger's latest run within `afterLatestWithinMs` of executionDate, and the
   * partition of that date (so runs of one trigger triggered in one millisecond each get their
   * own without trying the next millisecond one after another). executionPartition is then unused.
   */
  afterLatestWithinMs?: number;
}

/**
 * The partition of a triggered run whose execution date (epoch ms, after 1970, an INTEGER: a
 * bound JavaScript number is a REAL, which `||` would print as `1.0`) is the SQL expression
 * `date`: Mage's `<schedule>/%Y%m%dT%H%M%S_%f`, as triggeredExecutionPartition in domain.ts makes
 * it (a test holds the two to the same text).
 */
const triggeredPartitionSql = (scheduleId: string, date: string) =>
  `${scheduleId} || '/' || strftime('%Y%m%dT%H%M%S', ${date} / 1000, 'unixepoch') || '_' || printf('%06d', (${date} % 1000) * 1000)`;

/**
 * The columns a new run's insert writes, in the order of its values. The inserts that compute a
 * value (INSERT ... SELECT) end their SELECT with `WHERE true`: SQLite's upsert needs it to parse.
 */
const NEW_RUN_COLUMNS = "pipeline_schedule_id, pipeline_uuid, execution_date, execution_partition, variables, event, metrics, backfill_id, created_at, updated_at";

/** A new run's values after its trigger, pipeline, date and partition (variables to updated_at). */
function restOfNewRun(run: PipelineRunRow, now: number): InValue[] {
  return [toJson(run.variables), run.event ? toJson(run.event) : null, toJson(run.metrics), run.backfillId, now, now];
}

/**
 * The statements inserting a run in `initial`; the last one's rows are the new run. A run for a
 * (schedule, execution_date) that exists already is not created again (no rows then).
 */
export function insertPipelineRunStatements(run: PipelineRunRow, now: number): InStatement[] {
  if (run.afterLatestWithinMs !== undefined) return [insertAfterLatestStatement(run, run.afterLatestWithinMs, now)];
  const args: InValue[] = [run.pipelineScheduleId, run.pipelineUuid, run.executionDate, run.executionPartition, ...restOfNewRun(run, now)];
  if (run.partitionEndsWithId) {
    // a manual run (no trigger, so no unique key to meet) in one statement: the id AUTOINCREMENT
    // would give it, one past the largest the table ever had (sqlite_sequence, which AUTOINCREMENT
    // keeps in the same transaction), chosen in the insert and written into the partition with it
    return [
      {
        sql: `INSERT INTO pipeline_runs (id, ${NEW_RUN_COLUMNS})
              SELECT next.id, ?, ?, ?, ? || '_' || next.id, ?, ?, ?, ?, ?, ?
              FROM (SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'pipeline_runs'), 0) + 1 AS id) AS next
              WHERE true
              ON CONFLICT DO NOTHING RETURNING *`,
        args,
      },
    ];
  }
  return [{ sql: `INSERT INTO pipeline_runs (${NEW_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *`, args }];
}

/**
 * A triggered run at the millisecond after its trigger's latest run in [executionDate,
 * executionDate + withinMs), or at executionDate when there is none (a no-op, no rows, if that
 * millisecond is taken all the same: a run at executionDate + withinMs). Inserts committed before
 * it in the same transaction count, so each of many such inserts gets a millisecond of its own.
 */
function insertAfterLatestStatement(run: PipelineRunRow, withinMs: number, now: number): InStatement {
  const scheduleId = run.pipelineScheduleId;
  if (scheduleId === null) throw new Error("a run placed after its trigger's latest needs a trigger");
  return {
    sql: `INSERT INTO pipeline_runs (${NEW_RUN_COLUMNS})
          SELECT ?, ?, next.d, ${triggeredPartitionSql("CAST(? AS INTEGER)", "next.d")}, ?, ?, ?, ?, ?, ?
          FROM (SELECT CAST(coalesce((SELECT max(execution_date) FROM pipeline_runs WHERE pipeline_schedule_id = ? AND execution_date >= ? AND execution_date < ?), ? - 1) + 1 AS INTEGER) AS d) AS next
          WHERE true
          ON CONFLICT DO NOTHING RETURNING *`,
    args: [scheduleId, run.pipelineUuid, scheduleId, ...restOfNewRun(run, now), scheduleId, run.executionDate, run.executionDate + withinMs, run.executionDate] as InValue[],
  };
}

/**
 * The insert of a time trigger's run for a date, partitioned as given. A duplicate (schedule,
 * execution_date) is a no-op; its rows are the id and execution date of the run it created.
 */
export function insertScheduledRunStatement(run: { pipelineUuid: string; pipelineScheduleId: number; executionDate: number; executionPartition: string; variables?: JsonObject }, now: number): InStatement {
  return {
    sql: `INSERT INTO pipeline_runs (pipeline_schedule_id, pipeline_uuid, execution_date, execution_partition, variables,
            metrics, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, '{}', ?, ?) ON CONFLICT DO NOTHING RETURNING id, execution_date`,
    args: [run.pipelineScheduleId, run.pipelineUuid, run.executionDate, run.executionPartition, toJson(run.variables), now, now] as InValue[],
  };
}

/**
 * Records a date a policy passed over as a cancelled run whose error says why (Mage's
 * create-and-cancel), so the UI and API show the date was skipped, not forgotten. A no-op if the
 * date already has a run.
 */
export function insertSkippedRunStatement(run: { pipelineUuid: string; pipelineScheduleId: number; executionDate: number; executionPartition: string; reason: string }, now: number): InStatement {
  return {
    sql: `INSERT INTO pipeline_runs (pipeline_schedule_id, pipeline_uuid, execution_date, execution_partition, status, variables,
            metrics, completed_at, created_at, updated_at)
          VALUES (?, ?, ?, ?, 'cancelled', '{}', ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id, execution_date`,
    args: [run.pipelineScheduleId, run.pipelineUuid, run.executionDate, run.executionPartition, toJson({ error: run.reason, skipped: true }), now, now, now] as InValue[],
  };
}

/**
 * The insert of an @always_on trigger's next run, a no-op while the trigger has a live run. Its
 * execution date is the scheduler's clock, which differs between replicas, so the unique
 * (schedule, execution_date) key alone would let each replica start one.
 */
export function insertAlwaysOnRunStatement(run: { pipelineUuid: string; pipelineScheduleId: number; executionDate: number; executionPartition: string }, now: number): InStatement {
  return {
    sql: `INSERT INTO pipeline_runs (pipeline_schedule_id, pipeline_uuid, execution_date, execution_partition, variables,
            metrics, created_at, updated_at)
          SELECT ?, ?, ?, ?, '{}', '{}', ?, ?
          WHERE NOT EXISTS (SELECT 1 FROM pipeline_runs WHERE pipeline_schedule_id = ? AND status IN ('initial', 'running'))
          ON CONFLICT DO NOTHING RETURNING id, execution_date`,
    args: [run.pipelineScheduleId, run.pipelineUuid, run.executionDate, run.executionPartition, now, now, run.pipelineScheduleId] as InValue[],
  };
}

/** Flags a live run as past its SLA, unless it is flagged already (then the statement changes no row). */
export function flagPassedSlaStatement(id: number, now: number): InStatement {
  return { sql: "UPDATE pipeline_runs SET passed_sla = 1, updated_at = ? WHERE id = ? AND passed_sla = 0", args: [now, id] };
}

/** One pipeline run by id, or null. */
export async function getPipelineRun(client: SqlClient, id: number): Promise<PipelineRun | null> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_runs WHERE id = ?", args: [id] });
  return rs.rows[0] ? pipelineRunFromRow(rs.rows[0]) : null;
}

export interface PipelineRunFilter {
  pipelineUuid?: string;
  status?: PipelineRunStatus;
  /** Any of these statuses (Mage's `status[]`); with `status` too, only a status in both. */
  statuses?: readonly PipelineRunStatus[];
  pipelineScheduleId?: number;
  backfillId?: number;
  /** Inclusive bounds on execution_date (epoch ms). */
  executionDateFrom?: number;
  executionDateTo?: number;
}

/** The statuses a filter asks for (`status` and `statuses` together: those in both), or undefined for any. */
function statusesOf(filter: PipelineRunFilter): PipelineRunStatus[] | undefined {
  if (filter.statuses === undefined) return filter.status === undefined ? undefined : [filter.status];
  return filter.status === undefined ? [...new Set(filter.statuses)] : filter.statuses.filter((s) => s === filter.status).slice(0, 1);
}

/** The WHERE conditions of a run filter, for the list and the count alike. */
function runConditions(filter: PipelineRunFilter): { where: string[]; args: InValue[] } {
  const where: string[] = [];
  const args: InValue[] = [];
  if (filter.pipelineUuid !== undefined) (where.push("pipeline_uuid = ?"), args.push(filter.pipelineUuid));
  const statuses = statusesOf(filter);
  if (statuses !== undefined) {
    // an empty set matches nothing
    if (statuses.length === 0) where.push("0");
    else (where.push(`status IN (${statuses.map(() => "?").join(", ")})`), args.push(...statuses));
  }
  if (filter.pipelineScheduleId !== undefined) (where.push("pipeline_schedule_id = ?"), args.push(filter.pipelineScheduleId));
  if (filter.backfillId !== undefined) (where.push("backfill_id = ?"), args.push(filter.backfillId));
  if (filter.executionDateFrom !== undefined) (where.push("execution_date >= ?"), args.push(filter.executionDateFrom));
  if (filter.executionDateTo !== undefined) (where.push("execution_date <= ?"), args.push(filter.executionDateTo));
  return { where, args };
}

/**
 * How many runs match the filter: from the run counters when it filters by pipeline, trigger and
 * status only (O(1) in the number of runs), else counted over the filter's index.
 */
export async function totalPipelineRuns(client: SqlClient, filter: PipelineRunFilter = {}): Promise<number> {
  if (filter.backfillId === undefined && filter.executionDateFrom === undefined && filter.executionDateTo === undefined) {
    const statuses = statusesOf(filter);
    return countedPipelineRuns(client, {
      ...(filter.pipelineUuid !== undefined ? { pipelineUuid: filter.pipelineUuid } : {}),
      ...(filter.pipelineScheduleId !== undefined ? { pipelineScheduleId: filter.pipelineScheduleId } : {}),
      ...(statuses !== undefined ? { statuses } : {}),
    });
  }
  const { where, args } = runConditions(filter);
  const rs = await client.execute({ sql: `SELECT count(*) AS n FROM pipeline_runs WHERE ${where.join(" AND ")}`, args });
  return Number(rs.rows[0]?.n ?? 0);
}

/** Newest-first runs matching the filter, a page at a time (keyset: as fast on page 10,000 as on page 1). */
export function listPipelineRuns(client: SqlClient, filter: PipelineRunFilter = {}, page: PageRequest = {}): Promise<Page<PipelineRun>> {
  return listPage(client, "pipeline_runs", runConditions(filter), page, pipelineRunFromRow);
}

/** A trigger's most recently completed runs (by execution date), newest first. */
export async function recentlyCompletedRuns(client: SqlClient, scheduleId: number, limit: number): Promise<PipelineRun[]> {
  const rs = await client.execute({
    sql: "SELECT * FROM pipeline_runs WHERE pipeline_schedule_id = ? AND status = 'completed' ORDER BY execution_date DESC LIMIT ?",
    args: [scheduleId, limit],
  });
  return rs.rows.map(pipelineRunFromRow);
}

/** Status of a trigger's latest run (by execution date), or null with none. */
export async function latestRunStatus(client: SqlClient, scheduleId: number): Promise<PipelineRunStatus | null> {
  const rs = await client.execute({
    sql: "SELECT status FROM pipeline_runs WHERE pipeline_schedule_id = ? ORDER BY execution_date DESC, id DESC LIMIT 1",
    args: [scheduleId],
  });
  return rs.rows[0] ? (String(rs.rows[0].status) as PipelineRunStatus) : null;
}

/** How many of a trigger's runs are initial or running. */
export async function liveRunCount(client: SqlClient, scheduleId: number): Promise<number> {
  const rs = await client.execute({
    sql: "SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_schedule_id = ? AND status IN ('initial', 'running')",
    args: [scheduleId],
  });
  return Number(rs.rows[0]?.n ?? 0);
}
