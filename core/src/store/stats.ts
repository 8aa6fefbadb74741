/**
 * What /api/status and /metrics report: runs by status, queue depth, scheduler heartbeats, the
 * schema version, pending notifications. One read batch, so the figures are one consistent
 * snapshot and a remote database costs one round trip.
 */
import { BLOCK_RUN_STATUSES, PIPELINE_RUN_STATUSES, type BlockRunStatus, type PipelineRunStatus } from "../domain.ts";
import type { Row } from "@libsql/client";
import { GAVE_UP_AT } from "../notify/deliver.ts";
import type { SqlClient } from "./sql-client.ts";

export interface SchedulerHeartbeat {
  id: string;
  host: string;
  pid: number | null;
  startedAt: number;
  /** By the scheduler's own clock, which may differ from the reader's. */
  heartbeatAt: number;
  beats: number;
}

export interface SystemStats {
  /** The newest migration applied. */
  migrationVersion: number;
  pipelineRuns: Record<PipelineRunStatus, number>;
  blockRuns: Record<BlockRunStatus, number>;
  schedulers: SchedulerHeartbeat[];
  /** Notifications waiting to be sent (due or backing off); given-up ones are not counted. */
  notificationsPending: number;
  /** The earliest next_run_at of an active trigger; null when none is scheduled. */
  earliestNextRunAt: number | null;
}

/** A schedulers row (id, host, pid, started_at, heartbeat_at, beats) as a SchedulerHeartbeat. */
export function schedulerHeartbeatFromRow(r: Row): SchedulerHeartbeat {
  return {
    id: String(r.id),
    host: String(r.host),
    pid: r.pid === null || r.pid === undefined ? null : Number(r.pid),
    startedAt: Number(r.started_at),
    heartbeatAt: Number(r.heartbeat_at),
    beats: Number(r.beats),
  };
}

function zeroes<S extends string>(statuses: readonly S[]): Record<S, number> {
  return Object.fromEntries(statuses.map((s) => [s, 0])) as Record<S, number>;
}

/**
 * Reads the figures. The counts are grouped COUNTs over the (status, id) indexes: a scan of that
 * covering index, never of the table, but still linear in the runs stored (about 0.2 s for a
 * million runs on an embedded database). Ended runs can be retried, so no count can be cached by
 * id range; if scrapes of a huge history get too dear, counters kept by the store's guarded
 * transitions are the fix. The other reads use their partial indexes.
 */
export async function systemStats(client: SqlClient): Promise<SystemStats> {
  const [migrations, runs, blocks, schedulers, notifications, due] = await client.batch(
    [
      "SELECT max(id) AS version FROM migrations",
      // the run counters (kept in the transactions that change statuses): O(1) in the number of runs
      "SELECT status, sum(n) AS n FROM run_counters WHERE kind = 'pipeline_run' GROUP BY status",
      "SELECT status, sum(n) AS n FROM run_counters WHERE kind = 'block_run' GROUP BY status",
      "SELECT id, host, pid, started_at, heartbeat_at, beats FROM schedulers ORDER BY started_at, id",
      { sql: "SELECT count(*) AS n FROM notifications WHERE sent_at IS NULL AND next_attempt_at < ?", args: [GAVE_UP_AT] },
      "SELECT min(next_run_at) AS next FROM pipeline_schedules WHERE status = 'active'",
    ],
    "read",
  );
  const pipelineRuns = zeroes(PIPELINE_RUN_STATUSES);
  for (const r of runs?.rows ?? []) pipelineRuns[String(r.status) as PipelineRunStatus] = Number(r.n);
  const blockRuns = zeroes(BLOCK_RUN_STATUSES);
  for (const r of blocks?.rows ?? []) blockRuns[String(r.status) as BlockRunStatus] = Number(r.n);
  const next = due?.rows[0]?.next;
  return {
    migrationVersion: Number(migrations?.rows[0]?.version ?? 0),
    pipelineRuns,
    blockRuns,
    schedulers: (schedulers?.rows ?? []).map(schedulerHeartbeatFromRow),
    notificationsPending: Number(notifications?.rows[0]?.n ?? 0),
    earliestNextRunAt: next === null || next === undefined ? null : Number(next),
  };
}
