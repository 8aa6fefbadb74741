/** Store operations on users and their sessions' revocations (the rules are auth/users.ts's and auth/sessions.ts's). */
import type { SqlClient } from "./sql-client.ts";
import type { Role } from "../auth/roles.ts";

/** A user as stored, without the password hash. */
export interface UserRecord {
  id: number;
  username: string;
  role: Role;
  createdAt: number;
  updatedAt: number;
}

/** A users row as a record (no password hash). */
export function userFromRow(row: Record<string, unknown>): UserRecord {
  return {
    id: Number(row.id),
    username: String(row.username),
    role: String(row.role) as Role,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** Inserts a user; null when the username is taken. */
export async function insertUser(client: SqlClient, user: { username: string; passwordHash: string; role: Role }, now: number): Promise<UserRecord | null> {
  const rs = await client.execute({
    sql: "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING RETURNING *",
    args: [user.username, user.passwordHash, user.role, now, now],
  });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  return row ? userFromRow(row) : null;
}

/** A user and its password hash by username, or null. */
export async function userWithPasswordHash(client: SqlClient, username: string): Promise<{ user: UserRecord; passwordHash: string } | null> {
  const rs = await client.execute({ sql: "SELECT * FROM users WHERE username = ?", args: [username] });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  return row ? { user: userFromRow(row), passwordHash: String(row.password_hash) } : null;
}

/** A user by id, or null. */
export async function getUser(client: SqlClient, id: number): Promise<UserRecord | null> {
  const rs = await client.execute({ sql: "SELECT * FROM users WHERE id = ?", args: [id] });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  return row ? userFromRow(row) : null;
}

/** Every user, by id. */
export async function listUsers(client: SqlClient): Promise<UserRecord[]> {
  const rs = await client.execute("SELECT * FROM users ORDER BY id");
  return rs.rows.map((row) => userFromRow(row as Record<string, unknown>));
}

/** Deletes a user; false when there was none. */
export async function deleteUser(client: SqlClient, id: number): Promise<boolean> {
  const rs = await client.execute({ sql: "DELETE FROM users WHERE id = ?", args: [id] });
  return rs.rowsAffected > 0;
}

/** How many users and API keys exist: zero means nobody can sign in yet. */
export async function credentialCount(client: SqlClient): Promise<number> {
  const rs = await client.execute("SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM users) AS n");
  return Number(rs.rows[0]?.n ?? 0);
}

/** Records a session ended before its expiry; expired entries are dropped on the way. */
export async function revokeSession(client: SqlClient, jti: string, expiresAt: number, now: number): Promise<void> {
  await client.batch(
    [
      { sql: "DELETE FROM revoked_sessions WHERE expires_at < ?", args: [now] },
      { sql: "INSERT INTO revoked_sessions (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING", args: [jti, expiresAt] },
    ],
    "write",
  );
}

/** The user behind a session when the user still exists and the session was not ended, else null. */
export async function liveSessionUser(client: SqlClient, userId: number, jti: string): Promise<UserRecord | null> {
  const rs = await client.execute({
    sql: "SELECT * FROM users WHERE id = ? AND NOT EXISTS (SELECT 1 FROM revoked_sessions WHERE jti = ?)",
    args: [userId, jti],
  });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  return row ? userFromRow(row) : null;
}
