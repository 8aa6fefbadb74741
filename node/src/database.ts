/** Opens the project database with the settings kiln relies on. */
import { configureFileConnection, type SqlClient } from "@kiln/core/store";
import { createLocalClient } from "./local-client.ts";
import { existsSync } from "node:fs";
import { ensurePrivateFile, makePrivateDir } from "./private-files.ts";
import { dirname, isAbsolute, resolve } from "node:path";

/** The database URL: KILN_DATABASE_URL, else kiln.yaml's database_url, else `file:<project>/.kiln/kiln.db`. */
export function databaseUrl(projectRoot: string, configured: string | null, env: Record<string, string | undefined> = process.env): string {
  const url = env.KILN_DATABASE_URL || configured || "file:.kiln/kiln.db";
  if (!url.startsWith("file:")) return url;
  const path = url.slice("file:".length);
  return isAbsolute(path) ? url : `file:${resolve(projectRoot, path)}`;
}

/**
 * A libSQL client. For a `file:` database: one connection with a statement cache (so the
 * pragmas below hold for every statement; see local-client.ts), WAL, synchronous=NORMAL (durable across a process crash; KILN_DB_SYNC=full for
 * power loss), and a busy timeout so several kiln processes can share the file.
 */
export async function openDatabase(
  url: string,
  options: { authToken?: string; sync?: "normal" | "full" } = {},
): Promise<SqlClient> {
  if (!url.startsWith("file:")) {
    // imported only for a remote database: a block process on a file database never loads it
    const { createClient } = await import("@libsql/client");
    return createClient({ url, authToken: options.authToken });
  }
  const path = url.slice("file:".length);
  if (path !== ":memory:") {
    makePrivateDir(dirname(path));
    // SQLite gives its -wal and -shm files the database file's mode, so a private database
    // file keeps them private too; existing ones are tightened as well
    ensurePrivateFile(path);
    for (const side of [`${path}-wal`, `${path}-shm`]) if (existsSync(side)) ensurePrivateFile(side);
  }
  const client = createLocalClient(path, { timeoutMs: 10_000 });
  await configureFileConnection(client, options.sync ?? (process.env.KILN_DB_SYNC === "full" ? "full" : "normal"));
  return client;
}
