/**
 * Read models for the web UI's overview and live lists: recent runs by status over time, recent
 * failures, SLA breaches, drift, live counts, and the statuses of a handful of runs. Every read is
 * bounded (an index seek, or a window of the newest runs), so the overview costs the same with a
 * million runs stored as with a hundred.
 */
import type { InValue } from "@libsql/client";
import { PIPELINE_RUN_STATUSES, type PipelineRun, type PipelineRunStatus } from "../domain.ts";
import { pipelineRunFromRow } from "./rows.ts";
import type { SqlClient } from "./sql-client.ts";
import { schedulerHeartbeatFromRow, type SchedulerHeartbeat } from "./stats.ts";

/** How many of the newest runs the SLA and drift panels look through. */
export const OVERVIEW_RECENT_WINDOW = 10_000;
/** How many runs of the time window the chart counts at most (the newest by execution date). */
export const OVERVIEW_CHART_CAP = 50_000;

export interface OverviewBucket {
  /** Start of the bucket, UTC epoch ms. */
  start: number;
  counts: Record<PipelineRunStatus, number>;
}

export interface RunOverview {
  /** Runs by execution date and status, one bucket per `bucketMs`, oldest first. */
  buckets: OverviewBucket[];
  /** True when the window held more than OVERVIEW_CHART_CAP runs and only the newest were counted. */
  chartCapped: boolean;
  /** Runs waiting (initial) and running now. */
  live: { initial: number; running: number };
  recentFailures: PipelineRun[];
  /** Runs that passed their SLA, among the newest OVERVIEW_RECENT_WINDOW runs. */
  slaBreaches: PipelineRun[];
  /** Scheduled runs created more than `driftMs` after their execution date, among the newest OVERVIEW_RECENT_WINDOW runs. */
  drift: PipelineRun[];
  /** Every registered scheduler with its last heartbeat (by its own clock). */
  schedulers: SchedulerHeartbeat[];
}

export interface OverviewOptions {
  now: number;
  /** The chart's span back from now (default 24 h). */
  windowMs?: number;
  /** The chart's bucket width (default 1 h). */
  bucketMs?: number;
  /** Rows per panel (default 10). */
  limit?: number;
  /** A run created later than this after it was due counts as drift (default 60 s, the scheduler's threshold). */
  driftMs?: number;
}

function zeroes(): Record<PipelineRunStatus, number> {
  return Object.fromEntries(PIPELINE_RUN_STATUSES.map((s) => [s, 0])) as Record<PipelineRunStatus, number>;
}

/** The overview's figures in one read batch (one consistent snapshot, one round trip to a remote database). */
export async function runOverview(client: SqlClient, options: OverviewOptions): Promise<RunOverview> {
  const windowMs = options.windowMs ?? 24 * 3_600_000;
  const bucketMs = options.bucketMs ?? 3_600_000;
  const limit = options.limit ?? 10;
  const driftMs = options.driftMs ?? 60_000;
  const end = Math.ceil((options.now + 1) / bucketMs) * bucketMs;
  const from = end - windowMs;
  // the newest window of ids: "max(id) - N" is one seek, and the id range is the primary key's
  const recent = `id > (SELECT coalesce(max(id), 0) FROM pipeline_runs) - ${OVERVIEW_RECENT_WINDOW}`;
  const [chart, capped, live, failures, sla, drift, schedulers] = await client.batch(
    [
      {
        sql: `SELECT (execution_date - ?) / ? AS bucket, status, count(*) AS n FROM (
                SELECT execution_date, status FROM pipeline_runs WHERE execution_date >= ? AND execution_date < ?
                ORDER BY execution_date DESC LIMIT ${OVERVIEW_CHART_CAP}
              ) GROUP BY bucket, status`,
        args: [from, bucketMs, from, end] as InValue[],
      },
      {
        sql: `SELECT count(*) AS n FROM (SELECT 1 FROM pipeline_runs WHERE execution_date >= ? AND execution_date < ? LIMIT ${OVERVIEW_CHART_CAP + 1})`,
        args: [from, end] as InValue[],
      },
      "SELECT status, count(*) AS n FROM pipeline_runs WHERE status IN ('initial', 'running') GROUP BY status",
      { sql: "SELECT * FROM pipeline_runs WHERE status = 'failed' ORDER BY id DESC LIMIT ?", args: [limit] },
      { sql: `SELECT * FROM pipeline_runs WHERE ${recent} AND passed_sla = 1 ORDER BY id DESC LIMIT ?`, args: [limit] },
      {
        sql: `SELECT * FROM pipeline_runs WHERE ${recent} AND pipeline_schedule_id IS NOT NULL AND backfill_id IS NULL
                AND created_at - execution_date > ? ORDER BY id DESC LIMIT ?`,
        args: [driftMs, limit],
      },
      "SELECT id, host, pid, started_at, heartbeat_at, beats FROM schedulers ORDER BY started_at, id",
    ],
    "read",
  );
  const buckets: OverviewBucket[] = [];
  for (let start = from; start < end; start += bucketMs) buckets.push({ start, counts: zeroes() });
  for (const r of chart?.rows ?? []) {
    // the driver may bind the bounds as floats, making the division fractional
    const bucket = buckets[Math.floor(Number(r.bucket))];
    if (bucket) bucket.counts[String(r.status) as PipelineRunStatus] += Number(r.n);
  }
  const liveCounts = { initial: 0, running: 0 };
  for (const r of live?.rows ?? []) {
    const status = String(r.status);
    if (status === "initial" || status === "running") liveCounts[status] = Number(r.n);
  }
  return {
    buckets,
    chartCapped: Number(capped?.rows[0]?.n ?? 0) > OVERVIEW_CHART_CAP,
    live: liveCounts,
    recentFailures: (failures?.rows ?? []).map(pipelineRunFromRow),
    slaBreaches: (sla?.rows ?? []).map(pipelineRunFromRow),
    drift: (drift?.rows ?? []).map(pipelineRunFromRow),
    schedulers: (schedulers?.rows ?? []).map(schedulerHeartbeatFromRow),
  };
}

/** The current status of each run in `ids` (at most 200; unknown ids are left out), for live lists. */
export async function pipelineRunStatuses(client: SqlClient, ids: readonly number[]): Promise<Map<number, { status: PipelineRunStatus; updatedAt: number }>> {
  const wanted = ids.filter((id) => Number.isSafeInteger(id)).slice(0, 200);
  const out = new Map<number, { status: PipelineRunStatus; updatedAt: number }>();
  if (wanted.length === 0) return out;
  const rs = await client.execute({ sql: `SELECT id, status, updated_at FROM pipeline_runs WHERE id IN (${wanted.map(() => "?").join(",")})`, args: wanted });
  for (const r of rs.rows) out.set(Number(r.id), { status: String(r.status) as PipelineRunStatus, updatedAt: Number(r.updated_at) });
  return out;
}
