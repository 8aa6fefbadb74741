/**
 * The part of a libSQL client the store uses. @libsql/client's Client satisfies it (remote
 * servers, Workers); so does the node package's local client with its statement cache.
 */
import type { Client, ResultSet, Row } from "@libsql/client";

export type SqlClient = Pick<Client, "execute" | "batch" | "close">;

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
