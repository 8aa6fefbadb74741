/**
 * Files kiln writes for itself (the database, `.kiln/`, logs, outputs) are private to the user
 * running it: directories 0700 and files 0600, set explicitly so a umask of 022 (the usual one)
 * does not leave them readable by every local user.
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, openSync, closeSync, writeFileSync } from "node:fs";

/** Mode of the directories kiln creates. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of the files kiln creates. */
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `dir` and its missing parents as 0700 (existing ones are left as they are). */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** Writes a whole file, created 0600. */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data, { mode: PRIVATE_FILE_MODE });
}

/** Appends to a file, created 0600 when missing. */
export function appendPrivateFile(path: string, data: string): void {
  appendFileSync(path, data, { mode: PRIVATE_FILE_MODE });
}

/**
 * Makes sure `path` exists as a 0600 file before another component (SQLite) creates it with
 * its default mode, and takes group and other access away from an existing one.
 */
export function ensurePrivateFile(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, "a", PRIVATE_FILE_MODE));
  chmodSync(path, PRIVATE_FILE_MODE);
}
