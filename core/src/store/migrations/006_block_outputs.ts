/**
 * Block outputs kept in the database (kiln.yaml `output_store: {type: database}`), for blocks that
 * run where the project's `.variables/` folder is out of reach (containers, cloud jobs).
 */
export const name = "block_outputs";

export const statements: string[] = [
  // A rowid table, not WITHOUT ROWID: values run up to output_store.max_bytes, and large rows in
  // a clustered index would spill into overflow pages on every lookup of the key.
  `CREATE TABLE block_outputs (
    pipeline_uuid TEXT NOT NULL,
    execution_partition TEXT NOT NULL,
    block_uuid TEXT NOT NULL,
    value TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (pipeline_uuid, execution_partition, block_uuid)
  )`,
];
