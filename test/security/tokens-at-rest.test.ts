/**
 * Trigger tokens at rest: the database holds them encrypted (shown again to editors) with a
 * keyed digest for the public routes' lookup, never in plaintext; rows an older kiln wrote in
 * plaintext are sealed by the first `kiln start`, their bytes overwritten in the file and WAL.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { createSchedule } from "@kiln/core/api";
import { generateSecretKey, importSecretKey, TokenKeyError } from "@kiln/core/runtime";
import { migrate, MIGRATIONS, Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { CLI_MAIN, createAdminKey, REPO_ROOT, TempDirs, waitFor } from "../helpers/cli.ts";
import { projectFixture } from "../helpers/fixtures.ts";
import { freePort } from "../helpers/ports.ts";
import { serverFixture } from "../helpers/server.ts";

const dirs = new TempDirs();
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  dirs.removeAll();
});

/** Whether `needle` occurs in the database file or its WAL, as text (the bytes SQLite wrote). */
function inDatabaseFiles(dbPath: string, needle: string): string[] {
  const found: string[] = [];
  for (const file of [dbPath, `${dbPath}-wal`]) {
    if (existsSync(file) && readFileSync(file).includes(Buffer.from(needle))) found.push(file);
  }
  return found;
}

const CANARY_API = "canary-api-token-7Q3xZ9kP2mW8";
const CANARY_EVENT = "canary-event-token-R5tY1uI4oP6";
const CANARY_SET = "canary-set-later-token-L0kJ9hG8";

