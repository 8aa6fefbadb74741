/**
 * Store operations on backfills and on their pipeline runs. The service (backfill/service.ts)
 * decides what to do; the SQL lives here. Statements that must commit together with a guarded
 * transition are added to a WriteBatch (the `add*`/`require*` functions) instead of executed.
 *
 * "The latest run of a date" is the backfill's run for that execution date with the highest id:
 * a retry creates a new run for the date, and the newest one decides the date's status.
 */
import type { InStatement, InValue, Row } from "@libsql/client";
import { MAX_BOUND_PARAMETERS, type SqlClient } from "./sql-client.ts";
import {
  PIPELINE_RUN_STATUSES,
  type Backfill,
  type BackfillStatus,
  type IntervalType,
  type JsonObject,
  type PipelineRunStatus,
} from "../domain.ts";
import { canTransition } from "../state-machine.ts";
import { backfillFromRow } from "./rows.ts";
import { toJson } from "./json.ts";
import { countRows, listPage, type Page, type PageRequest, type RowFilter } from "./page.ts";
import type { FailCheck } from "./write-batch.ts";

/** A backfill as stored, with its run limit (which the domain's Backfill type does not carry yet). */
export type BackfillRecord = Backfill & { maxConcurrentRuns: number | null };

export interface NewBackfill {
  name: string;
  pipelineUuid: string;
  pipelineScheduleId?: number | null;
  startDatetime: number;
  endDatetime: number;
  intervalType: IntervalType;
  intervalUnits?: number;
  variables?: JsonObject;
  blockUuid?: string | null;
  maxConcurrentRuns?: number | null;
}

export interface BackfillFilter {
  pipelineUuid?: string;
  status?: BackfillStatus;
}

/** A run to create for a backfill date. */
export interface NewBackfillRun {
  executionDate: number;
  executionPartition: string;
  /**
   * The id of the run this one replaces (0 for a date's first run). The row is inserted only if
   * the date has no run newer than that, so a start or retry that lost a race creates nothing.
   */
  supersedes: number;
}

/** Pipeline-run statuses a run can be cancelled from (initial and running). */
const LIVE_RUN_STATUSES = PIPELINE_RUN_STATUSES.filter((s) => canTransition("pipeline_run", s, "cancelled"));
/** LIVE_RUN_STATUSES as an SQL list, for `status IN (...)`. */
export const LIVE_IN = LIVE_RUN_STATUSES.map((s) => `'${s}'`).join(", ");

// a date's run is its latest when no run of the same backfill and date has a higher id
const IS_LATEST = (alias: string) =>
  `NOT EXISTS (SELECT 1 FROM pipeline_runs newer WHERE newer.backfill_id = ${alias}.backfill_id
     AND newer.execution_date = ${alias}.execution_date AND newer.id > ${alias}.id)`;

/** Maps a backfills row, including max_concurrent_runs. */
export function backfillRecordFromRow(r: Row): BackfillRecord {
  const limit = r.max_concurrent_runs;
  return { ...backfillFromRow(r), maxConcurrentRuns: limit === null || limit === undefined ? null : Number(limit) };
}

/** Inserts a backfill in status initial. */
export async function insertBackfill(client: SqlClient, b: NewBackfill, now: number): Promise<BackfillRecord> {
  const rs = await client.execute({
    sql: `INSERT INTO backfills (name, pipeline_schedule_id, pipeline_uuid, start_datetime, end_datetime, interval_type,
            interval_units, variables, block_uuid, max_concurrent_runs, status, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'initial', ?, ?) RETURNING *`,
    args: [
      b.name,
      b.pipelineScheduleId ?? null,
      b.pipelineUuid,
      b.startDatetime,
      b.endDatetime,
      b.intervalType,
      b.intervalUnits ?? 1,
      toJson(b.variables),
      b.blockUuid ?? null,
      b.maxConcurrentRuns ?? null,
      now,
      now,
    ] as InValue[],
  });
  const row = rs.rows[0];
  if (!row) throw new Error(`backfill ${b.name} was not created`);
  return backfillRecordFromRow(row);
}

/** One backfill by id, or null. */
export async function getBackfill(client: SqlClient, id: number): Promise<BackfillRecord | null> {
  const rs = await client.execute({ sql: "SELECT * FROM backfills WHERE id = ?", args: [id] });
  return rs.rows[0] ? backfillRecordFromRow(rs.rows[0]) : null;
}

