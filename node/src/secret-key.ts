/**
 * The key that encrypts secrets, trigger tokens and the session signing key at rest:
 * KILN_SECRET_KEY when it is set; otherwise a key file of mode 0600 beside the database, made
 * on first start. The file keeps a reader of the database alone from decrypting anything or
 * minting sessions, but whoever reads the file can: it belongs with the database's backups and
 * nowhere else.
 */
import { closeSync, existsSync, linkSync, readFileSync, rmSync, writeSync, openSync } from "node:fs";
import { dirname, join } from "node:path";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { makePrivateDir, PRIVATE_FILE_MODE } from "./private-files.ts";
import { syncHmacSha256 } from "./sync-hmac.ts";

/** Where a secret key came from. */
export interface SecretKeySource {
  key: CryptoKey;
  /** The key file, when the key came from one (null: KILN_SECRET_KEY). */
  file: string | null;
  /** Whether this call made the key file. */
  created: boolean;
}

/** The key file for a database: `<database file>.key` for `file:` URLs, `.kiln/secret.key` in the project otherwise. */
export function secretKeyFile(projectRoot: string, databaseUrl: string): string {
  if (databaseUrl.startsWith("file:") && databaseUrl !== "file::memory:") return `${databaseUrl.slice("file:".length)}.key`;
  return join(projectRoot, ".kiln", "secret.key");
}

/** A key file's contents as a key; the error names the file. */
async function readKeyFile(path: string): Promise<CryptoKey> {
  const text = readFileSync(path, "utf8");
  try {
    return await importSecretKey(text, { syncHmac: syncHmacSha256 });
  } catch (error) {
    throw new Error(`${path}: ${error instanceof Error ? error.message.replace(/^KILN_SECRET_KEY: /, "") : String(error)} (the key file kiln made when KILN_SECRET_KEY was not set)`);
  }
}

/**
 * Resolves the secret key: `envValue` (KILN_SECRET_KEY) first, else the key file. With
 * `create`, a missing file is made (0600, written whole before it appears, so a replica
 * starting at the same moment reads the same key or makes none); without it, null.
 */
export async function resolveSecretKey(projectRoot: string, databaseUrl: string, envValue: string | undefined, { create }: { create: boolean }): Promise<SecretKeySource | null> {
  if (envValue !== undefined && envValue !== "") return { key: await importSecretKey(envValue, { syncHmac: syncHmacSha256 }), file: null, created: false };
  const path = secretKeyFile(projectRoot, databaseUrl);
  if (existsSync(path)) return { key: await readKeyFile(path), file: path, created: false };
  if (!create) return null;
  makePrivateDir(dirname(path));
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  const fd = openSync(temp, "wx", PRIVATE_FILE_MODE);
  try {
    writeSync(fd, `${generateSecretKey()}\n`);
  } finally {
    closeSync(fd);
  }
  let created = true;
  try {
    // link fails if the name exists: the first process to link wins, the others read its key
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    created = false;
  } finally {
    rmSync(temp, { force: true });
  }
  return { key: await readKeyFile(path), file: path, created };
}