describe("tokens written through the API", () => {
  test("the trigger routes work with them, editors see them, viewers never, rotation works, and no token is in the database's bytes", async () => {
    const s = await serverFixture();
    try {
      const api = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { role: "editor", body: { pipeline_schedule: { name: "api_canary", schedule_type: "api", status: "active", token: CANARY_API } } });
      const event = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", {
        role: "editor",
        body: { pipeline_schedule: { name: "event_canary", schedule_type: "event", status: "active", token: CANARY_EVENT, event_pattern: { source: ["shop"] } } },
      });
      expect(api.status).toBe(201);
      expect(event.status).toBe(201);
      // shown in full at creation to the editor who made it
      const apiId = (api.json.pipeline_schedule as { id: number; token: string }).id;
      const eventId = (event.json.pipeline_schedule as { id: number }).id;
      expect((api.json.pipeline_schedule as { token: string }).token).toBe(CANARY_API);

      // the public routes accept the tokens (looked up by digest) and nothing else
      expect((await s.call("POST", `/api/pipeline_schedules/${apiId}/pipeline_runs/${CANARY_API}`, { role: null, body: {} })).status).toBe(201);
      expect((await s.call("POST", `/api/pipeline_schedules/${apiId}/pipeline_runs/${CANARY_EVENT}`, { role: null, body: {} })).status).toBe(401);
      expect((await s.call("POST", `/api/pipeline_schedules/${eventId}/pipeline_runs/${CANARY_EVENT}`, { role: null, body: {} })).status).toBe(401);
      const fired = await s.call("POST", "/api/events", { role: null, headers: { authorization: `Bearer ${CANARY_EVENT}` }, body: { source: "shop" } });
      expect(fired.status).toBe(201);
      expect((fired.json.pipeline_runs as unknown[]).length).toBe(1);
      expect((await s.call("POST", "/api/events", { role: null, headers: { authorization: `Bearer ${CANARY_API}` }, body: { source: "shop" } })).status).toBe(401);

      // editors and admins are shown the token again (it is decrypted); a viewer never
      for (const role of ["editor", "admin"] as const) {
        const got = await s.call("GET", `/api/pipeline_schedules/${apiId}`, { role });
        expect((got.json.pipeline_schedule as { token: string }).token).toBe(CANARY_API);
      }
      const viewer = await s.call("GET", `/api/pipeline_schedules/${apiId}`, { role: "viewer" });
      expect(viewer.json.pipeline_schedule).not.toHaveProperty("token");
      const listed = JSON.stringify((await s.call("GET", "/api/pipeline_schedules", { role: "viewer" })).json);
      expect(listed).toContain("api_canary");
      expect(listed).not.toContain(CANARY_API);
      expect(listed).not.toContain(CANARY_EVENT);

      // a token set by update, then rotated: the old ones stop working, the new one works
      const set = await s.call("PUT", `/api/pipeline_schedules/${apiId}`, { role: "editor", body: { pipeline_schedule: { token: CANARY_SET } } });
      expect((set.json.pipeline_schedule as { token: string }).token).toBe(CANARY_SET);
      expect((await s.call("POST", `/api/pipeline_schedules/${apiId}/pipeline_runs/${CANARY_API}`, { role: null, body: {} })).status).toBe(401);
      expect((await s.call("POST", `/api/pipeline_schedules/${apiId}/pipeline_runs/${CANARY_SET}`, { role: null, body: {} })).status).toBe(201);
      const rotated = await s.call("PUT", `/api/pipeline_schedules/${apiId}`, { role: "editor", body: { pipeline_schedule: { rotate_token: true } } });
      const fresh = (rotated.json.pipeline_schedule as { token: string }).token;
      expect(fresh).toMatch(/^[0-9a-f]{32}$/);
      expect((await s.call("POST", `/api/pipeline_schedules/${apiId}/pipeline_runs/${CANARY_SET}`, { role: null, body: {} })).status).toBe(401);
      expect((await s.call("POST", `/api/pipeline_schedules/${apiId}/pipeline_runs/${fresh}`, { role: null, body: {} })).status).toBe(201);
      expect((await s.call("GET", `/api/pipeline_schedules/${apiId}`, { role: "editor" })).json.pipeline_schedule).toHaveProperty("token", fresh);

      // at rest: no plaintext column, and none of the tokens anywhere in the file or its WAL
      const rows = await s.client.execute("SELECT token, token_sealed, token_digest FROM pipeline_schedules WHERE token_sealed IS NOT NULL");
      expect(rows.rows.length).toBe(2);
      for (const row of rows.rows) {
        expect(row.token).toBeNull();
        expect(String(row.token_sealed)).toStartWith("v1:");
        expect(String(row.token_digest)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }
      const dbPath = join(s.root, ".kiln/kiln.db");
      expect(existsSync(`${dbPath}-wal`)).toBe(true);
      for (const token of [CANARY_API, CANARY_EVENT, CANARY_SET, fresh]) expect(inDatabaseFiles(dbPath, token)).toEqual([]);
    } finally {
      await s.close();
    }
  });

  test("a store without a secret key refuses to write a token, naming KILN_SECRET_KEY, and writes nothing", async () => {
    const fx = await projectFixture({ "kiln.yaml": "executor_config:\n  in_process: true\n", "pipelines/p/metadata.yaml": "blocks:\n  - uuid: a\n    type: custom\n", "custom/a.js": "export default () => 1;\n" });
    try {
      const keyless = await Store.open(fx.client);
      const refused = await createSchedule(keyless, fx.project, { name: "hook", pipelineUuid: "p", scheduleType: "api" }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(TokenKeyError);
      expect(String((refused as Error).message)).toContain("KILN_SECRET_KEY");
      expect((await fx.client.execute("SELECT count(*) AS n FROM pipeline_schedules")).rows[0]?.n).toBe(0);
    } finally {
      fx.cleanup();
    }
  });
});

