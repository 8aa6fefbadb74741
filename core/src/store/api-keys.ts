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

/** A value as an SQL string literal: single quotes doubled, so no value can end the literal. */
function quoted(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function integer(name: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name}: expected a non-negative integer, got ${value}`);
  return String(value);
}

/**
 * The id the next key would take, as SQL text for a client the store cannot hold (`wrangler d1
 * execute` against a D1 binding): the key includes its id, so it must be known before the insert.
 */
export const NEXT_API_KEY_ID_SQL = "SELECT COALESCE(MAX(id), 0) + 1 AS next_id FROM api_keys";

/**
 * The api_keys INSERT for `record` as literal SQL text (the same columns createApiKey writes),
 * for `wrangler d1 execute`. The id is explicit: if another key took it meanwhile, the primary
 * key refuses the insert rather than storing a key whose id does not match.
 */
export function apiKeyInsertSql(record: { id: number; name: string; role: Role; keyHash: string; createdAt: number }): string {
  if (!/^[0-9a-f]{64}$/.test(record.keyHash)) throw new RangeError("keyHash: expected a SHA-256 in hex");
  return `INSERT INTO api_keys (id, name, key_hash, role, created_at) VALUES (${integer("id", record.id)}, ${quoted(record.name)}, ${quoted(record.keyHash)}, ${quoted(record.role)}, ${integer("createdAt", record.createdAt)});\n`;
}

/**
 * revokeApiKey's UPDATE as literal SQL text, for `wrangler d1 execute`: it returns the revoked
 * key's id, and no row when there is no such live key (wrangler's --json reports no change count).
 */
export function apiKeyRevokeSql(id: number, now: number): string {
  return `UPDATE api_keys SET revoked_at = ${integer("now", now)} WHERE id = ${integer("id", id)} AND revoked_at IS NULL RETURNING id;\n`;
}
