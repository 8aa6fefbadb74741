/**
 * Serving the API from the CLI (on Bun, Deno or Node): the deps the server needs from this process, the checks
 * that refuse an unsafe start, and a first admin key for a database that has no credentials.
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { TriggerFileWriter } from "@kiln/core/api";
import type { RunEngine } from "@kiln/core/engine";
import type { Project } from "@kiln/core/project";
import { fileLogReader, runtimeName, serveHttp } from "@kiln/node";
import { consoleLog } from "@kiln/scheduler";
import { createApp, parseTrustProxy } from "@kiln/server";
import { UsageError } from "./errors.ts";
import { VERSION } from "./version.ts";
import { kilnSecret } from "./kiln-env.ts";
import { projectSecretKey, sealPlaintextTokens } from "./project-key.ts";
import type { OpenProject } from "./project.ts";

export interface ServeOptions {
  open: OpenProject;
  project: () => Project;
  port: number;
  host: string;
  authDisabled: boolean;
  engine?: RunEngine;
  /** Writes API edits of code triggers back to triggers.yaml (see core's code-triggers.ts). */
  triggerFiles?: TriggerFileWriter;
}

/** Where kiln before 0.2 wrote the first admin key; it is removed at start (see noCredentialsHint). */
export function legacyAdminKeyPath(projectRoot: string): string {
  return join(projectRoot, ".kiln", "admin-api-key");
}

/** Starts the HTTP server; resolves once it listens. */
export async function serveApi(options: ServeOptions): Promise<{ port: number; stop(): void }> {
  const { open } = options;
  const events = eventsToken();
  const trustProxy = trustProxySetting();
  const secretKey = await serverSecretKey(open);
  await sealPlaintextTokens(open.store, consoleLog);
  if (options.authDisabled) {
    consoleLog.warn("AUTHENTICATION IS OFF (--no-auth or KILN_AUTH=off): anyone who can reach this port can read and change everything");
  } else {
    await noCredentialsHint(open);
  }
  const app = createApp(
    {
      store: open.store,
      project: options.project,
      clock: open.store.clock,
      version: VERSION,
      authEnabled: !options.authDisabled,
      secretKey,
      bodyLimitBytes: 1024 * 1024,
      logs: fileLogReader(open.project.root),
      ...(options.engine ? { engine: options.engine } : {}),
      ...(options.triggerFiles ? { triggerFiles: options.triggerFiles } : {}),
      ...(events ? { eventsToken: events } : {}),
      trustProxy,
    },
    { log: (message) => consoleLog.error(message) },
  );
  const server = await serveHttp(app.fetch, { port: options.port, hostname: options.host });
  consoleLog.info(`kiln server listening on http://${options.host}:${server.port} (version ${VERSION}, ${runtimeName()})`);
  return { port: server.port, stop: () => void server.close() };
}

/**
 * The first admin credential is made by its owner with `kiln api-key create` (or `kiln user
 * create`), which prints it once; kiln keeps no credential on disk, where a block run as the
 * same user could read it. A key file an older kiln wrote (.kiln/admin-api-key) is removed.
 */
async function noCredentialsHint(open: OpenProject): Promise<void> {
  const legacy = legacyAdminKeyPath(open.project.root);
  if (existsSync(legacy)) {
    rmSync(legacy, { force: true });
    consoleLog.warn(`removed ${legacy}: kiln no longer keeps an admin key on disk, where blocks could read it (the key itself still works; revoke it with kiln api-key revoke if it may have been read)`);
  }
  if ((await open.store.credentialCount()) > 0) return;
  consoleLog.warn(`no users or API keys exist yet: create the first admin with \`kiln api-key create --project ${open.project.root} --role admin\` (the key is printed once) or \`kiln user create\``);
}

/**
 * The server's secret key: KILN_SECRET_KEY, else the key file beside the database (made now if
 * missing, with a warning at every start that secrets and sessions depend on that file). A
 * database that holds secrets but has neither was set up with a KILN_SECRET_KEY: refused.
 */
async function serverSecretKey(open: OpenProject): Promise<CryptoKey> {
  const source = await projectSecretKey(open.project.root, open.databaseUrl, open.store, { create: true });
  if (!source) throw new Error("no secret key was resolved although one was to be created");
  if (source.file) {
    consoleLog.warn(
      `KILN_SECRET_KEY is not set: secrets, trigger tokens and sessions are encrypted under the key file ${source.file}${source.created ? " (made now)" : ""}, readable by this user only. ` +
        "Losing it loses them; whoever reads it can decrypt them: keep it with the database's backups, or set KILN_SECRET_KEY instead",
    );
  }
  // trigger tokens are sealed under the same key as secrets and sessions
  open.store.useSecretKey(source.key);
  return source.key;
}

/** KILN_TRUST_PROXY: true when a reverse proxy in front sets X-Forwarded-Proto/-Host (off by default: anyone could send them). */
export function trustProxySetting(value = process.env.KILN_TRUST_PROXY): boolean {
  const trusted = parseTrustProxy(value);
  if (trusted !== null) return trusted;
  throw new UsageError(`KILN_TRUST_PROXY: expected true or false, got ${JSON.stringify(value)}`);
}

/** KILN_EVENTS_TOKEN, the project-level token for `POST /api/events`; refused when guessable. */
function eventsToken(): string | undefined {
  const token = kilnSecret("KILN_EVENTS_TOKEN");
  if (token === undefined || token === "") return undefined;
  if (token.length < 16) throw new UsageError("KILN_EVENTS_TOKEN: expected at least 16 characters");
  return token;
}
