/** Store operations on block runs. */
import type { SqlClient } from "./sql-client.ts";
import type { BlockRun } from "../domain.ts";
import { blockRunFromRow } from "./rows.ts";
import { countRows, listPage, type Page, type PageRequest } from "./page.ts";

/** All block runs of a pipeline run, in creation order. */
export async function getBlockRuns(client: SqlClient, pipelineRunId: number): Promise<BlockRun[]> {
  const rs = await client.execute({ sql: "SELECT * FROM block_runs WHERE pipeline_run_id = ? ORDER BY id", args: [pipelineRunId] });
  return rs.rows.map(blockRunFromRow);
}

/** Per pipeline run (of `pipelineRunIds`), how many block runs it has and how many completed: one grouped read for a page of runs. */
export async function blockRunCounts(client: SqlClient, pipelineRunIds: readonly number[]): Promise<Map<number, { total: number; completed: number }>> {
  const counts = new Map<number, { total: number; completed: number }>();
  if (pipelineRunIds.length === 0) return counts;
  const rs = await client.execute({
    sql: `SELECT pipeline_run_id, count(*) AS total, sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed
          FROM block_runs WHERE pipeline_run_id IN (${pipelineRunIds.map(() => "?").join(", ")}) GROUP BY pipeline_run_id`,
    args: [...pipelineRunIds],
  });
  for (const row of rs.rows) counts.set(Number(row.pipeline_run_id), { total: Number(row.total), completed: Number(row.completed ?? 0) });
  return counts;
}

/** A pipeline run's block runs, newest first, a page at a time (keyset, like every list the API serves). */
export function listBlockRuns(client: SqlClient, pipelineRunId: number, page: PageRequest = {}): Promise<Page<BlockRun>> {
  return listPage(client, "block_runs", { where: ["pipeline_run_id = ?"], args: [pipelineRunId] }, page, blockRunFromRow);
}

/** How many block runs a pipeline run has: counted through (pipeline_run_id, block_uuid)'s index, at most one per block of its pipeline. */
export function countBlockRuns(client: SqlClient, pipelineRunId: number): Promise<number> {
  return countRows(client, "block_runs", { where: ["pipeline_run_id = ?"], args: [pipelineRunId] });
}

/** One block run by id, or null. */
export async function getBlockRun(client: SqlClient, id: number): Promise<BlockRun | null> {
  const rs = await client.execute({ sql: "SELECT * FROM block_runs WHERE id = ?", args: [id] });
  return rs.rows[0] ? blockRunFromRow(rs.rows[0]) : null;
}

/**
 * For each block, the execution partition of its most recent completed block run in the
 * pipeline: where a single-block run (`kiln run --block-uuid`) reads its upstream outputs.
 */
export async function latestCompletedPartitions(
  client: SqlClient,
  pipelineUuid: string,
  blockUuids: readonly string[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const blockUuid of blockUuids) {
    const rs = await client.execute({
      sql: `SELECT pr.execution_partition FROM block_runs br JOIN pipeline_runs pr ON pr.id = br.pipeline_run_id
            WHERE pr.pipeline_uuid = ? AND br.block_uuid = ? AND br.status = 'completed'
            ORDER BY br.completed_at DESC, br.id DESC LIMIT 1`,
      args: [pipelineUuid, blockUuid],
    });
    if (rs.rows[0]) found.set(blockUuid, String(rs.rows[0].execution_partition));
  }
  return found;
}
