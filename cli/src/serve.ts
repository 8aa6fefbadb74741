/**
 * Serving the API from the CLI (on Bun, Deno or Node): the deps the server needs from this process, the checks
 * that refuse an unsafe start, and a first admin key for a database that has no credentials.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApiKey, importSecretKey, type Project, type RunEngine } from "@kiln/core";
import { fileLogReader, runtimeName, serveHttp } from "@kiln/node";
import { consoleLog } from "@kiln/scheduler";
import { createApp } from "@kiln/server";
import { UsageError } from "./errors.ts";
import { VERSION } from "./version.ts";
import type { OpenProject } from "./project.ts";

export interface ServeOptions {
  open: OpenProject;
  project: () => Project;
  port: number;
  host: string;
  authDisabled: boolean;
  onRunsCreated?: (options?: { resumed?: boolean }) => void;
  engine?: RunEngine;
}

/** Where the first admin key is written for its owner to read (never to a log). */
export function adminKeyPath(projectRoot: string): string {
  return join(projectRoot, ".kiln", "admin-api-key");
}

/** Starts the HTTP server; resolves once it listens. */
export async function serveApi(options: ServeOptions): Promise<{ port: number; stop(): void }> {
  const { open } = options;
  const client = open.store.client;
  const events = eventsToken();
  const trustProxy = trustProxySetting();
  const rawKey = process.env.KILN_SECRET_KEY;
  let secretKey: CryptoKey | null = null;
  if (rawKey) {
    try {
      secretKey = await importSecretKey(rawKey);
    } catch (error) {
      throw new UsageError(`KILN_SECRET_KEY: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else {
    const stored = Number((await client.execute("SELECT count(*) AS n FROM secrets")).rows[0]?.n ?? 0);
    if (stored > 0) throw new UsageError(`KILN_SECRET_KEY is not set, and the database holds ${stored} secret(s) encrypted under it: set it to start the server`);
  }
  if (options.authDisabled) {
    consoleLog.warn("AUTHENTICATION IS OFF (--no-auth or KILN_AUTH=off): anyone who can reach this port can read and change everything");
  } else {
    await bootstrapAdminKey(open);
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
      ...(options.onRunsCreated ? { onRunsCreated: options.onRunsCreated } : {}),
      ...(options.engine ? { engine: options.engine } : {}),
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
 * A database with no users and no API keys gets one admin key, written to .kiln/admin-api-key
 * (mode 0600) so its owner can read it; only the path is logged.
 */
async function bootstrapAdminKey(open: OpenProject): Promise<void> {
  const client = open.store.client;
  const rs = await client.execute("SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM users) AS n");
  if (Number(rs.rows[0]?.n ?? 0) > 0) return;
  const { key } = await createApiKey(client, { name: "bootstrap-admin", role: "admin" }, open.store.clock.now());
  const path = adminKeyPath(open.project.root);
  mkdirSync(join(open.project.root, ".kiln"), { recursive: true });
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  consoleLog.warn(`no users or API keys existed: created an admin API key, written to ${path} (readable by this user only)`);
}

/** KILN_TRUST_PROXY: true when a reverse proxy in front sets X-Forwarded-Proto/-Host (off by default: anyone could send them). */
export function trustProxySetting(value = process.env.KILN_TRUST_PROXY): boolean {
  if (value === undefined || /^(|false|0|no|off)$/i.test(value.trim())) return false;
  if (/^(true|1|yes|on)$/i.test(value.trim())) return true;
  throw new UsageError(`KILN_TRUST_PROXY: expected true or false, got ${JSON.stringify(value)}`);
}

/** KILN_EVENTS_TOKEN, the project-level token for `POST /api/events`; refused when guessable. */
function eventsToken(): string | undefined {
  const token = process.env.KILN_EVENTS_TOKEN;
  if (token === undefined || token === "") return undefined;
  if (token.length < 16) throw new UsageError("KILN_EVENTS_TOKEN: expected at least 16 characters");
  return token;
}
