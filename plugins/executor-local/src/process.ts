/**
 * Block runs as child processes (`kiln run-block ...`), one process group each, so a block that
 * crashes or hangs cannot take kiln down, and a timeout or cancel kills everything it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { eachLine } from "@kiln/node/lines";
import { formatLogLine, runBlockArgs, type BlockJob, type ExecutionHandle, type ExecutionStatus, type LogSink } from "@kiln/core";

export interface ProcessOptions {
  /** The command that starts kiln, e.g. `[process.execPath, "/path/to/cli/src/main.ts"]`. */
  command: string[];
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /**
   * Values the child needs that must not be in its environment, where the block could read
   * them (the database URL and token, the secret key): written to its stdin as one JSON object,
   * with KILN_HANDOFF=stdin in its environment to say so.
   */
  handoff?: () => Record<string, string>;
  /** Variables of this process's environment the child must not inherit (kiln's own keys). */
  withhold?: readonly string[];
  logs: LogSink;
  /** Milliseconds between SIGTERM and SIGKILL on cancel. */
  killGraceMs?: number;
}

interface Child {
  process: ChildProcess;
  cancelled: boolean;
  stderrTail: string[];
  result: Promise<ExecutionStatus>;
}

const TAIL_LINES = 20;

/** `kiln run-block` ends its stderr with this line when the block threw: the error, on one line. */
export const BLOCK_FAILED_MARK = "kiln: block failed: ";


function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

/**
 * Process groups being cancelled (SIGTERM sent, SIGKILL pending after the grace period). If kiln
 * exits before the grace period ends (`kiln run` exits as soon as its run has ended), the
 * SIGKILL would never come and a block that ignores SIGTERM (`kiln run-block` handles it, a busy
 * block never sees it) would outlive kiln; so they are killed on exit instead.
 */
const cancelling = new Set<number>();
let killOnExitInstalled = false;

function killOnExit(pid: number): void {
  if (!killOnExitInstalled) {
    killOnExitInstalled = true;
    process.on("exit", () => {
      for (const group of cancelling) killGroup(group, "SIGKILL");
    });
  }
  cancelling.add(pid);
}

/** Whether a process runs: signal 0 reaches it, and it is not a zombie waiting to be reaped. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // the state is the field after the parenthesised command name; Z is a zombie (finished)
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** The environment variable that tells `kiln run-block` where to record its outcome. */
export const RESULT_FILE_ENV = "KILN_RESULT_FILE";

/** The outcome `kiln run-block` recorded, or null if it left none (it crashed, or was killed). */
function readResult(path: string): ExecutionStatus | null {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as { state?: unknown; error?: unknown };
    if (parsed.state === "completed") return { state: "completed" };
    if (parsed.state === "failed") return { state: "failed", error: String(parsed.error ?? "the block failed") };
    return null;
  } catch {
    return null;
  }
}

/** Records a block run's outcome for a kiln that was not watching (called by `kiln run-block`). */
export function writeResult(path: string, result: { state: "completed" } | { state: "failed"; error: string }): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, JSON.stringify(result), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** The file that says a block run was cancelled by a kiln that did not start it. */
function cancelMark(resultFile: string): string {
  return `${resultFile}.cancelled`;
}

function writeCancelMark(resultFile: string): void {
  mkdirSync(dirname(resultFile), { recursive: true, mode: 0o700 });
  writeFileSync(cancelMark(resultFile), "", { mode: 0o600 });
}

export class ProcessRunner {
  readonly #children = new Map<number, Child>();
  readonly #id = crypto.randomUUID();
  #next = 1;

  constructor(private readonly options: ProcessOptions) {}

