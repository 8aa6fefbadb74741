/**
 * API keys: `kiln_<id>_<secret>`. Only the SHA-256 of a key is stored; a presented key is found
 * by its id and its hash compared in constant time, so neither the table nor the timing of a
 * refusal gives a key away.
 */
import { assertName } from "../bounds.ts";
import type { SqlClient } from "../store/sql-client.ts";
import * as apiKeys from "../store/api-keys.ts";
import type { ApiKeyRecord } from "../store/api-keys.ts";
import { constantTimeEqual, sha256Hex } from "./constant-time.ts";
import type { Role } from "./roles.ts";

// listing and revoking keys has no rule beyond the store's
export { getApiKey, listApiKeys, revokeApiKey, type ApiKeyRecord } from "../store/api-keys.ts";

const KEY_FORMAT = /^kiln_([1-9][0-9]{0,15})_([A-Za-z0-9_-]{43})$/;

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A fresh key for the key id `id`, and the hash stored for it (for a database kiln reaches only through another tool, such as D1). */
export async function newApiKey(id: number): Promise<{ key: string; keyHash: string }> {
  const key = `kiln_${id}_${randomSecret()}`;
  return { key, keyHash: await sha256Hex(key) };
}

/** Creates a key with `role`; the returned `key` is shown once and never stored. */
export async function createApiKey(client: SqlClient, input: { name: string; role: Role }, now: number): Promise<{ record: ApiKeyRecord; key: string }> {
  assertName("name", input.name);
  // the hash column is unique and the id is only known after the insert: insert a placeholder first
  const placeholder = `pending-${crypto.randomUUID()}`;
  const id = await apiKeys.insertApiKey(client, { name: input.name, role: input.role, placeholder }, now);
  const { key, keyHash } = await newApiKey(id);
  await apiKeys.setApiKeyHash(client, id, keyHash);
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
  const found = await apiKeys.apiKeyWithHash(client, Number(match[1]));
  const hash = await sha256Hex(key);
  // one comparison of the same length whether or not the id exists, and before looking at revocation
  const stored = found ? found.keyHash : UNKNOWN_ID_HASH;
  const equal = compare(hash, stored.length === hash.length ? stored : UNKNOWN_ID_HASH);
  if (!found || !equal || found.record.revokedAt !== null) return null;
  let lastUsedAt = found.record.lastUsedAt;
  // recorded at most once a minute per key: a write on every request would cost more than the request
  if (now !== undefined && (lastUsedAt === null || now - lastUsedAt >= LAST_USED_RESOLUTION_MS)) {
    await apiKeys.touchApiKey(client, found.record.id, now);
    lastUsedAt = now;
  }
  return { ...found.record, lastUsedAt, revokedAt: null };
}

/** How fresh an API key's last_used_at is kept (ms). */
export const LAST_USED_RESOLUTION_MS = 60_000;
