/** Store operations on block outputs kept in the database (the database output store's SQL). */
import type { InStatement } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";

/** Which block run's output: a block (or dynamic child) of a pipeline in one execution partition. */
export interface BlockOutputKey {
  pipelineUuid: string;
  executionPartition: string;
  blockUuid: string;
}

/** The upsert of an output's JSON text: a retried block run replaces what its earlier attempt wrote. */
export function putBlockOutputStatement(key: BlockOutputKey, json: string, sizeBytes: number, now: number): InStatement {
  return {
    sql: `INSERT INTO block_outputs (pipeline_uuid, execution_partition, block_uuid, value, size_bytes, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (pipeline_uuid, execution_partition, block_uuid)
          DO UPDATE SET value = excluded.value, size_bytes = excluded.size_bytes, updated_at = excluded.updated_at`,
    args: [key.pipelineUuid, key.executionPartition, key.blockUuid, json, sizeBytes, now, now],
  };
}

/** The delete of a block's stored output (a newer attempt's output went elsewhere: a file). */
export function deleteBlockOutputStatement(key: BlockOutputKey): InStatement {
  return {
    sql: "DELETE FROM block_outputs WHERE pipeline_uuid = ? AND execution_partition = ? AND block_uuid = ?",
    args: [key.pipelineUuid, key.executionPartition, key.blockUuid],
  };
}

/** Stores an output's JSON text; a retried block run replaces what its earlier attempt wrote. */
export async function putBlockOutput(client: SqlClient, key: BlockOutputKey, json: string, sizeBytes: number, now: number): Promise<void> {
  await client.execute(putBlockOutputStatement(key, json, sizeBytes, now));
}

/** An output's JSON text, or null when none was stored. */
export async function getBlockOutput(client: SqlClient, key: BlockOutputKey): Promise<string | null> {
  const rs = await client.execute({
    sql: "SELECT value FROM block_outputs WHERE pipeline_uuid = ? AND execution_partition = ? AND block_uuid = ?",
    args: [key.pipelineUuid, key.executionPartition, key.blockUuid],
  });
  const row = rs.rows[0];
  return row ? String(row.value) : null;
}
