/**
 * API and event trigger tokens at rest. A token is a credential (it starts runs with variables
 * of the caller's choosing), so the database never holds it in plaintext: it is stored
 * encrypted under the secret key (AES-GCM, like secrets), because editors are shown a trigger's
 * URL again whenever they open it, as in Mage; and beside it a keyed digest (HMAC-SHA256 under a
 * key derived from the same secret key), indexed, so a presented token is found without
 * decrypting any row and compared in constant time.
 */
import { KilnError } from "./errors.ts";
import { decryptSecret, encryptSecret, secretDigest } from "./secrets.ts";

/** What the store keeps of a token. */
export interface SealedToken {
  /** `v1:<nonce>:<ciphertext>`, see secrets.ts. */
  sealed: string;
  /** HMAC-SHA256 of the token, base64url. */
  digest: string;
}

/** Associated data of a sealed token and the digest's label: a sealed secret cannot pass for one. */
const TOKEN_LABEL = "pipeline_schedule.token";

/** A token needed sealing or opening, and this process has no secret key to do it with (a conflict with how kiln was started, as for secrets). */
export class TokenKeyError extends KilnError {
  constructor(message: string) {
    super("conflict", `${message}: set KILN_SECRET_KEY and restart`);
    this.name = "TokenKeyError";
  }
}

/** Encrypts a token and computes its digest. */
export async function sealToken(key: CryptoKey, token: string): Promise<SealedToken> {
  const [sealed, digest] = await Promise.all([encryptSecret(key, TOKEN_LABEL, token), tokenDigest(key, token)]);
  return { sealed, digest };
}

/** The digest a token is looked up by. */
export function tokenDigest(key: CryptoKey, token: string): Promise<string> {
  return secretDigest(key, TOKEN_LABEL, token);
}

/** The token a sealed value holds; fails if it was sealed under another key. */
export function openToken(key: CryptoKey, sealed: string): Promise<string> {
  return decryptSecret(key, TOKEN_LABEL, sealed).catch(() => {
    throw new Error("a trigger token cannot be decrypted with this secret key (KILN_SECRET_KEY or the key file): it was sealed under another");
  });
}
