/**
 * Helpers for the CLI and executor-local tests: temporary kiln projects, running the `kiln`
 * command as a real child process, reading the project database, and watching processes.
 */
import { Database } from "bun:sqlite";
import { createClient } from "@libsql/client";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

/** The repository root (the tests run the CLI from here, as a user of the repo would). */
export const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const CLI_MAIN = join(REPO_ROOT, "cli/src/main.ts");

/** Temporary folders made by a test file, removed by `removeTempDirs` in its afterAll. */
export class TempDirs {
  readonly #dirs: string[] = [];

  /** A fresh empty folder under the OS temp dir. */
  make(prefix = "kiln-test-"): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.#dirs.push(dir);
    return dir;
  }

  /** A fresh folder holding `files` (project-relative path -> content). */
  project(files: Record<string, string>, prefix = "kiln-proj-"): string {
    const root = this.make(prefix);
    writeFiles(root, files);
    return root;
  }

  removeAll(): void {
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
}

export interface KilnResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bun cli/src/main.ts <args>` from the repository root. `env` is added to this process's
 * environment; a key set to undefined is removed.
 */
export function runKiln(args: string[], env: Record<string, string | undefined> = {}): Promise<KilnResult> {
  return runBun([CLI_MAIN, ...args], env);
}

/** The first admin API key of a project, made as README says (`kiln api-key create`, printed once as the last line). */
export async function createAdminKey(root: string, env: Record<string, string | undefined> = {}): Promise<string> {
  const made = await runKiln(["api-key", "create", "--project", root, "--role", "admin"], env);
  if (made.code !== 0) throw new Error(`kiln api-key create exited ${made.code}: ${made.stderr}`);
  return made.stdout.trim().split("\n").at(-1) as string;
}

/** Runs `bun <args>` from the repository root (e.g. `bun run kiln ...`), like runKiln. */
export function runBun(args: string[], env: Record<string, string | undefined> = {}): Promise<KilnResult> {
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...env })) if (value !== undefined) childEnv[key] = value;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", reject);
    child.once("close", (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}

/** The partition from the `execution partition: ...` line `kiln run` prints at the end. */
export function printedPartition(stdout: string): string {
  const match = /^execution partition: (.+)$/m.exec(stdout);
  if (!match?.[1]) throw new Error(`no "execution partition:" line in:\n${stdout}`);
  return match[1].trim();
}

/** `file:<path>` for a database file. */
export function fileUrl(path: string): string {
  return `file:${path}`;
}

/** Runs one query against a database file and returns its rows as plain objects. */
export async function queryDb(path: string, sql: string, args: Array<string | number | null> = []): Promise<Record<string, unknown>[]> {
  const client = createClient({ url: fileUrl(path) });
  try {
    const rs = await client.execute({ sql, args });
    return rs.rows.map((row) => Object.fromEntries(rs.columns.map((c) => [c, row[c]])));
  } finally {
    client.close();
  }
}

export interface BlockRunRow {
  id: number;
  pipeline_run_id: number;
  block_uuid: string;
  status: string;
  attempt: number;
  error: string | null;
  metrics: string;
  executor_type: string;
}

export async function pipelineRuns(dbPath: string): Promise<Array<{ id: number; status: string; metrics: string; execution_partition: string }>> {
  return (await queryDb(dbPath, "SELECT id, status, metrics, execution_partition FROM pipeline_runs ORDER BY id")) as never;
}

export async function blockRuns(dbPath: string, pipelineRunId?: number): Promise<BlockRunRow[]> {
  const rows =
    pipelineRunId === undefined
      ? await queryDb(dbPath, "SELECT * FROM block_runs ORDER BY id")
      : await queryDb(dbPath, "SELECT * FROM block_runs WHERE pipeline_run_id = ? ORDER BY id", [pipelineRunId]);
  return rows as unknown as BlockRunRow[];
}

/**
 * A block's stored output, parsed, read as kiln reads it: its row in the project's database
 * (`.kiln/kiln.db`: an in-process block run's small output), else its file
 * (`.variables/pipelines/<p>/<partition>/<block>/output_0`).
 */
export function readOutput(projectRoot: string, pipelineUuid: string, partition: string, blockUuid: string, dbPath?: string): unknown {
  const row = outputRow(projectRoot, pipelineUuid, partition, blockUuid, dbPath);
  if (row !== undefined) return row;
  return JSON.parse(readFileSync(outputFile(projectRoot, pipelineUuid, partition, blockUuid), "utf8"));
}

/** A block's output row in the project's database (`dbPath`, default `.kiln/kiln.db`), parsed; undefined when it has none. */
export function outputRow(projectRoot: string, pipelineUuid: string, partition: string, blockUuid: string, dbPath?: string): unknown {
  const path = dbPath ?? join(projectRoot, ".kiln/kiln.db");
  if (!existsSync(path)) return undefined;
  const db = new Database(path, { readonly: true });
  try {
    const row = db
      .query<{ value: string }, [string, string, string]>("SELECT value FROM block_outputs WHERE pipeline_uuid = ? AND execution_partition = ? AND block_uuid = ?")
      .get(pipelineUuid, partition, blockUuid);
    return row ? (JSON.parse(row.value) as unknown) : undefined;
  } catch (error) {
    // a database kiln has not migrated yet has no outputs table
    if (String(error).includes("no such table")) return undefined;
    throw error;
  } finally {
    db.close();
  }
}

export function outputFile(projectRoot: string, pipelineUuid: string, partition: string, blockUuid: string): string {
  return join(projectRoot, ".variables/pipelines", pipelineUuid, partition, blockUuid, "output_0");
}

export function logFile(projectRoot: string, pipelineUuid: string, partition: string, blockUuid: string): string {
  return join(projectRoot, ".logs/pipelines", pipelineUuid, partition, `${blockUuid}.log`);
}

/**
 * Whether a process exists and is not a zombie. process.kill(pid, 0) also succeeds for a zombie
 * (dead but not yet reaped by its parent), so on Linux the state in /proc decides.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return existsSync(`/proc/${pid}`) || process.platform !== "linux";
  }
}

/** Polls `check` until it is true; throws with `what` if it is not within `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until none of the pids is alive. */
export function waitGone(pids: number[], timeoutMs = 20_000): Promise<void> {
  return waitFor(() => pids.every((pid) => !isAlive(pid)), `processes ${pids.join(", ")} to end`, timeoutMs);
}

/** Kills leftovers a failed test may leave behind, so they do not outlive the test run. */
export function killQuietly(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

/** stderr without the command's usage that follows a flag mistake's one line ("usage:" and its indented lines). */
export function withoutUsage(stderr: string): string {
  return stderr.replace(/\nusage:\n(?: {2}.*\n)+$/, "\n");
}
