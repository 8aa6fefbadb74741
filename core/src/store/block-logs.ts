/** Store operations on block-run logs kept in the database (migration 009): appends by byte offset, reads from one. */
import type { InStatement } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";

/** Where a block run's log is: the same three names as its log file's path. */
export interface BlockLogKey {
  pipelineUuid: string;
  partition: string;
  blockUuid: string;
}

/**
 * Appends `text` (complete lines, `bytes` long in UTF-8) to a block run's log, at the offset
 * where the log ends now: worked out in the insert itself, so appends in one batch stack in order.
 */
export function appendBlockLogStatement(key: BlockLogKey, text: string, bytes: number, now: number): InStatement {
  return {
    sql: `INSERT INTO block_logs (pipeline_uuid, execution_partition, block_uuid, start_offset, bytes, text, created_at)
          SELECT ?, ?, ?, coalesce(max(start_offset + bytes), 0), ?, ?, ?
            FROM block_logs WHERE pipeline_uuid = ? AND execution_partition = ? AND block_uuid = ?`,
    args: [key.pipelineUuid, key.partition, key.blockUuid, bytes, text, now, key.pipelineUuid, key.partition, key.blockUuid],
  };
}

/** A stored stretch of a log: its text and the byte offset it starts at. */
export interface BlockLogPiece {
  startOffset: number;
  text: string;
}

/** The stored pieces of a block run's log that end after `fromOffset`, in order, about `maxBytes` of them. */
export async function blockLogPieces(client: SqlClient, key: BlockLogKey, fromOffset: number, maxBytes: number): Promise<BlockLogPiece[]> {
  const rs = await client.execute({
    sql: `SELECT start_offset, bytes, text FROM block_logs
           WHERE pipeline_uuid = ? AND execution_partition = ? AND block_uuid = ? AND start_offset + bytes > ?
           ORDER BY start_offset LIMIT 500`,
    args: [key.pipelineUuid, key.partition, key.blockUuid, fromOffset],
  });
  const pieces: BlockLogPiece[] = [];
  let total = 0;
  for (const row of rs.rows) {
    pieces.push({ startOffset: Number(row.start_offset), text: String(row.text) });
    total += Number(row.bytes);
    if (total >= maxBytes + (pieces[0] ? fromOffset - pieces[0].startOffset : 0)) break;
  }
  return pieces;
}
