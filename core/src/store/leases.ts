/** Fencing tokens of scheduler leases, recorded where the writes they guard are made. */
import type { SqlClient } from "./sql-client.ts";

/**
 * Records that `holder` got lease `name` with `token`. A token never goes backwards: a late
 * record from an older holder does not overwrite a newer one. True if this token is now current.
 */
export async function recordLease(client: SqlClient, name: string, holder: string, token: number, expiresAt: number): Promise<boolean> {
  await client.execute({
    sql: `INSERT INTO leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at
          WHERE excluded.token > leases.token`,
    args: [name, holder, token, expiresAt],
  });
  const rs = await client.execute({ sql: "SELECT token FROM leases WHERE name = ?", args: [name] });
  return Number(rs.rows[0]?.token) === token;
}

/** The fencing token recorded for lease `name` (0 when none was ever granted). */
export async function currentLeaseToken(client: SqlClient, name: string): Promise<number> {
  const rs = await client.execute({ sql: "SELECT token FROM leases WHERE name = ?", args: [name] });
  return Number(rs.rows[0]?.token ?? 0);
}
