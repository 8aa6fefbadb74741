/**
 * A D1 database named in wrangler.toml, reached through `npx wrangler d1 execute` (D1 is a Worker
 * binding with no address kiln could open): the statements are the store's, as SQL text.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { UsageError } from "./errors.ts";

/** Where `wrangler d1 execute` runs: a database of a wrangler.toml, local (Miniflare's) or remote (Cloudflare's). */
export interface D1Target {
  database: string;
  config: string;
  remote: boolean;
}

/** A failed `wrangler d1 execute`: what wrangler printed; exit code 1. */
export class WranglerError extends Error {
  override readonly name = "WranglerError";
}

/** Checks the --d1, --wrangler-config, --local and --remote flags against the wrangler.toml they name. */
export function d1Target(flags: { d1: string; config?: string | undefined; local?: boolean | undefined; remote?: boolean | undefined }): D1Target {
  if (flags.local && flags.remote) throw new UsageError("--local, --remote: expected one of them (the local database of `wrangler dev`, or the deployed one), got both");
  if (!flags.d1.trim()) throw new UsageError("--d1: expected the database_name (or binding) of a [[d1_databases]] entry in wrangler.toml");
  const config = resolve(flags.config ?? "wrangler.toml");
  if (!existsSync(config)) throw new UsageError(`--wrangler-config: no file ${config} (run in the folder with your wrangler.toml, or name it with --wrangler-config)`);
  const names = d1DatabaseNames(config);
  // wrangler's own rule: a database is named by its database_name or its binding
  if (names !== null && !names.some((n) => n.database_name === flags.d1 || n.binding === flags.d1)) {
    const known = names.map((n) => n.database_name ?? n.binding).filter((n) => n !== undefined);
    throw new UsageError(`--d1: ${config} has no [[d1_databases]] entry named ${JSON.stringify(flags.d1)} (${known.length ? `it has ${known.map((n) => JSON.stringify(n)).join(", ")}` : "it has none"})`);
  }
  return { database: flags.d1, config, remote: flags.remote === true };
}

/**
 * The [[d1_databases]] entries of a wrangler.toml, or null where no TOML parser is at hand (on
 * Node and Deno; wrangler then reports an unknown name itself).
 */
function d1DatabaseNames(config: string): Array<{ database_name?: string; binding?: string }> | null {
  const bun = (globalThis as { Bun?: { TOML: { parse(text: string): unknown } } }).Bun;
  if (!bun) return null;
  let parsed: unknown;
  try {
    parsed = bun.TOML.parse(readFileSync(config, "utf8"));
  } catch (error) {
    throw new UsageError(`--wrangler-config: ${config} is not valid TOML (${(error as Error).message})`);
  }
  const entries = (parsed as { d1_databases?: unknown }).d1_databases;
  return Array.isArray(entries) ? (entries as Array<{ database_name?: string; binding?: string }>) : [];
}

/**
 * Runs `sql` on the database through `npx wrangler d1 execute ... --json` in wrangler.toml's
 * folder, from a temporary file (mode 0600, removed after) rather than the command line; the
 * result sets wrangler printed, one per statement.
 */
export function executeD1(target: D1Target, sql: string): Array<{ results: Array<Record<string, unknown>> }> {
  const dir = mkdtempSync(join(tmpdir(), "kiln-d1-"));
  try {
    const file = join(dir, "statements.sql");
    writeFileSync(file, sql, { mode: 0o600 });
    const args = ["wrangler", "d1", "execute", target.database, target.remote ? "--remote" : "--local", "--config", target.config, "--file", file, "--json", "--yes"];
    const ran = spawnSync("npx", args, {
      cwd: dirname(target.config),
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? "false" },
    });
    if (ran.error) throw new WranglerError(`npx wrangler d1 execute ${target.database}: could not start (${ran.error.message})`);
    if (ran.status !== 0) {
      const said = `${ran.stderr}${ran.stdout}`.trim();
      throw new WranglerError(`npx wrangler d1 execute ${target.database} failed (exit ${ran.status}):\n${said}\n(kiln's tables are created by the Worker when it first answers a request: start or deploy it and make one request before this)`);
    }
    try {
      return JSON.parse(ran.stdout) as Array<{ results: Array<Record<string, unknown>> }>;
    } catch {
      throw new WranglerError(`npx wrangler d1 execute ${target.database}: expected JSON from --json, got:\n${ran.stdout.trim()}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
