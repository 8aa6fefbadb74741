/**
 * Keys and files at rest, through real `kiln` processes started under umask 022 and without
 * KILN_SECRET_KEY: every file kiln makes is private (0600, folders 0700), the session signing
 * key is kept only encrypted under a 0600 key file beside the database (one warning at start),
 * and a session token forged from what the database holds is refused, also on a database an
 * older kiln left with its signing key in the clear.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { CLI_MAIN, queryDb, REPO_ROOT, TempDirs, waitFor, type KilnResult } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const dirs = new TempDirs();
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  dirs.removeAll();
});

const PROJECT = {
  "kiln.yaml": "variables:\n  region: eu\n",
  "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
  "custom/work.js": "export default (ctx) => { ctx.logger.info('working'); return { rows: 3 }; };\n",
};

/** The environment of a kiln child: this one's, minus kiln's own settings. */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("KILN_") && k !== "REDIS_URL") env[k] = v;
  return { ...env, ...extra };
}

/** Runs `kiln <args>` under umask 022, the usual default that makes files world-readable. */
function kiln022(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<KilnResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", 'umask 022; exec "$0" "$@"', process.execPath, CLI_MAIN, ...args], { cwd: REPO_ROOT, env: childEnv(options.env), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.stdin.end(options.stdin ?? "");
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function startServer(root: string, port: number): { output: () => string; child: ChildProcess } {
  const child = spawn("/bin/sh", ["-c", 'umask 022; exec "$0" "$@"', process.execPath, CLI_MAIN, "start", root, "--instance-type", "server_and_scheduler", "--port", String(port), "--host", "127.0.0.1", "--tick-interval", "200"], {
    cwd: REPO_ROOT,
    env: childEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let text = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (text += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (text += c));
  return { output: () => text, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

const mode = (path: string) => statSync(path).mode & 0o777;

/** Every file and folder under `dir`, recursively. */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    out.push(path);
    if (entry.isDirectory()) out.push(...walk(path));
  }
  return out;
}

async function signIn(base: string, username: string, password: string): Promise<Response> {
  return fetch(`${base}/api/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ session: { username, password } }) });
}

/** HS256 tokens as kiln signs them, for user 1, with each candidate key. */
async function forgeries(candidates: Uint8Array[]): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  return Promise.all(
    candidates.map((key) =>
      new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuer("kiln").setSubject("1").setJti(crypto.randomUUID()).setIssuedAt(now).setExpirationTime(now + 3600).sign(key),
    ),
  );
}

/** Every key an attacker holding the stored value might try: its text, and each base64 part decoded. */
function keysFrom(stored: string): Uint8Array[] {
  const keys = [new TextEncoder().encode(stored)];
  for (const part of stored.replace(/^raw:/, "").split(":")) {
    try {
      keys.push(Uint8Array.from(atob(part), (ch) => ch.charCodeAt(0)));
    } catch {
      // not base64
    }
  }
  return keys;
}

const PASSWORD = "correct horse battery staple";

describe("at rest, under umask 022 and without KILN_SECRET_KEY", () => {
  test("the database, its -wal/-shm, .kiln/, logs, outputs and the key file are 0600 (folders 0700)", async () => {
    const root = dirs.project(PROJECT);
    const ran = await kiln022(["run", root, "p"]);
    expect(ran.code).toBe(0);
    const made = await kiln022(["user", "create", "--project", root, "--username", "ana", "--role", "admin", "--password-stdin"], { stdin: `${PASSWORD}\n` });
    expect(made.code).toBe(0);
    const port = await freePort();
    const server = startServer(root, port);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(() => server.output().includes("listening"), "the server", 30_000);
    expect((await signIn(base, "ana", PASSWORD)).status).toBe(201);

    const db = join(root, ".kiln/kiln.db");
    for (const file of [db, `${db}-wal`, `${db}-shm`, `${db}.key`]) {
      expect(existsSync(file)).toBe(true);
      expect([file, mode(file)]).toEqual([file, 0o600]);
    }
    const tree = [join(root, ".kiln"), join(root, ".logs"), join(root, ".variables")].flatMap((dir) => [dir, ...walk(dir)]);
    expect(tree.some((p) => p.endsWith(".log"))).toBe(true);
    expect(tree.some((p) => p.endsWith("output_0"))).toBe(true);
    for (const path of tree) expect([path, mode(path)]).toEqual([path, statSync(path).isDirectory() ? 0o700 : 0o600]);
    await stop(server.child);
  }, 90_000);

  test("the signing key is stored only encrypted, one warning names the key file, and a token forged from the database is refused", async () => {
    const root = dirs.project(PROJECT);
    expect((await kiln022(["user", "create", "--project", root, "--username", "ana", "--role", "admin", "--password-stdin"], { stdin: `${PASSWORD}\n` })).code).toBe(0);
    const port = await freePort();
    const server = startServer(root, port);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(() => server.output().includes("listening"), "the server", 30_000);
    const session = (await (await signIn(base, "ana", PASSWORD)).json()) as { session: { token: string } };
    expect((await fetch(`${base}/api/users`, { headers: { authorization: `Bearer ${session.session.token}` } })).status).toBe(200);

    const keyFile = join(root, ".kiln/kiln.db.key");
    const warnings = server.output().split("\n").filter((line) => line.includes(keyFile));
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain("KILN_SECRET_KEY is not set");

    const rows = await queryDb(join(root, ".kiln/kiln.db"), "SELECT value FROM server_settings WHERE key = 'session_signing_key'");
    const stored = String(rows[0]?.value);
    expect(stored).toStartWith("v1:");
    for (const token of await forgeries(keysFrom(stored))) {
      expect((await fetch(`${base}/api/users`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    }
    await stop(server.child);
  }, 90_000);

  test("a signing key an older kiln stored in the clear is replaced: tokens signed with it are refused", async () => {
    const root = dirs.project(PROJECT);
    expect((await kiln022(["user", "create", "--project", root, "--username", "ana", "--role", "admin", "--password-stdin"], { stdin: `${PASSWORD}\n` })).code).toBe(0);
    const leaked = crypto.getRandomValues(new Uint8Array(32));
    const client = await openDatabase(`file:${join(root, ".kiln/kiln.db")}`);
    await Store.open(client);
    await client.execute({ sql: "INSERT INTO server_settings (key, value, created_at, updated_at) VALUES ('session_signing_key', ?, 0, 0)", args: [`raw:${btoa(String.fromCharCode(...leaked))}`] });
    client.close();

    const port = await freePort();
    const server = startServer(root, port);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(() => server.output().includes("listening"), "the server", 30_000);
    const [forged] = await forgeries([leaked]);
    expect((await fetch(`${base}/api/users`, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
    const session = (await (await signIn(base, "ana", PASSWORD)).json()) as { session: { token: string } };
    expect((await fetch(`${base}/api/users`, { headers: { authorization: `Bearer ${session.session.token}` } })).status).toBe(200);
    const rows = await queryDb(join(root, ".kiln/kiln.db"), "SELECT value FROM server_settings WHERE key = 'session_signing_key'");
    expect(String(rows[0]?.value)).toStartWith("v1:");
    await stop(server.child);
  }, 90_000);
});
