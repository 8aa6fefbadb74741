/**
 * The API while its database cannot be reached (a sqld server stopped): every route that needs
 * the database answers 503 with Retry-After and the error code database_unavailable, never a 500
 * or a stack trace, and nothing is logged as a kiln bug.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { createApiKey } from "@kiln/core/auth";
import { loadProject } from "@kiln/core/project";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { folderSource, serveHttp } from "@kiln/node";
import { createApp } from "@kiln/server";
import { writeTempProject } from "../helpers/fixtures.ts";
import { startLibsqlServer, type LibsqlServer } from "../helpers/libsql-server.ts";

let sqld: LibsqlServer;
let server: { port: number; close(): Promise<void> };
let key = "";
const logged: string[] = [];

beforeAll(async () => {
  sqld = await startLibsqlServer();
  const client = createClient({ url: sqld.url });
  const store = await Store.open(client);
  const root = writeTempProject({
    "kiln.yaml": "executor_config:\n  in_process: true\n",
    "pipelines/p/metadata.yaml": "blocks:\n  - uuid: a\n    type: data_loader\n",
    "data_loaders/a.js": "export default () => 1;\n",
    "pipelines/p/triggers.yaml": "triggers:\n  - name: hook\n    schedule_type: api\n    status: active\n",
  });
  const project = await loadProject(folderSource(root), { executorTypes: ["local"] });
  const app = createApp(
    {
      store,
      project: () => project,
      clock: store.clock,
      version: "test",
      authEnabled: true,
      secretKey: await importSecretKey(generateSecretKey()),
      bodyLimitBytes: 1024 * 1024,
    },
    { log: (message) => logged.push(message) },
  );
  key = (await createApiKey(client, { name: "admin", role: "admin" }, Date.now())).key;
  server = await serveHttp(app.fetch, { port: 0, hostname: "127.0.0.1" });
});

afterAll(async () => {
  await server?.close();
  sqld?.stop();
});

const call = (method: string, path: string, body?: unknown) =>
  fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

describe("the API with its database out of reach", () => {
  test("answers 200 while sqld runs, then 503 with Retry-After and database_unavailable once it is stopped", async () => {
    expect((await call("GET", "/api/pipeline_runs")).status).toBe(200);
    sqld.stop();
    for (const [method, path, body] of [
      ["GET", "/api/pipeline_runs", undefined],
      ["GET", "/api/pipeline_schedules", undefined],
      ["POST", "/api/pipelines/p/pipeline_runs", { pipeline_run: { variables: {} } }],
      ["GET", "/metrics", undefined],
    ] as const) {
      const response = await call(method, path, body);
      const text = await response.text();
      expect({ path, status: response.status }).toEqual({ path, status: 503 });
      expect(response.headers.get("retry-after")).toBe("5");
      const json = JSON.parse(text) as { error: { code: string; message: string } };
      expect(json.error.code).toBe("database_unavailable");
      expect(json.error.message).toContain("database");
      // no stack, no driver message
      expect(text).not.toContain(" at ");
      expect(text).not.toContain("ECONNREFUSED");
    }
    // an unreachable database is no kiln bug: nothing logged as an internal error
    expect(logged.filter((line) => line.startsWith("internal error"))).toEqual([]);
    // /api/status still says what is wrong, as before
    const status = await call("GET", "/api/status");
    expect(status.status).toBe(503);
  });
});