/** Newest-first backfills matching the filter, a page at a time (keyset on id). */
export async function listBackfills(
  client: SqlClient,
  filter: BackfillFilter = {},
  page: PageRequest = {},
): Promise<Page<BackfillRecord>> {
  return listPage(client, "backfills", backfillConditions(filter), page, backfillRecordFromRow);
}

/** How many backfills match the filter: counted through their indexes (backfills are made by people, and few). */
export function countBackfills(client: SqlClient, filter: BackfillFilter = {}): Promise<number> {
  return countRows(client, "backfills", backfillConditions(filter));
}

/** The filter as SQL conditions, shared by the page and its total. */
function backfillConditions(filter: BackfillFilter): RowFilter {
  const where: string[] = [];
  const args: InValue[] = [];
  if (filter.pipelineUuid !== undefined) (where.push("pipeline_uuid = ?"), args.push(filter.pipelineUuid));
  if (filter.status !== undefined) (where.push("status = ?"), args.push(filter.status));
  return { where, args };
}

/** The fields of a backfill that may change before it starts. */
export interface BackfillUpdate {
  name?: string;
  variables?: JsonObject;
  maxConcurrentRuns?: number | null;
}

/**
 * Changes a backfill's name, variables or run limit, only while it is initial: one conditional
 * write, so a start racing with it either sees the new values or makes it change nothing.
 * Returns the backfill, or null if it is not (or no longer) initial or does not exist.
 */
export async function updateInitialBackfill(client: SqlClient, id: number, update: BackfillUpdate, now: number): Promise<BackfillRecord | null> {
  const sets: string[] = [];
  const args: InValue[] = [];
  if (update.name !== undefined) (sets.push("name = ?"), args.push(update.name));
  if (update.variables !== undefined) (sets.push("variables = ?"), args.push(toJson(update.variables)));
  if (update.maxConcurrentRuns !== undefined) (sets.push("max_concurrent_runs = ?"), args.push(update.maxConcurrentRuns));
  const update_ = {
    sql: `UPDATE backfills SET ${[...sets, "updated_at = ?"].join(", ")} WHERE id = ? AND status = 'initial' RETURNING *`,
    args: [...args, now, id],
  };
  // runs staged by a start that never finished take the new variables too, as a start's runs would
  const staged = {
    sql: "UPDATE pipeline_runs SET variables = (SELECT variables FROM backfills WHERE id = ?) WHERE backfill_id = ? AND status = 'initial' AND (SELECT status FROM backfills WHERE id = ?) = 'initial'",
    args: [id, id, id],
  };
  const [rs] = await client.batch(update.variables !== undefined ? [update_, staged] : [update_], "write");
  return rs?.rows[0] ? backfillRecordFromRow(rs.rows[0]) : null;
}

/**
 * The statements deleting a backfill unless it is running, detaching its runs (they stay, with
 * no backfill), and the check that fails the batch if the backfill moved meanwhile
 * (WriteBatch.deleteBackfill). Whether foreign keys are enforced depends on the connection, so
 * the runs are detached explicitly.
 */
export function deleteBackfillStatements(id: number, status: BackfillStatus): { statements: InStatement[]; check: FailCheck } {
  return {
    statements: [
      // runs staged by a start that never finished (the backfill is still initial) go with it: detached, they would run as manual runs
      { sql: "DELETE FROM pipeline_runs WHERE backfill_id = ? AND status = 'initial' AND (SELECT status FROM backfills WHERE id = ?) = 'initial'", args: [id, id] },
      { sql: "UPDATE pipeline_runs SET backfill_id = NULL WHERE backfill_id = ?", args: [id] },
      { sql: "DELETE FROM backfills WHERE id = ? AND status = ? AND status <> 'running'", args: [id, status] },
    ],
    check: {
      condition: { sql: "changes() <> 1", args: [] },
      guard: {
        entity: "backfill",
        subject: `backfill ${id}`,
        from: status,
        to: "deleted",
        lookup: { sql: "SELECT coalesce((SELECT status FROM backfills WHERE id = ?), 'missing') AS status", args: [id] },
      },
    },
  };
}

