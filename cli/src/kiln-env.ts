/**
 * kiln's own credentials are taken out of process.env as the CLI starts, so that no block
 * inherits them: not one run in kiln's own process (in_process), not a `kiln run-block` child,
 * not a Python process a block starts. kiln reads them from here instead. A child kiln gets
 * what it needs on its stdin (see handoff below), never in its environment, which a block could
 * read back from /proc/self/environ.
 */

/** The variables that are kiln's alone: keys, tokens and credentials no block needs. */
export const KILN_SECRET_VARIABLES = [
  "KILN_SECRET_KEY",
  "KILN_EVENTS_TOKEN",
  "KILN_DATABASE_AUTH_TOKEN",
  "KILN_S3_ACCESS_KEY_ID",
  "KILN_S3_SECRET_ACCESS_KEY",
  "KILN_S3_SESSION_TOKEN",
  // not a key for a file, but a remote database's URL can carry credentials, and no block needs it
  "KILN_DATABASE_URL",
] as const;

/** Set in a child kiln's environment when its credentials wait on stdin. */
export const HANDOFF_ENV = "KILN_HANDOFF";

const held = new Map<string, string>();

/** Moves kiln's credentials from process.env into this module (called first thing by the CLI). */
export function takeKilnSecrets(env: Record<string, string | undefined> = process.env): void {
  for (const name of KILN_SECRET_VARIABLES) {
    const value = env[name];
    if (value !== undefined) held.set(name, value);
    delete env[name];
  }
}

/** One of kiln's credentials: taken at start, or still in process.env (when the CLI's entry did not run, as in tests). */
export function kilnSecret(name: (typeof KILN_SECRET_VARIABLES)[number]): string | undefined {
  return held.get(name) ?? process.env[name];
}

/** process.env with kiln's credentials put back, for the code that reads settings from an environment. */
export function kilnEnv(): Record<string, string | undefined> {
  return { ...process.env, ...Object.fromEntries(held) };
}

/** What a child `kiln run-block` is handed on stdin: the database, its token, the secret key and the S3 output store's credentials. */
export function handoffFor(values: { databaseUrl: string; secretKey?: string }): Record<string, string> {
  const out: Record<string, string> = { KILN_DATABASE_URL: values.databaseUrl };
  // the child records the block's outputs itself, so it needs what the output store signs with
  for (const name of ["KILN_DATABASE_AUTH_TOKEN", "KILN_S3_ACCESS_KEY_ID", "KILN_S3_SECRET_ACCESS_KEY", "KILN_S3_SESSION_TOKEN"] as const) {
    const value = kilnSecret(name);
    if (value) out[name] = value;
  }
  const secretKey = values.secretKey ?? kilnSecret("KILN_SECRET_KEY");
  if (secretKey) out.KILN_SECRET_KEY = secretKey;
  return out;
}

/** In a child kiln started with a handoff: reads it from stdin (one JSON object) into this module. */
export async function receiveHandoff(): Promise<void> {
  if (process.env[HANDOFF_ENV] !== "stdin") return;
  delete process.env[HANDOFF_ENV];
  let text = "";
  for await (const chunk of process.stdin) text += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk as Uint8Array);
  acceptHandoff(JSON.parse(text) as Record<string, unknown>);
}

/** Takes a handoff's values into this module: what a warm `kiln run-block` gets with each block run on stdin. */
export function acceptHandoff(values: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(values)) {
    if (typeof value !== "string") continue;
    if ((KILN_SECRET_VARIABLES as readonly string[]).includes(name)) held.set(name, value);
  }
}

/** Removes every kiln credential from process.env again (anything set since the start): the last step before user code runs. */
export function scrubBlockEnvironment(): void {
  takeKilnSecrets();
}
