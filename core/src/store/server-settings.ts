/** Store operations on server_settings: values every replica of a server shares (the session signing key). */
import type { SqlClient } from "./sql-client.ts";

/** A setting's value, or undefined when it has none. */
export async function getServerSetting(client: SqlClient, key: string): Promise<string | undefined> {
  const rs = await client.execute({ sql: "SELECT value FROM server_settings WHERE key = ?", args: [key] });
  const value = rs.rows[0]?.value;
  return value === undefined || value === null ? undefined : String(value);
}

/** Sets a setting unless it has a value already (replicas racing to make it agree on the first). */
export async function addServerSetting(client: SqlClient, key: string, value: string, now: number): Promise<void> {
  await client.execute({
    sql: "INSERT INTO server_settings (key, value, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
    args: [key, value, now, now],
  });
}

/** Replaces a setting's value only if it is still `expected` (of replicas replacing it at once, one wins). */
export async function replaceServerSetting(client: SqlClient, key: string, expected: string, value: string, now: number): Promise<void> {
  await client.execute({
    sql: "UPDATE server_settings SET value = ?, updated_at = ? WHERE key = ? AND value = ?",
    args: [value, now, key, expected],
  });
}
