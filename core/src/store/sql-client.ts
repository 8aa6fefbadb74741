/**
 * The part of a libSQL client the store uses. @libsql/client's Client satisfies it (remote
 * servers, Workers); so does the node package's local client with its statement cache.
 */
import type { Client, ResultSet, Row } from "@libsql/client";

export type SqlClient = Pick<Client, "execute" | "batch" | "close">;

/**
 * Bound parameters per statement of a multi-row insert: D1 binds at most 100 per statement
 * (SQLite itself allows far more); the rows past it go in further statements of the same batch.
 */
export const MAX_BOUND_PARAMETERS = 100;

/** A libSQL ResultSet from an adapter's rows and counts (node's local client, D1): what the store reads back. */
export function resultSetOf(rows: Row[], columns: string[], rowsAffected: number, lastInsertRowid: bigint | undefined): ResultSet {
  return {
    columns,
    columnTypes: columns.map(() => ""),
    rows,
    rowsAffected,
    lastInsertRowid,
    toJSON: () => ({ columns, rows, rowsAffected, lastInsertRowid: lastInsertRowid?.toString() ?? null }),
  };
}