  /** Starts the job's process; the handle names it by pid and host. */
  start(job: BlockJob): ExecutionHandle {
    const [program, ...prefix] = this.options.command;
    if (!program) throw new Error("executor-local: no command configured to start kiln run-block");
    // the child also leaves its outcome in a file, so a kiln that restarts while it runs learns it
    const resultFile = join(job.projectRoot, ".kiln", "results", `${job.blockRunId}-${job.attempt}.json`);
    rmSync(resultFile, { force: true });
    rmSync(cancelMark(resultFile), { force: true });
    const env: Record<string, string | undefined> = { ...process.env, ...this.options.env, [RESULT_FILE_ENV]: resultFile };
    for (const name of this.options.withhold ?? []) delete env[name];
    const handoff = this.options.handoff?.();
    if (handoff) env.KILN_HANDOFF = "stdin";
    const child = spawn(program, [...prefix, ...runBlockArgs(job)], {
      cwd: job.projectRoot,
      env,
      stdio: [handoff ? "pipe" : "ignore", "pipe", "pipe"],
      // its own process group, so cancel can kill whatever the block started too
      detached: true,
    });
    if (handoff && child.stdin) {
      // a child that dies before reading it closes the pipe: its exit code tells what happened
      child.stdin.on("error", () => {});
      child.stdin.end(JSON.stringify(handoff));
    }
    const record: Child = { process: child, cancelled: false, stderrTail: [], result: Promise.resolve({ state: "running" }) };
    const log = (stream: string) => (line: string) =>
      this.options.logs.append(job.pipelineUuid, job.executionPartition, job.blockUuid, formatLogLine(Date.now(), stream, line));
    eachLine(child.stdout, log("stdout"));
    eachLine(child.stderr, (line) => {
      record.stderrTail.push(line);
      if (record.stderrTail.length > TAIL_LINES) record.stderrTail.shift();
      log("stderr")(line);
    });
    record.result = new Promise<ExecutionStatus>((resolve) => {
      child.once("error", (error) => resolve({ state: "failed", error: `could not start the block process: ${error.message}` }));
      child.once("close", (code, signal) => {
        if (record.cancelled) return resolve({ state: "cancelled" });
        if (code === 0) return resolve({ state: "completed" });
        const last = record.stderrTail[record.stderrTail.length - 1] ?? "";
        if (code === 1 && last.startsWith(BLOCK_FAILED_MARK)) {
          // the recorded error, when there is one, has the lines the marked line had to join
          const recorded = readResult(resultFile);
          const error = recorded?.state === "failed" ? recorded.error : last.slice(BLOCK_FAILED_MARK.length);
          return resolve({ state: "failed", error });
        }
        const tail = record.stderrTail.join("\n").trim();
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        resolve({ state: "failed", error: `block process ${how}${tail ? `: ${tail}` : ""}` });
      });
    });
    const key = this.#next++;
    this.#children.set(key, record);
    // keep the record a while after the end, for a late status() or cancel()
    void record.result.then(() => setTimeout(() => this.#children.delete(key), 60_000).unref?.());
    // pid -1: the spawn failed, and the "error" event above has the reason
    return { mode: "process", runner: this.#id, key, pid: child.pid ?? -1, host: hostname(), started_at: Date.now(), result_file: resultFile };
  }

  /** The record of a process this runner started (the key is only meaningful in this process). */
  #find(handle: ExecutionHandle): Child | undefined {
    return handle.host === hostname() && handle.runner === this.#id ? this.#children.get(Number(handle.key)) : undefined;
  }

  /** Resolves when the process ends. */
  wait(handle: ExecutionHandle): Promise<ExecutionStatus> {
    const child = this.#find(handle);
    if (child) return child.result;
    return this.status(handle);
  }

  /** The process's state; for a process this kiln did not start, whether its pid is alive. */
  async status(handle: ExecutionHandle): Promise<ExecutionStatus> {
    const child = this.#find(handle);
    if (child) {
      const settled = await Promise.race([child.result, Promise.resolve<ExecutionStatus>({ state: "running" })]);
      return settled;
    }
    if (handle.host !== hostname()) {
      return { state: "failed", error: `the block process ran on host ${String(handle.host)}; a local process cannot be watched from here` };
    }
    const pid = Number(handle.pid);
    if (pid > 0 && isAlive(pid)) return { state: "running" };
    if (typeof handle.result_file === "string" && existsSync(cancelMark(handle.result_file))) return { state: "cancelled" };
    const recorded = typeof handle.result_file === "string" ? readResult(handle.result_file) : null;
    if (recorded) return recorded;
    return { state: "failed", error: `block process ${pid} ended while no kiln process was watching it, and left no result` };
  }

  /** SIGTERM to the process group, then SIGKILL after the grace period. */
  async cancel(handle: ExecutionHandle): Promise<void> {
    const child = this.#find(handle);
    const pid = Number(handle.pid);
    if (child) child.cancelled = true;
    if (!(pid > 0)) return;
    if (handle.host !== undefined && handle.host !== hostname()) return;
    // a process another kiln started: its end is seen only through status(), which must then
    // say cancelled, whatever the block records when SIGTERM makes it return
    if (!child && typeof handle.result_file === "string") writeCancelMark(handle.result_file);
    killOnExit(pid);
    killGroup(pid, "SIGTERM");
    const grace = this.options.killGraceMs ?? 2000;
    try {
      if (child) {
        const ended = await Promise.race([
          child.result.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), grace)),
        ]);
        if (!ended) killGroup(pid, "SIGKILL");
        await child.result;
      } else {
        await new Promise((r) => setTimeout(r, grace));
      }
      // whatever the block started and left behind in its group goes too
      killGroup(pid, "SIGKILL");
    } finally {
      cancelling.delete(pid);
    }
  }
}
