/**
 * The real server over loopback HTTP: a project fixture, a scheduler ticking on the real clock,
 * the Hono app served on a free port (by whichever runtime runs the tests), and an API key per role.
 */
import { join } from "node:path";
import { createApiKey, type Role } from "@kiln/core/auth";
import { createApp, type ServerDeps } from "@kiln/server";
import { fileLogReader, serveHttp } from "@kiln/node";
import { Scheduler, silentLog } from "@kiln/scheduler";
import { fixtureSecretKey, projectFixture, type Fixture } from "./fixtures.ts";

export interface ServerFixture extends Fixture {
  url: string;
  keys: Record<Role, string>;
  scheduler: Scheduler;
  /** A request with the role's key (or none), answering status and parsed JSON. */
  call(method: string, path: string, options?: { role?: Role | null; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** An example-like project: one pipeline `etl` with two chained blocks run in process. */
export const SERVER_PROJECT: Record<string, string> = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/etl/metadata.yaml": "name: ETL\nblocks:\n  - uuid: load\n    type: data_loader\n  - uuid: shape\n    type: transformer\n    upstream_blocks: [load]\n",
  "data_loaders/load.js": "export default function load(ctx) { ctx.logger.info('loading ' + JSON.stringify(ctx.variables.date ?? null)); return { rows: [1, 2, 3], event: ctx.event ?? null }; }\n",
  "transformers/shape.js": "export default function shape(data) { return { count: data.rows.length }; }\n",
};

/** Starts the server (auth on unless `authEnabled: false`) over a fresh project. */
export async function serverFixture(
  files: Record<string, string> = SERVER_PROJECT,
  options: Partial<Omit<ServerDeps, "store" | "clock">> & { tickIntervalMs?: number } = {},
): Promise<ServerFixture> {
  const fx = await projectFixture(files);
  const scheduler = new Scheduler({ store: fx.store, project: fx.project, engine: fx.engine, log: silentLog, tickIntervalMs: options.tickIntervalMs ?? 200 });
  const deps: ServerDeps = {
    store: fx.store,
    project: () => fx.project,
    clock: fx.store.clock,
    version: "test",
    authEnabled: true,
    // the key file beside the database, as `kiln start` makes without KILN_SECRET_KEY: a block in
    // its own process (kiln run-block) reads the same key
    secretKey: await fixtureSecretKey(fx.root, `file:${join(fx.root, ".kiln/kiln.db")}`)(),
    bodyLimitBytes: 1024 * 1024,
    engine: fx.engine,
    logs: fileLogReader(fx.root),
    ...options,
  };
  // tokens are sealed under the server's key, as `kiln start` does
  if (deps.secretKey) fx.store.useSecretKey(deps.secretKey);
  const app = createApp(deps, { log: () => {} });
  const server = await serveHttp(app.fetch, { port: 0, hostname: "127.0.0.1" });
  const keys = {} as Record<Role, string>;
  for (const role of ["viewer", "editor", "admin"] as const) keys[role] = (await createApiKey(fx.client, { name: `test-${role}`, role }, Date.now())).key;
  scheduler.start();
  const url = `http://127.0.0.1:${server.port}`;
  return {
    ...fx,
    url,
    keys,
    scheduler,
    async call(method, path, callOptions = {}) {
      const role = callOptions.role === undefined ? "admin" : callOptions.role;
      const headers: Record<string, string> = { ...(callOptions.headers ?? {}) };
      if (role) headers.authorization = `Bearer ${keys[role]}`;
      let body: string | undefined = callOptions.rawBody;
      if (callOptions.body !== undefined) {
        body = JSON.stringify(callOptions.body);
        headers["content-type"] = "application/json";
      }
      const response = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await response.text();
      let json: Record<string, unknown> = {};
      try {
        json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        json = { text };
      }
      return { status: response.status, json };
    },
    async close() {
      await scheduler.stop(5_000);
      await server.close();
      fx.cleanup();
    },
  };
}
