/**
 * `kiln api-key` and `kiln user`, run as real child processes: the printed key (its last line)
 * works against a real server over the same project database, KILN_DATABASE_URL is honoured,
 * bad flags exit 2 naming the flag and write nothing, and passwords never come from a flag.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { verifyApiKey } from "@kiln/core/auth";
import { loadProject } from "@kiln/core/project";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { createApp } from "@kiln/server";
import { folderSource, openDatabase } from "@kiln/node";
import { CLI_MAIN, REPO_ROOT, runKiln, TempDirs, withoutUsage, type KilnResult } from "../helpers/cli.ts";
import { SERVER_PROJECT } from "../helpers/server.ts";

const temp = new TempDirs();
const ENV = { KILN_DATABASE_URL: undefined, KILN_PASSWORD: undefined };
const PASSWORD = "a long enough password";

let project: string;
let server: ReturnType<typeof Bun.serve>;
let store: Store;
let url: string;

beforeAll(async () => {
  project = temp.project(SERVER_PROJECT);
  // the server a user would start on this project: its database, with auth on
  store = await Store.open(await openDatabase(`file:${join(project, ".kiln/kiln.db")}`));
  const loaded = await loadProject(folderSource(project), { executorTypes: ["local"] });
  const app = createApp(
    { store, project: () => loaded, clock: store.clock, version: "test", authEnabled: true, secretKey: await importSecretKey(generateSecretKey()), bodyLimitBytes: 1 << 20 },
    { log: () => {} },
  );
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  url = `http://127.0.0.1:${server.port}`;
});
afterAll(() => {
  server.stop(true);
  store.client.close();
  temp.removeAll();
});

const lastLine = (r: KilnResult) => r.stdout.trimEnd().split("\n").at(-1) ?? "";
const get = (path: string, key: string) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${key}` } });

describe("kiln api-key", () => {
  test("create prints the key as its last line; it authenticates against the server with its role", async () => {
    const admin = await runKiln(["api-key", "create", "--project", project, "--role", "admin", "--name", "ci admin"], ENV);
    expect([admin.code, admin.stderr]).toEqual([0, ""]);
    const key = lastLine(admin);
    expect(key).toMatch(/^kiln_[1-9][0-9]*_[A-Za-z0-9_-]{43}$/);
    expect((await get("/api/pipelines", key)).status).toBe(200);
    expect((await get("/api/api_keys", key)).status).toBe(200);
    expect(await verifyApiKey(store.client, key)).toMatchObject({ name: "ci admin", role: "admin" });

    const viewer = lastLine(await runKiln(["api-key", "create", "--project", project, "--role", "viewer"], ENV));
    expect((await get("/api/pipelines", viewer)).status).toBe(200);
    const write = await fetch(`${url}/api/pipelines/etl/pipeline_schedules`, {
      method: "POST",
      headers: { authorization: `Bearer ${viewer}`, "content-type": "application/json" },
      body: JSON.stringify({ pipeline_schedule: { name: "x", schedule_interval: "@daily" } }),
    });
    expect(write.status).toBe(403);
    expect((await verifyApiKey(store.client, viewer))?.name).toBe("cli-viewer");
  });

  test("list shows keys without their secrets; revoke ends one, and revoking it again is a usage error", async () => {
    const key = lastLine(await runKiln(["api-key", "create", "--project", project, "--role", "editor", "--name", "to-revoke"], ENV));
    const id = Number(/^kiln_(\d+)_/.exec(key)?.[1]);
    const listed = await runKiln(["api-key", "list", "--project", project, "--json"], ENV);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(key);
    expect(listed.stdout).not.toContain(key.slice(-43));
    expect((JSON.parse(listed.stdout) as Array<{ id: number; name: string; revoked_at: string | null }>).find((k) => k.id === id)).toMatchObject({ name: "to-revoke", revoked_at: null });

    const revoked = await runKiln(["api-key", "revoke", "--project", project, "--id", String(id)], ENV);
    expect([revoked.code, revoked.stdout.trim()]).toEqual([0, `revoked API key ${id}`]);
    expect((await get("/api/pipelines", key)).status).toBe(401);
    const again = await runKiln(["api-key", "revoke", "--project", project, "--id", String(id)], ENV);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("--id");
    expect((await runKiln(["api-key", "list", "--project", project], ENV)).stdout).toMatch(new RegExp(`^${id}\\teditor\\trevoked `, "m"));
  });

  test("KILN_DATABASE_URL decides the database, as for kiln run and kiln start", async () => {
    const other = join(temp.make(), "shared.db");
    const result = await runKiln(["api-key", "create", "--project", project, "--role", "editor"], { ...ENV, KILN_DATABASE_URL: `file:${other}` });
    expect(result.code).toBe(0);
    const key = lastLine(result);
    expect(await verifyApiKey(store.client, key)).toBeNull();
    expect((await get("/api/pipelines", key)).status).toBe(401);
    const otherStore = await Store.open(await openDatabase(`file:${other}`));
    try {
      expect(await verifyApiKey(otherStore.client, key)).toMatchObject({ role: "editor" });
    } finally {
      otherStore.client.close();
    }
  });

  test("bad flags exit 2 with one line naming the flag, and touch no database", async () => {
    const fresh = temp.project(SERVER_PROJECT);
    const cases: Array<[string[], string]> = [
      [["api-key", "create", "--project", fresh], "--role"],
      [["api-key", "create", "--project", fresh, "--role", "owner"], "--role"],
      [["api-key", "create", "--project", fresh, "--role", "admin", "--name", "  "], "--name"],
      [["api-key", "create", "--role", "admin"], "--project"],
      [["api-key", "create", "--project", join(fresh, "nope"), "--role", "admin"], "--project"],
      [["api-key", "create", "--project", fresh, "--role", "admin", "--bogus"], "--bogus"],
      [["api-key", "create", "--project", fresh, "--role"], "--role"],
      [["api-key", "revoke", "--project", fresh, "--id", "abc"], "--id"],
      [["api-key", "rotate", "--project", fresh], "rotate"],
      [["user", "create", "--project", fresh, "--username", "ann", "--role", "viewer", "--password", PASSWORD], "'--password'"],
      [["user", "create", "--project", fresh, "--username", "ann", "--role", "viewer"], "--password-stdin"],
      [["user", "create", "--project", fresh, "--username", "a b", "--role", "viewer"], "--username"],
      [["user", "create", "--project", fresh, "--username", "ann", "--role", "root"], "--role"],
    ];
    for (const [args, flag] of cases) {
      const result = await runKiln(args, ENV);
      expect([args.join(" "), result.code]).toEqual([args.join(" "), 2]);
      expect(result.stderr).toContain(flag);
      expect(withoutUsage(result.stderr).trim().split("\n").length).toBe(1);
    }
    const short = await runKiln(["user", "create", "--project", fresh, "--username", "ann", "--role", "viewer"], { ...ENV, KILN_PASSWORD: "short" });
    expect([short.code, short.stderr.includes("KILN_PASSWORD")]).toEqual([2, true]);
    expect(existsSync(join(fresh, ".kiln/kiln.db"))).toBe(false);
  });
});

/** `kiln <args>` with `input` on stdin (runKiln gives the child no stdin). */
function runKilnWithStdin(args: string[], input: string): Promise<KilnResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "KILN_DATABASE_URL" && k !== "KILN_PASSWORD") env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: REPO_ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function signIn(username: string, password: string): Promise<number> {
  const response = await fetch(`${url}/api/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ session: { username, password } }) });
  return response.status;
}

describe("kiln user", () => {
  test("create with KILN_PASSWORD or --password-stdin; the user signs in; delete ends that", async () => {
    const fromEnv = await runKiln(["user", "create", "--project", project, "--username", "ann", "--role", "editor"], { ...ENV, KILN_PASSWORD: PASSWORD });
    expect([fromEnv.code, fromEnv.stderr]).toEqual([0, ""]);
    expect(fromEnv.stdout).toContain("created user ann");
    expect(fromEnv.stdout).not.toContain(PASSWORD);
    expect(await signIn("ann", PASSWORD)).toBe(201);

    const fromStdin = await runKilnWithStdin(["user", "create", "--project", project, "--username", "bob@example.com", "--role", "viewer", "--password-stdin"], `${PASSWORD}!\n`);
    expect([fromStdin.code, fromStdin.stderr]).toEqual([0, ""]);
    expect(await signIn("bob@example.com", `${PASSWORD}!`)).toBe(201);
    expect(await signIn("bob@example.com", `${PASSWORD}!\n`)).toBe(401);

    const taken = await runKiln(["user", "create", "--project", project, "--username", "ann", "--role", "viewer"], { ...ENV, KILN_PASSWORD: PASSWORD });
    expect([taken.code, taken.stderr.includes("--username")]).toEqual([2, true]);
    const stored = await store.client.execute("SELECT password_hash FROM users WHERE username = 'ann'");
    expect(String(stored.rows[0]?.password_hash)).toMatch(/^pbkdf2-sha256\$600000\$/);

    const listed = await runKiln(["user", "list", "--project", project, "--json"], ENV);
    expect((JSON.parse(listed.stdout) as Array<{ username: string }>).map((u) => u.username)).toEqual(["ann", "bob@example.com"]);
    expect((await runKiln(["user", "delete", "--project", project, "--username", "ann"], ENV)).code).toBe(0);
    expect(await signIn("ann", PASSWORD)).toBe(401);
  });
});