/** Runs per status, counting each execution date once, by its latest run (a retried date counts as its retry). */
export async function backfillRunCounts(client: SqlClient, backfillId: number): Promise<Record<PipelineRunStatus, number>> {
  const rs = await client.execute({
    sql: `SELECT r.status, count(*) AS n FROM pipeline_runs r
          WHERE r.backfill_id = ? AND ${IS_LATEST("r")} GROUP BY r.status`,
    args: [backfillId],
  });
  const counts = Object.fromEntries(PIPELINE_RUN_STATUSES.map((s) => [s, 0])) as Record<PipelineRunStatus, number>;
  for (const row of rs.rows) counts[String(row.status) as PipelineRunStatus] = Number(row.n);
  return counts;
}

/** The latest run of each execution date whose status is one of `statuses`, by date. */
export async function latestBackfillRunsIn(
  client: SqlClient,
  backfillId: number,
  statuses: readonly PipelineRunStatus[],
): Promise<Array<{ id: number; executionDate: number; executionPartition: string; status: PipelineRunStatus }>> {
  if (statuses.length === 0) return [];
  const rs = await client.execute({
    sql: `SELECT r.id, r.execution_date, r.execution_partition, r.status FROM pipeline_runs r
          WHERE r.backfill_id = ? AND r.status IN (${statuses.map(() => "?").join(", ")}) AND ${IS_LATEST("r")}
          ORDER BY r.execution_date`,
    args: [backfillId, ...statuses],
  });
  return rs.rows.map((r) => ({
    id: Number(r.id),
    executionDate: Number(r.execution_date),
    executionPartition: String(r.execution_partition),
    status: String(r.status) as PipelineRunStatus,
  }));
}

/** Ids of the backfill's runs that are running now (the ones that may have live block runs). */
export async function runningBackfillRunIds(client: SqlClient, backfillId: number): Promise<number[]> {
  const rs = await client.execute({
    sql: "SELECT id FROM pipeline_runs WHERE backfill_id = ? AND status = 'running' ORDER BY id",
    args: [backfillId],
  });
  return rs.rows.map((r) => Number(r.id));
}

/**
 * Running backfills that have no initial or running run left, each with whether every date's
 * latest run completed. One query: the scheduler asks every tick, and the per-date check only
 * runs for the few backfills that have just run out of live runs.
 */
export async function backfillsToSettle(client: SqlClient): Promise<Array<{ id: number; allCompleted: boolean }>> {
  const rs = await client.execute(
    `SELECT b.id,
       EXISTS (SELECT 1 FROM pipeline_runs r WHERE r.backfill_id = b.id AND r.status <> 'completed' AND ${IS_LATEST("r")}) AS unsuccessful
     FROM backfills b
     WHERE b.status = 'running'
       AND NOT EXISTS (SELECT 1 FROM pipeline_runs live WHERE live.backfill_id = b.id AND live.status IN (${LIVE_IN}))
     ORDER BY b.id`,
  );
  return rs.rows.map((r) => ({ id: Number(r.id), allCompleted: Number(r.unsuccessful) === 0 }));
}

/**
 * Initial runs of running backfills that may start now, oldest (lowest id) first, at most
 * `limit`: each backfill contributes at most max_concurrent_runs minus its running runs.
 */
export async function backfillRunsToStart(client: SqlClient, limit: number): Promise<number[]> {
  if (!(limit > 0)) return [];
  const backfills = await client.execute(
    `SELECT b.id, b.max_concurrent_runs AS cap,
       (SELECT count(*) FROM pipeline_runs r WHERE r.backfill_id = b.id AND r.status = 'running') AS running
     FROM backfills b WHERE b.status = 'running' ORDER BY b.id`,
  );
  const statements = [];
  for (const b of backfills.rows) {
    const quota = b.cap === null ? limit : Math.min(limit, Number(b.cap) - Number(b.running));
    if (quota <= 0) continue;
    statements.push({
      sql: "SELECT id FROM pipeline_runs WHERE backfill_id = ? AND status = 'initial' ORDER BY id LIMIT ?",
      args: [Number(b.id), quota],
    });
  }
  if (statements.length === 0) return [];
  // one round trip for all backfills; each query stops at its quota
  const results = await client.batch(statements, "read");
  const ids = results.flatMap((rs) => rs.rows.map((r) => Number(r.id)));
  return ids.sort((a, b) => a - b).slice(0, limit);
}

