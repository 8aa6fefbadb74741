/**
 * Totals read from the run counters (migration 008), which triggers keep in the same transaction
 * as every run insert, status change and delete: a handful of rows, however many runs there are.
 */
import type { InValue } from "@libsql/client";
import type { PipelineRunStatus } from "../domain.ts";
import type { SqlClient } from "./sql-client.ts";

/** What the counters can total by; a list filtered by anything else is counted another way. */
export interface CountedRunFilter {
  pipelineUuid?: string;
  /** null: runs without a trigger. */
  pipelineScheduleId?: number | null;
  statuses?: readonly PipelineRunStatus[];
}

/** The number of pipeline runs matching the filter. */
export async function countedPipelineRuns(client: SqlClient, filter: CountedRunFilter = {}): Promise<number> {
  const where = ["kind = 'pipeline_run'"];
  const args: InValue[] = [];
  if (filter.pipelineUuid !== undefined) (where.push("pipeline_uuid = ?"), args.push(filter.pipelineUuid));
  if (filter.pipelineScheduleId !== undefined) (where.push("pipeline_schedule_id = ?"), args.push(filter.pipelineScheduleId ?? 0));
  if (filter.statuses !== undefined) {
    if (filter.statuses.length === 0) return 0;
    where.push(`status IN (${filter.statuses.map(() => "?").join(", ")})`);
    args.push(...filter.statuses);
  }
  const rs = await client.execute({ sql: `SELECT coalesce(sum(n), 0) AS n FROM run_counters WHERE ${where.join(" AND ")}`, args });
  return Number(rs.rows[0]?.n ?? 0);
}

/** Per trigger: all its runs, and those initial or running (Mage's pipeline_runs_count, pipeline_in_progress_runs_count). */
export async function scheduleRunCounts(client: SqlClient, scheduleIds: readonly number[]): Promise<Map<number, { total: number; inProgress: number }>> {
  const out = new Map<number, { total: number; inProgress: number }>();
  for (const id of scheduleIds) out.set(id, { total: 0, inProgress: 0 });
  if (scheduleIds.length === 0) return out;
  const rs = await client.execute({
    sql: `SELECT pipeline_schedule_id AS id, sum(n) AS total, sum(CASE WHEN status IN ('initial', 'running') THEN n ELSE 0 END) AS live
          FROM run_counters WHERE kind = 'pipeline_run' AND pipeline_schedule_id IN (${scheduleIds.map(() => "?").join(", ")})
          GROUP BY pipeline_schedule_id`,
    args: [...scheduleIds],
  });
  for (const r of rs.rows) out.set(Number(r.id), { total: Number(r.total), inProgress: Number(r.live) });
  return out;
}