describe("rows an older kiln wrote in plaintext", () => {
  const PROJECT = {
    "kiln.yaml": "executor_config:\n  in_process: true\n",
    "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
    "custom/work.js": "export default () => 1;\n",
  };
  const LEGACY_API = "legacy-plaintext-api-token-Hh7Gg6";
  const LEGACY_EVENT = "legacy-plaintext-event-token-Ff5Ee4";

  /** A database as kiln 0.1 left it: migrations up to 9, tokens in the `token` column. */
  async function legacyDatabase(dbPath: string): Promise<void> {
    const client = await openDatabase(`file:${dbPath}`);
    await migrate(client, MIGRATIONS.filter((m) => m.id <= 9));
    const now = Date.now();
    await client.execute({
      sql: `INSERT INTO pipeline_schedules (name, pipeline_uuid, schedule_type, status, token, created_at, updated_at, source)
            VALUES ('old_api', 'p', 'api', 'active', ?, ?, ?, 'api'), ('old_event', 'p', 'event', 'active', ?, ?, ?, 'api')`,
      args: [LEGACY_API, now, now, LEGACY_EVENT, now, now],
    });
    await client.execute({ sql: "UPDATE pipeline_schedules SET event_pattern = ? WHERE name = 'old_event'", args: [JSON.stringify({ source: ["shop"] })] });
    client.close();
  }

  test("are still accepted before they are sealed, by a process without the key", async () => {
    const root = dirs.project(PROJECT);
    const dbPath = join(root, ".kiln/kiln.db");
    await legacyDatabase(dbPath);
    const client = await openDatabase(`file:${dbPath}`);
    try {
      const store = await Store.open(client);
      const [api] = (await client.execute("SELECT id FROM pipeline_schedules WHERE name = 'old_api'")).rows;
      expect((await store.apiTriggerByToken(Number(api?.id), LEGACY_API))?.name).toBe("old_api");
      expect(await store.apiTriggerByToken(Number(api?.id), `${LEGACY_API}x`)).toBeNull();
      expect((await store.eventTriggerIdsWithToken(LEGACY_EVENT)).length).toBe(1);
      expect(await store.revealTriggerToken(Number(api?.id))).toBe(LEGACY_API);
    } finally {
      client.close();
    }
  });

  test("are sealed by the first kiln start (the key file made then), keep working, and leave no plaintext in the file or WAL", async () => {
    const root = dirs.project(PROJECT);
    const dbPath = join(root, ".kiln/kiln.db");
    await legacyDatabase(dbPath);
    expect(inDatabaseFiles(dbPath, LEGACY_API).length).toBeGreaterThan(0);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !["KILN_DATABASE_URL", "REDIS_URL", "KILN_SECRET_KEY", "KILN_AUTH"].includes(k)) env[k] = v;
    const adminKey = await createAdminKey(root, { KILN_SECRET_KEY: undefined, KILN_DATABASE_URL: undefined });
    const port = await freePort();
    const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--instance-type", "server_and_scheduler", "--port", String(port), "--host", "127.0.0.1", "--tick-interval", "200"], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (c: string) => (output += c));
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (output += c));
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/api/health`).catch(() => null))?.ok === true, "the server to listen", 45_000);
    expect(output).toContain("sealed 2 trigger token(s) an older kiln stored in plaintext");
    expect(existsSync(`${dbPath}.key`)).toBe(true);

    const rows = await (async () => {
      const client = createClient({ url: `file:${dbPath}` });
      try {
        return (await client.execute("SELECT id, name, token, token_sealed FROM pipeline_schedules ORDER BY id")).rows;
      } finally {
        client.close();
      }
    })();
    for (const row of rows) {
      expect(row.token).toBeNull();
      expect(String(row.token_sealed)).toStartWith("v1:");
    }
    const apiId = Number(rows.find((r) => r.name === "old_api")?.id);
    // the old URL still works, the editor still sees the token, the event token still fires
    expect((await fetch(`${base}/api/pipeline_schedules/${apiId}/pipeline_runs/${LEGACY_API}`, { method: "POST", body: "{}" })).status).toBe(201);
    const shown = (await (await fetch(`${base}/api/pipeline_schedules/${apiId}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { pipeline_schedule: { token: string } };
    expect(shown.pipeline_schedule.token).toBe(LEGACY_API);
    expect((await fetch(`${base}/api/events`, { method: "POST", headers: { authorization: `Bearer ${LEGACY_EVENT}` }, body: JSON.stringify({ source: "shop" }) })).status).toBe(201);

    child.kill("SIGTERM");
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve)));
    expect(inDatabaseFiles(dbPath, LEGACY_API)).toEqual([]);
    expect(inDatabaseFiles(dbPath, LEGACY_EVENT)).toEqual([]);
    expect(output).not.toContain(LEGACY_API);
  });
});

test("the digest is keyed: the same token under two keys gives two digests", async () => {
  const [a, b] = await Promise.all([importSecretKey(generateSecretKey()), importSecretKey(generateSecretKey())]);
  const { tokenDigest } = await import("@kiln/core/runtime");
  expect(await tokenDigest(a, CANARY_API)).toBe(await tokenDigest(a, CANARY_API));
  expect(await tokenDigest(a, CANARY_API)).not.toBe(await tokenDigest(b, CANARY_API));
});
