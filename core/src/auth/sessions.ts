/**
 * What sessions need from the database: the key that signs session tokens, one for every
 * replica and every restart, and the tokens ended before their expiry (logout). Signing itself
 * is the server's (a JWT library); this module only keeps state.
 */
import type { SqlClient } from "../store/sql-client.ts";
import { addServerSetting, getServerSetting, replaceServerSetting } from "../store/server-settings.ts";
import { decryptSecret, encryptSecret } from "../secrets.ts";

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
  const read = () => getServerSetting(client, SIGNING_KEY);
  let stored = await read();
  if (stored === undefined) {
    await addServerSetting(client, SIGNING_KEY, await encryptSecret(secretKey, SIGNING_KEY_AD, freshKey()), now);
    stored = await read();
  }
  let text = String(stored);
  if (text.startsWith("raw:")) {
    await replaceServerSetting(client, SIGNING_KEY, text, await encryptSecret(secretKey, SIGNING_KEY_AD, freshKey()), now);
    text = String(await read());
  }
  try {
    return fromBase64(await decryptSecret(secretKey, SIGNING_KEY_AD, text));
  } catch {
    throw new SessionKeyError("sessions are unavailable: their signing key was stored under another KILN_SECRET_KEY");
  }
}

// ending a session and checking it has no rule beyond the store's
export { liveSessionUser, revokeSession } from "../store/users.ts";
