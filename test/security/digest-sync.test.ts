/**
 * Keyed digests (trigger-token lookup) made by the runtime's synchronous HMAC (@kiln/node's
 * syncHmacSha256, node:crypto) are the digests WebCrypto makes under the same key, so tokens
 * stored by either are found by the other; a key resolved for a Bun, Deno or Node process signs
 * on the calling thread, never through WebCrypto's sign. In the runtime suite (Deno, Node).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretKey, importSecretKey, sealToken, secretDigest, tokenDigest } from "@kiln/core/runtime";
import { resolveSecretKey, syncHmacSha256 } from "@kiln/node";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const TOKENS = ["", "a", "0123456789abcdef0123456789abcdef", "ünïcödé ✓", "x".repeat(1000)];

test("the synchronous HMAC gives WebCrypto's digests, for every label and token", async () => {
  const base64 = generateSecretKey();
  const [webcrypto, sync] = await Promise.all([importSecretKey(base64), importSecretKey(base64, { syncHmac: syncHmacSha256 })]);
  for (const token of TOKENS) {
    expect(await tokenDigest(sync, token)).toBe(await tokenDigest(webcrypto, token));
    expect(await secretDigest(sync, "another label", token)).toBe(await secretDigest(webcrypto, "another label", token));
  }
  // a token sealed under one is found by the digest of the other
  const sealed = await sealToken(webcrypto, TOKENS[2]!);
  expect(await tokenDigest(sync, TOKENS[2]!)).toBe(sealed.digest);
  // keyed: another key, another digest
  const other = await importSecretKey(generateSecretKey(), { syncHmac: syncHmacSha256 });
  expect(await tokenDigest(other, TOKENS[2]!)).not.toBe(sealed.digest);
});

test("the key bytes handed to the synchronous HMAC are wiped after it copied them", async () => {
  const seen: Uint8Array[] = [];
  const base64 = generateSecretKey();
  const key = await importSecretKey(base64, {
    syncHmac: (bytes) => {
      seen.push(bytes);
      return syncHmacSha256(bytes);
    },
  });
  expect(seen).toHaveLength(1);
  expect(seen[0]!.length).toBe(32);
  expect([...seen[0]!].every((b) => b === 0)).toBe(true);
  // and the digests still come out right: the HMAC kept its own copy
  expect(await tokenDigest(key, "t")).toBe(await tokenDigest(await importSecretKey(base64), "t"));
});

test("a key resolved for this process (KILN_SECRET_KEY or the key file) signs without WebCrypto", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-digest-"));
  dirs.push(dir);
  const base64 = generateSecretKey();
  const fromEnv = await resolveSecretKey(dir, `file:${join(dir, "kiln.db")}`, base64, { create: false });
  const fromFile = await resolveSecretKey(dir, `file:${join(dir, "kiln.db")}`, undefined, { create: true });
  // counts WebCrypto's sign calls while `fn` runs
  const subtle = crypto.subtle;
  const sign = subtle.sign;
  const signsDuring = async (fn: () => Promise<unknown>): Promise<number> => {
    let signs = 0;
    Object.defineProperty(subtle, "sign", { configurable: true, writable: true, value: (...args: Parameters<SubtleCrypto["sign"]>) => (signs++, sign.apply(subtle, args)) });
    try {
      await fn();
    } finally {
      Object.defineProperty(subtle, "sign", { configurable: true, writable: true, value: sign });
    }
    return signs;
  };
  const digests: string[] = [];
  expect(await signsDuring(async () => digests.push(await tokenDigest(fromEnv!.key, "token"), await tokenDigest(fromFile!.key, "token")))).toBe(0);
  expect(digests[0]).toBe(await tokenDigest(await importSecretKey(base64), "token"));
  expect(digests[1]).not.toBe(digests[0]);
  // what was counted is WebCrypto's path: a key imported without the runtime's HMAC takes it
  const plain = await importSecretKey(base64);
  expect(await signsDuring(() => tokenDigest(plain, "token"))).toBe(1);
});
