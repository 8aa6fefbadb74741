/**
 * Settings of a connection to a local libSQL file (the node package opens those; a libSQL
 * server keeps its own): the statements live here with the rest of kiln's SQL.
 */
import type { SqlClient } from "./sql-client.ts";

/** WAL (readers never block the writer), the sync level (NORMAL: a power loss may lose the last commits, never corrupt), foreign keys on. */
export async function configureFileConnection(client: SqlClient, sync: "full" | "normal"): Promise<void> {
  await client.execute("PRAGMA journal_mode = WAL");
  await client.execute(`PRAGMA synchronous = ${sync === "full" ? "FULL" : "NORMAL"}`);
  await client.execute("PRAGMA foreign_keys = ON");
}

/** Sets how many WAL pages make a commit checkpoint on this connection (0: never, another connection does). */
export async function setAutoCheckpoint(client: SqlClient, pages: number): Promise<void> {
  await client.execute(`PRAGMA wal_autocheckpoint = ${Math.max(0, Math.trunc(pages))}`);
}

/** A checkpoint that copies what it can without waiting on readers or writers (run by a background connection). */
export const PASSIVE_CHECKPOINT_SQL = "PRAGMA wal_checkpoint(PASSIVE)";
