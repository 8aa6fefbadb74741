/**
 * Block-run logs kept in the database, for hosts with no disk of their own (Cloudflare Workers):
 * each append is a row holding complete lines, at the byte offset where it starts in the block
 * run's log, so a reader resumes by offset exactly as it does over a log file.
 */
export const name = "block_logs";

export const statements: string[] = [
  `CREATE TABLE block_logs (
    id INTEGER PRIMARY KEY,
    pipeline_uuid TEXT NOT NULL,
    execution_partition TEXT NOT NULL,
    block_uuid TEXT NOT NULL,
    start_offset INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
  )`,
  "CREATE UNIQUE INDEX block_logs_by_offset ON block_logs (pipeline_uuid, execution_partition, block_uuid, start_offset)",
];
