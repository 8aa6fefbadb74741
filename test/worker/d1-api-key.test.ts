/**
 * `kiln api-key create|revoke --d1`: the first admin key of a Worker whose state is in D1, written
 * through `wrangler d1 execute --local` into the same Miniflare D1 that `wrangler dev` serves
 * `examples/edge` from (built by `kiln build worker`), then used over loopback HTTP.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSecretKey } from "@kiln/core/runtime";
import { CLI_MAIN, REPO_ROOT } from "../helpers/fixtures.ts";
import { startWranglerDev, tail, type Started } from "./processes.ts";

const PROJECT = join(REPO_ROOT, "examples/edge");

let dir: string;
let worker: Started | null = null;

/** wrangler.toml for the built Worker with its state in the D1 database `kiln-keys`. */
function wranglerToml(main: string): string {
  return [
    'name = "kiln-d1-key-test"',
    `main = "${main}"`,
    'compatibility_date = "2026-04-01"',
    'compatibility_flags = ["nodejs_compat"]',
    "[[d1_databases]]",
    'binding = "DB"',
    'database_name = "kiln-keys"',
    'database_id = "00000000-0000-0000-0000-000000000000"',
    "[[durable_objects.bindings]]",
    'name = "KILN_SCHEDULER"',
    'class_name = "KilnScheduler"',
    "[[migrations]]",
    'tag = "v1"',
    'new_sqlite_classes = ["KilnScheduler"]',
    "",
  ].join("\n");
}

/** `kiln api-key ...` run in `cwd`, as a user in their Worker's folder would. */
function kiln(args: string[], cwd = dir): { status: number | null; stdout: string; stderr: string } {
  const ran = spawnSync("bun", [CLI_MAIN, "api-key", ...args], { cwd, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" }, timeout: 120_000 });
  return { status: ran.status, stdout: ran.stdout, stderr: ran.stderr };
}

async function status(path: string, key: string | null): Promise<number> {
  const response = await fetch(`${worker!.url}${path}`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  await response.body?.cancel();
  return response.status;
}

beforeAll(async () => {
  dir = join(REPO_ROOT, "test-artifacts", `worker-d1-key-${crypto.randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  const built = spawnSync("bun", [CLI_MAIN, "build", "worker", PROJECT, "--out", join(dir, "build")], { cwd: REPO_ROOT, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`kiln build worker failed (${built.status}): ${built.stderr}`);
  writeFileSync(join(dir, "wrangler.toml"), wranglerToml("build/index.ts"));
  writeFileSync(join(dir, ".dev.vars"), `KILN_SECRET_KEY=${generateSecretKey()}\n`);
  worker = await startWranglerDev(dir);
}, 150_000);

afterAll(async () => {
  await worker?.stop();
  if (dir && !process.env.KILN_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("kiln api-key --d1", () => {
  test("a key created through wrangler d1 execute --local authenticates on wrangler dev; a wrong or revoked one gets 401", async () => {
    // the Worker creates kiln's tables when it first answers a request
    expect(await status("/api/pipelines", null)).toBe(401);
    const created = kiln(["create", "--role", "admin", "--d1", "kiln-keys", "--local"]);
    if (created.status !== 0) throw new Error(`kiln api-key create --d1 failed (${created.status}): ${created.stderr}\n${tail(worker!.logFile)}`);
    const key = created.stdout.trim().split("\n").at(-1)!;
    expect(key).toMatch(/^kiln_[0-9]+_[A-Za-z0-9_-]{43}$/);
    expect(created.stdout).toContain("role admin");
    expect(await status("/api/pipelines", key)).toBe(200);
    const wrong = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
    expect(await status("/api/pipelines", wrong)).toBe(401);

    // a second key takes the next id, and revoking the first leaves the second working
    const second = kiln(["create", "--role", "viewer", "--name", "o'brien's key", "--d1", "DB"]);
    expect(second.status).toBe(0);
    const secondKey = second.stdout.trim().split("\n").at(-1)!;
    const id = (k: string) => Number(k.split("_")[1]);
    expect(id(secondKey)).toBe(id(key) + 1);
    const revoked = kiln(["revoke", "--id", String(id(key)), "--d1", "kiln-keys", "--local"]);
    expect(revoked.status).toBe(0);
    expect(await status("/api/pipelines", key)).toBe(401);
    expect(await status("/api/pipelines", secondKey)).toBe(200);
    const again = kiln(["revoke", "--id", String(id(key)), "--d1", "kiln-keys"]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain(`--id: no live API key ${id(key)}`);
  }, 120_000);

  test("bad flags and files are refused with exit code 2, naming them; a failing wrangler shows what it said, exit 1, no key", () => {
    const both = kiln(["create", "--role", "admin", "--d1", "kiln-keys", "--local", "--remote"]);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain("--local, --remote");
    const unknown = kiln(["create", "--role", "admin", "--d1", "nope"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('no [[d1_databases]] entry named "nope"');
    expect(unknown.stderr).toContain('"kiln-keys"');
    const elsewhere = join(dir, "no-config");
    mkdirSync(elsewhere, { recursive: true });
    const missing = kiln(["create", "--role", "admin", "--d1", "kiln-keys"], elsewhere);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`--wrangler-config: no file ${join(elsewhere, "wrangler.toml")}`);
    const stray = kiln(["create", "--role", "admin", "--local", "--project", PROJECT]);
    expect(stray.status).toBe(2);
    expect(stray.stderr).toContain("--local: only with --d1");

    // a database the Worker never answered from has no tables: wrangler fails, and kiln says so
    const fresh = join(dir, "fresh");
    mkdirSync(fresh, { recursive: true });
    writeFileSync(join(fresh, "wrangler.toml"), wranglerToml("../build/index.ts"));
    const failed = kiln(["create", "--role", "admin", "--d1", "kiln-keys", "--local"], fresh);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain("no such table: api_keys");
    expect(`${failed.stdout}${failed.stderr}`).not.toMatch(/kiln_[0-9]+_/);
  }, 120_000);
});
