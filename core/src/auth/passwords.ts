/**
 * Password hashing with PBKDF2-SHA256 through WebCrypto, so the same code runs on Bun, Node,
 * Deno and Workers. The stored form describes itself (`pbkdf2-sha256$<iterations>$<salt>$<hash>`,
 * base64 parts): a hash made with an older iteration count still verifies after the default rises.
 */
import { KilnError } from "../errors.ts";
import { constantTimeEqual } from "./constant-time.ts";

/**
 * OWASP's 2023 figure for PBKDF2-SHA256. Cloudflare Workers refuse more than 100,000 iterations:
 * a deployment there hashes with `{ iterations: 100_000 }` and verifies what it stored.
 */
export const DEFAULT_PASSWORD_ITERATIONS = 600_000;
/** A stored hash asking for more work than this is refused unread, so a crafted row cannot pin a CPU. */
const MAX_ITERATIONS = 10_000_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;
const FORMAT = /^pbkdf2-sha256\$([1-9][0-9]{0,7})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number, bits: number): Promise<Uint8Array> {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(password.normalize("NFC")), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, material, bits));
}

/** Hashes a password with a fresh random salt, in the self-describing stored form. */
export async function hashPassword(password: string, options: { iterations?: number } = {}): Promise<string> {
  const iterations = options.iterations ?? DEFAULT_PASSWORD_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new Error(`password hashing: iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, iterations, HASH_BITS);
  return `pbkdf2-sha256$${iterations}$${toBase64(salt)}$${toBase64(hash)}`;
}

/** A stored hash that asks for more PBKDF2 iterations than this runtime can compute (Workers: 100,000). */
export class PasswordCostError extends KilnError {
  override readonly name = "PasswordCostError";

  constructor(
    readonly iterations: number,
    readonly maxIterations: number,
  ) {
    super(
      "unsupported",
      `this password was hashed with ${iterations} PBKDF2 iterations, and this runtime computes at most ${maxIterations} ` +
        "(Cloudflare Workers' limit): sign in where kiln runs on Bun, Deno or Node, or have an admin set the password again here",
    );
  }
}

/**
 * Whether `password` matches a stored hash; false (never a throw) for a malformed one. Compared
 * in constant time. A hash costlier than `maxIterations` throws PasswordCostError.
 */
export async function verifyPassword(password: string, stored: string, options: { maxIterations?: number } = {}): Promise<boolean> {
  const match = FORMAT.exec(stored);
  if (!match) return false;
  const iterations = Number(match[1]);
  if (iterations > MAX_ITERATIONS) return false;
  if (options.maxIterations !== undefined && iterations > options.maxIterations) throw new PasswordCostError(iterations, options.maxIterations);
  const salt = fromBase64(match[2] as string);
  const expected = fromBase64(match[3] as string);
  if (salt.length === 0 || expected.length === 0) return false;
  const actual = await derive(password, salt, iterations, expected.length * 8);
  return constantTimeEqual(toBase64(actual), toBase64(expected));
}

const decoys = new Map<number, Promise<string>>();

/**
 * A hash of no one's password at the given cost (the default unless told): checked against when
 * the username is unknown, so a refusal takes as long whether or not the user exists.
 */
export function decoyPasswordHash(iterations: number = DEFAULT_PASSWORD_ITERATIONS): Promise<string> {
  let decoy = decoys.get(iterations);
  if (!decoy) {
    decoy = hashPassword(crypto.randomUUID(), { iterations });
    decoys.set(iterations, decoy);
  }
  return decoy;
}