/**
 * The inserts of a backfill's runs (status initial, no schedule), as many rows per statement as
 * MAX_BOUND_PARAMETERS allows (D1's limit: 31 rows of 3 beside the 7 shared parameters).
 * A row is skipped when its date already has a run newer than the one it supersedes; the
 * statements' returned rows add up to the runs created (not rowsAffected: D1 counts the run
 * counters' trigger writes in it too).
 */
export function insertBackfillRunsStatements(
  backfill: Pick<Backfill, "id" | "pipelineUuid" | "variables" | "blockUuid">,
  runs: readonly NewBackfillRun[],
  now: number,
): InStatement[] {
  const statements: InStatement[] = [];
  // a backfill of one block: the scheduler reads metrics.block_uuid and runs only that block
  const metrics = toJson(backfill.blockUuid ? { block_uuid: backfill.blockUuid } : {});
  const variables = toJson(backfill.variables);
  const rowsPerStatement = Math.floor((MAX_BOUND_PARAMETERS - 7) / 3);
  for (let start = 0; start < runs.length; start += rowsPerStatement) {
    const chunk = runs.slice(start, start + rowsPerStatement);
    const args: InValue[] = [backfill.pipelineUuid, variables, metrics, backfill.id, now, now];
    for (const run of chunk) args.push(run.executionDate, run.executionPartition, run.supersedes);
    args.push(backfill.id);
    statements.push({
      sql: `INSERT INTO pipeline_runs (pipeline_schedule_id, pipeline_uuid, execution_date, execution_partition, variables,
              metrics, backfill_id, created_at, updated_at)
            SELECT NULL, ?, v.column1, v.column2, ?, ?, ?, ?, ?
            FROM (VALUES ${chunk.map(() => "(?, ?, ?)").join(", ")}) AS v
            WHERE NOT EXISTS (SELECT 1 FROM pipeline_runs n WHERE n.backfill_id = ? AND n.execution_date = v.column1 AND n.id > v.column3)
            RETURNING id`,
      args,
    });
  }
  return statements;
}

/**
 * Holds unless the backfill is still initial and unchanged since it was read (its updated_at):
 * a start stages its runs in several batches, and one whose backfill was updated, started,
 * cancelled or deleted meanwhile stops (WriteBatch.requireBackfillUnchangedInitial).
 */
export function unchangedInitialCheck(id: number, updatedAt: number): FailCheck {
  return startCheck(
    id,
    { sql: "coalesce((SELECT status = 'initial' AND updated_at = ? FROM backfills WHERE id = ?), 0) = 0", args: [updatedAt, id] },
    { sql: "SELECT coalesce((SELECT CASE WHEN status = 'initial' THEN 'changed' ELSE status END FROM backfills WHERE id = ?), 'missing') AS status", args: [id] },
  );
}

/** Holds unless the backfill has exactly `count` runs (every date staged, none twice). */
export function runCountCheck(id: number, count: number): FailCheck {
  return startCheck(
    id,
    { sql: "(SELECT count(*) FROM pipeline_runs WHERE backfill_id = ?) <> ?", args: [id, count] },
    { sql: "SELECT 'changed while starting' AS status", args: [] },
  );
}

/** A check failing a backfill's start (initial to running) if `condition` holds; `lookup` says what was found instead. */
function startCheck(id: number, condition: { sql: string; args: InValue[] }, lookup: InStatement): FailCheck {
  return { condition, guard: { entity: "backfill", subject: `backfill ${id}`, from: "initial", to: "running", lookup } };
}

/**
 * Holds (an IllegalTransitionError) if the backfill has an initial or running run, so a
 * backfill is never settled while a retry's new runs are waiting.
 */
export function liveBackfillRunsCheck(id: number, from: BackfillStatus, to: BackfillStatus): FailCheck {
  const live = `EXISTS (SELECT 1 FROM pipeline_runs WHERE backfill_id = ? AND status IN (${LIVE_IN}))`;
  return {
    condition: { sql: live, args: [id] },
    guard: {
      entity: "backfill",
      subject: `backfill ${id}`,
      from,
      to,
      lookup: { sql: `SELECT CASE WHEN ${live} THEN status || ' with live runs' ELSE status END AS status FROM backfills WHERE id = ?`, args: [id, id] },
    },
  };
}
