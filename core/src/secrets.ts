/**
 * Secrets at rest: AES-256-GCM through WebCrypto (available on every runtime kiln targets),
 * with a random 96-bit nonce per value. The key comes from KILN_SECRET_KEY: 32 bytes, base64.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * A synchronous HMAC-SHA256 the runtime offers, given the digest key's bytes (node:crypto's
 * createHmac on Bun, Node and Deno; see @kiln/node's syncHmacSha256). It must copy the bytes it
 * keeps: the caller wipes them. Without one, digests go through WebCrypto's sign, which on Bun
 * runs on another thread and costs the request a thread's wake (the tail of an API trigger).
 */
export type SyncHmacFactory = (key: Uint8Array) => (data: Uint8Array) => Uint8Array;

/** The HKDF parameters of the digest key: changing them would orphan every stored digest. */
const DIGEST_KEY_HKDF = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: enc.encode("kiln digest key v1") } as const;

/** How a secret key's digests are made: WebCrypto's HMAC key, or the runtime's synchronous HMAC over the same key bytes. */
type DigestSigner = { kind: "webcrypto"; key: CryptoKey } | { kind: "sync"; sign: (data: Uint8Array) => Uint8Array };

/**
 * Imports a base64 key of 32 bytes; the error names KILN_SECRET_KEY so users know what to fix.
 * `syncHmac` (a runtime adapter's) makes its digests synchronously; the digests are the same.
 */
export async function importSecretKey(base64Key: string, options: { syncHmac?: SyncHmacFactory } = {}): Promise<CryptoKey> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = fromBase64(base64Key.trim());
  } catch {
    throw new Error("KILN_SECRET_KEY: expected 32 bytes encoded as base64, got text that is not base64");
  }
  if (raw.length !== 32) throw new Error(`KILN_SECRET_KEY: expected 32 bytes encoded as base64, got ${raw.length} bytes`);
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  // a second key for keyed digests (trigger-token lookup), derived so that neither key reveals
  // the other; kept beside the AES key, which stays non-extractable
  const base = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey", "deriveBits"]);
  if (options.syncHmac) {
    // the same 256 bits deriveKey below would make the HMAC key of, handed to the runtime's HMAC
    const bits = new Uint8Array(await crypto.subtle.deriveBits(DIGEST_KEY_HKDF, base, 256));
    try {
      DIGEST_SIGNERS.set(key, { kind: "sync", sign: options.syncHmac(bits) });
    } finally {
      bits.fill(0);
    }
    return key;
  }
  const digestKey = await crypto.subtle.deriveKey(DIGEST_KEY_HKDF, base, { name: "HMAC", hash: "SHA-256", length: 256 }, false, ["sign"]);
  DIGEST_SIGNERS.set(key, { kind: "webcrypto", key: digestKey });
  return key;
}

/** How importSecretKey made each secret key's digests. */
const DIGEST_SIGNERS = new WeakMap<CryptoKey, DigestSigner>();

function base64url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A keyed digest (HMAC-SHA256, base64url) of `value` under the secret key, labelled by `label`:
 * the same value gives the same digest, so it can be looked up by an index, and nobody without
 * the key can test a guess against it.
 */
export async function secretDigest(key: CryptoKey, label: string, value: string): Promise<string> {
  const signer = DIGEST_SIGNERS.get(key);
  if (!signer) throw new Error("secret digest: the key was not made by importSecretKey, so it has no digest key");
  const data = enc.encode(`${label}\u0000${value}`);
  if (signer.kind === "sync") return base64url(signer.sign(data));
  return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", signer.key, data)));
}

/** A new random key, base64, for `kiln init` and for tests. */
export function generateSecretKey(): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(32)));
}

/** Encrypts a value as `v1:<nonce>:<ciphertext>` (base64 parts); the name is bound as associated data. */
export async function encryptSecret(key: CryptoKey, name: string, value: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: enc.encode(name) }, key, enc.encode(value));
  return `v1:${toBase64(iv)}:${toBase64(new Uint8Array(data))}`;
}

/** Decrypts what encryptSecret made; fails if the key, the name or the bytes differ. */
export async function decryptSecret(key: CryptoKey, name: string, stored: string): Promise<string> {
  const [version, iv, data] = stored.split(":");
  if (version !== "v1" || !iv || !data) throw new Error(`secret ${name}: unknown storage format`);
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: fromBase64(iv), additionalData: enc.encode(name) },
      key,
      fromBase64(data),
    );
    return dec.decode(plain);
  } catch {
    throw new Error(`secret ${name}: cannot decrypt it with this KILN_SECRET_KEY`);
  }
}
