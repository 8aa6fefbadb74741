/**
 * What sessions need from the database: the key that signs session tokens, one for every
 * replica and every restart, and the tokens ended before their expiry (logout). Signing itself
 * is the server's (a JWT library); this module only keeps state.
 */
import type { SqlClient } from "../store/sql-client.ts";
import { decryptSecret, encryptSecret } from "../secrets.ts";
import { userFromRow, type UserRecord } from "./users.ts";

const SIGNING_KEY = "session_signing_key";
/** Associated data for the encrypted signing key, so it cannot be swapped with a secret's value. */
const SIGNING_KEY_AD = "kiln.session_signing_key";

/** The signing key is stored encrypted under KILN_SECRET_KEY and none (or another) is set. */
export class SessionKeyError extends Error {
  override readonly name = "SessionKeyError";
}

function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const freshKey = (): string => toBase64(crypto.getRandomValues(new Uint8Array(32)));

/**
 * The 32-byte key that signs session tokens, made on first use and stored only encrypted under
 * the secret key (KILN_SECRET_KEY or the key file beside the database), so a reader of the
 * database cannot mint tokens. Without a secret key there are no sessions. A key an older kiln
 * kept in the clear (`raw:`) was readable by anyone who read the database: it is replaced by a
 * new one, which ends the sessions it signed. Replicas racing to make or replace it agree on one.
 */
export async function sessionSigningKey(client: SqlClient, secretKey: CryptoKey | null, now: number): Promise<Uint8Array> {
  if (!secretKey) throw new SessionKeyError("sessions are unavailable: they need a secret key (KILN_SECRET_KEY) to keep their signing key encrypted, and none is set");
  const read = async () => (await client.execute({ sql: "SELECT value FROM server_settings WHERE key = ?", args: [SIGNING_KEY] })).rows[0]?.value;
  let stored = await read();
  if (stored === undefined) {
    await client.execute({
      sql: "INSERT INTO server_settings (key, value, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
      args: [SIGNING_KEY, await encryptSecret(secretKey, SIGNING_KEY_AD, freshKey()), now, now],
    });
    stored = await read();
  }
  let text = String(stored);
  if (text.startsWith("raw:")) {
    await client.execute({
      sql: "UPDATE server_settings SET value = ?, updated_at = ? WHERE key = ? AND value = ?",
      args: [await encryptSecret(secretKey, SIGNING_KEY_AD, freshKey()), now, SIGNING_KEY, text],
    });
    text = String(await read());
  }
  try {
    return fromBase64(await decryptSecret(secretKey, SIGNING_KEY_AD, text));
  } catch {
    throw new SessionKeyError("sessions are unavailable: their signing key was stored under another KILN_SECRET_KEY");
  }
}

/** Ends a session before its expiry; expired entries are dropped on the way. */
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
