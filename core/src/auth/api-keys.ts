/**
 * API keys: `kiln_<id>_<secret>`. Only the SHA-256 of a key is stored; a presented key is found
 * by its id and its hash compared in constant time, so neither the table nor the timing of a
 * refusal gives a key away.
 */
import { assertName } from "../bounds.ts";
import type { SqlClient } from "../store/sql-client.ts";
import { constantTimeEqual, sha256Hex } from "./constant-time.ts";
import type { Role } from "./roles.ts";

export interface ApiKeyRecord {
  id: number;
  name: string;
  role: Role;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

const KEY_FORMAT = /^kiln_([1-9][0-9]{0,15})_([A-Za-z0-9_-]{43})$/;

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Creates a key with `role`; the returned `key` is shown once and never stored. */
export async function createApiKey(client: SqlClient, input: { name: string; role: Role }, now: number): Promise<{ record: ApiKeyRecord; key: string }> {
  assertName("name", input.name);
  // the hash column is unique and the id is only known after the insert: insert a placeholder first
  const placeholder = `pending-${crypto.randomUUID()}`;
  const inserted = await client.execute({
    sql: "INSERT INTO api_keys (name, key_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    args: [input.name, placeholder, input.role, now],
  });
  const id = Number(inserted.rows[0]?.id);
  const key = `kiln_${id}_${randomSecret()}`;
  await client.execute({ sql: "UPDATE api_keys SET key_hash = ? WHERE id = ?", args: [await sha256Hex(key), id] });
  return { record: { id, name: input.name, role: input.role, createdAt: now, lastUsedAt: null, revokedAt: null }, key };
}

/**
 * What an unknown key id is compared against: a hash no key has (its form is a SHA-256 hex, so
 * the comparison costs what a real one does), so a refusal takes the same work whether the id exists or not.
 */
const UNKNOWN_ID_HASH = "0".repeat(64);

/** How a presented key's hash is compared with the stored one; a parameter so a test can watch the work done. */
export type HashComparison = (presented: string, stored: string) => boolean;

/** The key's record when `key` is a live key, else null; with `now`, also records that the key was used. */
export async function verifyApiKey(client: SqlClient, key: string, now?: number, compare: HashComparison = constantTimeEqual): Promise<ApiKeyRecord | null> {
  const match = KEY_FORMAT.exec(key);
  if (!match) return null;
  const rs = await client.execute({ sql: "SELECT * FROM api_keys WHERE id = ?", args: [Number(match[1])] });
  const row = rs.rows[0];
  const hash = await sha256Hex(key);
  // one comparison of the same length whether or not the id exists, and before looking at revocation
  const stored = row ? String(row.key_hash) : UNKNOWN_ID_HASH;
  const equal = compare(hash, stored.length === hash.length ? stored : UNKNOWN_ID_HASH);
  if (!row || !equal || row.revoked_at !== null) return null;
  let lastUsedAt = row.last_used_at === null ? null : Number(row.last_used_at);
  // recorded at most once a minute per key: a write on every request would cost more than the request
  if (now !== undefined && (lastUsedAt === null || now - lastUsedAt >= LAST_USED_RESOLUTION_MS)) {
    await client.execute({ sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ?", args: [now, Number(row.id)] });
    lastUsedAt = now;
  }
  return {
    id: Number(row.id),
    name: String(row.name),
    role: String(row.role) as Role,
    createdAt: Number(row.created_at),
    lastUsedAt,
    revokedAt: null,
  };
}

/** How fresh an API key's last_used_at is kept (ms). */
export const LAST_USED_RESOLUTION_MS = 60_000;

function recordOf(row: Record<string, unknown>): ApiKeyRecord {
  return {
    id: Number(row.id),
    name: String(row.name),
    role: String(row.role) as Role,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
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
