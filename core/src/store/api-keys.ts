/** Store operations on API keys: only a key's SHA-256 is stored (the rules are auth/api-keys.ts's). */
import type { SqlClient } from "./sql-client.ts";
import type { Role } from "../auth/roles.ts";

export interface ApiKeyRecord {
  id: number;
  name: string;
  role: Role;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

function recordOf(row: Record<string, unknown>): ApiKeyRecord {
  return {
    id: Number(row.id),
    name: String(row.name),
    role: String(row.role) as Role,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null || row.last_used_at === undefined ? null : Number(row.last_used_at),
    revokedAt: row.revoked_at === null || row.revoked_at === undefined ? null : Number(row.revoked_at),
  };
}

/**
 * Inserts a key whose hash is `placeholder` (unique, replaced by setApiKeyHash once the id,
 * part of the key, is known); returns the id.
 */
export async function insertApiKey(client: SqlClient, key: { name: string; role: Role; placeholder: string }, now: number): Promise<number> {
  const rs = await client.execute({
    sql: "INSERT INTO api_keys (name, key_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    args: [key.name, key.placeholder, key.role, now],
  });
  return Number(rs.rows[0]?.id);
}

/** Stores a key's hash. */
export async function setApiKeyHash(client: SqlClient, id: number, keyHash: string): Promise<void> {
  await client.execute({ sql: "UPDATE api_keys SET key_hash = ? WHERE id = ?", args: [keyHash, id] });
}

/** A key's record and stored hash (live or revoked), or null. */
export async function apiKeyWithHash(client: SqlClient, id: number): Promise<{ record: ApiKeyRecord; keyHash: string } | null> {
  const rs = await client.execute({ sql: "SELECT * FROM api_keys WHERE id = ?", args: [id] });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  return row ? { record: recordOf(row), keyHash: String(row.key_hash) } : null;
}

/** Records when a key was last used. */
export async function touchApiKey(client: SqlClient, id: number, now: number): Promise<void> {
  await client.execute({ sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ?", args: [now, id] });
}

/** Every key (live and revoked) by id, without hashes. */
export async function listApiKeys(client: SqlClient): Promise<ApiKeyRecord[]> {
  const rs = await client.execute("SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_keys ORDER BY id");
  return rs.rows.map((row) => recordOf(row as Record<string, unknown>));
}

/** One key's record (live or revoked), or null. */
export async function getApiKey(client: SqlClient, id: number): Promise<ApiKeyRecord | null> {
  const rs = await client.execute({ sql: "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_keys WHERE id = ?", args: [id] });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  return row ? recordOf(row) : null;
}

/** Revokes a key; false when there is no such live key. */
export async function revokeApiKey(client: SqlClient, id: number, now: number): Promise<boolean> {
  const rs = await client.execute({ sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", args: [now, id] });
  return rs.rowsAffected === 1;
}
