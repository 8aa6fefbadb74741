/**
 * Block outputs in the database, for the Worker: it has no disk, and a run's blocks may run on
 * different ticks (different isolates), so an output must outlive the isolate that wrote it.
 */
import { encodeOutput, OutputMissingError, outputPath, type OutputStore, type SqlClient } from "@kiln/core";

const TABLE = `CREATE TABLE IF NOT EXISTS worker_block_outputs (
  pipeline_uuid TEXT NOT NULL,
  execution_partition TEXT NOT NULL,
  block_uuid TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (pipeline_uuid, execution_partition, block_uuid)
)`;

/** An output store over the kiln database's `worker_block_outputs` table (created when missing). */
export async function databaseOutputStore(client: SqlClient): Promise<OutputStore> {
  await client.execute(TABLE);
  return {
    async write(pipelineUuid, partition, blockUuid, value) {
      await client.execute({
        sql: "INSERT INTO worker_block_outputs (pipeline_uuid, execution_partition, block_uuid, value) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value",
        args: [pipelineUuid, partition, blockUuid, encodeOutput(value)],
      });
    },
    async read(pipelineUuid, partition, blockUuid) {
      const rs = await client.execute({
        sql: "SELECT value FROM worker_block_outputs WHERE pipeline_uuid = ? AND execution_partition = ? AND block_uuid = ?",
        args: [pipelineUuid, partition, blockUuid],
      });
      const row = rs.rows[0];
      if (!row) throw new OutputMissingError(outputPath(pipelineUuid, partition, blockUuid));
      return JSON.parse(String(row.value)) as unknown;
    },
  };
}
