/**
 * Block runs as child processes (`kiln run-block ...`), one process group each, so a block that
 * crashes or hangs cannot take kiln down, and a timeout or cancel kills everything it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { eachLine } from "@kiln/node/lines";
import { formatLogLine, runBlockArgs, type BlockJob, type ExecutionHandle, type ExecutionStatus, type JsonObject, type LogSink } from "@kiln/core";
import { warmWorkerArgs, type WarmBlockRun } from "./warm-protocol.ts";

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
  /** How many warm block processes to keep ready per project (asked at each claim); 1 when unset. */
  spares?: () => number;
}

interface Child {
  process: ChildProcess;
  cancelled: boolean;
  stderrTail: string[];
  result: Promise<ExecutionStatus>;
  /** A warm worker's block run: its job, and how its end is told (exit, or the boundary line). */
  job?: BlockJob;
  finish?: (code: number | null, signal: NodeJS.Signals | null) => void;
  fail?: (error: string) => void;
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

/** The runners whose spare processes go when kiln exits (they would, at their stdin's end, a moment later). */
const spareRunners = new Set<{ killSpares(): void }>();

function installKillOnExit(): void {
  if (killOnExitInstalled) return;
  killOnExitInstalled = true;
  process.on("exit", () => {
    for (const group of cancelling) killGroup(group, "SIGKILL");
    for (const runner of spareRunners) runner.killSpares();
  });
}

function killOnExit(pid: number): void {
  installKillOnExit();
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

/** The outcome of a block process that exited (or, reused, ended its block run) with `code` or `signal`. */
function outcomeOf(record: Child, code: number | null, signal: NodeJS.Signals | null, resultFile: string): ExecutionStatus {
  if (record.cancelled) return { state: "cancelled" };
  if (code === 0) return { state: "completed" };
  const last = record.stderrTail[record.stderrTail.length - 1] ?? "";
  if (code === 1 && last.startsWith(BLOCK_FAILED_MARK)) {
    // the recorded error, when there is one, has the lines the marked line had to join
    const recorded = readResult(resultFile);
    const error = recorded?.state === "failed" ? recorded.error : last.slice(BLOCK_FAILED_MARK.length);
    return { state: "failed", error };
  }
  const tail = record.stderrTail.join("\n").trim();
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  return { state: "failed", error: `block process ${how}${tail ? `: ${tail}` : ""}` };
}

/** How many block runs one warm worker may run in sequence (executor_config.reuse), 1 unless set. */
export function reuseOf(config: JsonObject): number {
  const reuse = config.reuse;
  return typeof reuse === "number" && Number.isInteger(reuse) && reuse > 1 ? reuse : 1;
}

let reuseWarned = false;

/**
 * Whether a worker can run block runs in sequence: it imports each run's modules afresh through
 * Bun's module registry (require.cache); Node and Deno keep an ES module once imported.
 */
function canReuse(): boolean {
  if ("Bun" in globalThis) return true;
  if (!reuseWarned) {
    reuseWarned = true;
    process.stderr.write("kiln: warning: executor_config.reuse needs Bun (a fresh import of the block's modules for each run); here each block run gets a process of its own\n");
  }
  return false;
}

/** A warm worker: a `kiln run-block --warm` process, waiting for a block run or running one. */
interface Worker {
  process: ChildProcess;
  root: string;
  /** The block run it runs now: its output lines are that run's. */
  current: Child | null;
  /** Lines it wrote while it ran no block run (a spare's project warnings): the next run's. */
  pending: Array<[string, string]>;
  /** Block runs it may still be handed after the current one (executor_config.reuse). */
  runsLeft: number;
  /** The line ending each block run's output when it is reused; unset when it runs one. */
  boundary?: string;
  /** Streams (stdout, stderr) that have ended the current block run with the boundary line. */
  ended: Set<string>;
  exited: boolean;
}

/** Spares retire after this long without a claim: an idle kiln keeps no processes. */
const SPARE_IDLE_MS = 60_000;

export class ProcessRunner {
  readonly #children = new Map<number, Child>();
  readonly #id = crypto.randomUUID();
  #next = 1;
  /** Booted workers no block run has claimed yet, by project root. */
  readonly #spares = new Map<string, Worker[]>();
  /** Reused workers between block runs, with runs left, by project root. */
  readonly #idle = new Map<string, Worker[]>();
  #idleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: ProcessOptions) {
    spareRunners.add(this);
    installKillOnExit();
  }

  /** Starts the job's process (a warm one unless executor_config.warm is false); the handle names it by pid and host. */
  start(job: BlockJob): Promise<ExecutionHandle> {
    const [program] = this.options.command;
    if (!program) throw new Error("executor-local: no command configured to start kiln run-block");
    // the child also leaves its outcome in a file, so a kiln that restarts while it runs learns it
    const resultFile = join(job.projectRoot, ".kiln", "results", `${job.blockRunId}-${job.attempt}.json`);
    rmSync(resultFile, { force: true });
    rmSync(cancelMark(resultFile), { force: true });
    if (job.executorConfig.warm === false) return this.#startFresh(job, resultFile);
    return this.#startWarm(job, resultFile);
  }

  /**
   * Resolves once `data` is in the child's stdin pipe (or the pipe failed): the handle is stored
   * only then, so a kiln killed right after storing it has handed the block run over already.
   */
  #handOver(stdin: NodeJS.WritableStream, data: string, end: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        stdin.off("error", done);
        resolve();
      };
      // a child that died first: its exit tells what happened
      stdin.once("error", done);
      if (end) stdin.end(data, done);
      else stdin.write(data, done);
    });
  }

  /** The environment of a child: kiln's, minus what it withholds, plus `extra`. */
  #env(extra: Record<string, string>): Record<string, string | undefined> {
    const env: Record<string, string | undefined> = { ...process.env, ...this.options.env, ...extra };
    for (const name of this.options.withhold ?? []) delete env[name];
    return env;
  }

  #log(job: BlockJob, stream: string, line: string): void {
    this.options.logs.append(job.pipelineUuid, job.executionPartition, job.blockUuid, formatLogLine(Date.now(), stream, line));
  }

  /** Keeps a line of stderr for the block run's error, and logs it. */
  #stderrLine(job: BlockJob, record: Child, line: string): void {
    record.stderrTail.push(line);
    if (record.stderrTail.length > TAIL_LINES) record.stderrTail.shift();
    this.#log(job, "stderr", line);
  }

  #register(record: Child): number {
    const key = this.#next++;
    this.#children.set(key, record);
    // keep the record a while after the end, for a late status() or cancel()
    void record.result.then(() => setTimeout(() => this.#children.delete(key), 60_000).unref?.());
    return key;
  }

  /** A process started for this block run alone: `kiln run-block` with the run's ids as arguments. */
  async #startFresh(job: BlockJob, resultFile: string): Promise<ExecutionHandle> {
    const [program, ...prefix] = this.options.command as [string, ...string[]];
    const handoff = this.options.handoff?.();
    const env = this.#env({ [RESULT_FILE_ENV]: resultFile, ...(handoff ? { KILN_HANDOFF: "stdin" } : {}) });
    const child = spawn(program, [...prefix, ...runBlockArgs(job)], {
      cwd: job.projectRoot,
      env,
      stdio: [handoff ? "pipe" : "ignore", "pipe", "pipe"],
      // its own process group, so cancel can kill whatever the block started too
      detached: true,
    });
    let handedOver = Promise.resolve();
    if (handoff && child.stdin) {
      // a child that dies before reading it closes the pipe: its exit code tells what happened
      child.stdin.on("error", () => {});
      handedOver = this.#handOver(child.stdin, JSON.stringify(handoff), true);
    }
    const record: Child = { process: child, cancelled: false, stderrTail: [], result: Promise.resolve({ state: "running" }) };
    eachLine(child.stdout, (line) => this.#log(job, "stdout", line));
    eachLine(child.stderr, (line) => this.#stderrLine(job, record, line));
    record.result = new Promise<ExecutionStatus>((resolve) => {
      child.once("error", (error) => resolve({ state: "failed", error: `could not start the block process: ${error.message}` }));
      child.once("close", (code, signal) => {
        // what the block started and left behind (a crash does not wait for its children) goes with it
        if (child.pid) killGroup(child.pid, "SIGKILL");
        resolve(outcomeOf(record, code, signal, resultFile));
      });
    });
    const key = this.#register(record);
    await handedOver;
    // pid -1: the spawn failed, and the "error" event above has the reason
    return { mode: "process", runner: this.#id, key, pid: child.pid ?? -1, host: hostname(), started_at: Date.now(), result_file: resultFile };
  }

  /**
   * A warm worker handed the block run: a reused one between runs (executor_config.reuse), else
   * a spare, else one started now; a spare is started in its place straight after.
   */
  async #startWarm(job: BlockJob, resultFile: string): Promise<ExecutionHandle> {
    const reuse = reuseOf(job.executorConfig) > 1 && !canReuse() ? 1 : reuseOf(job.executorConfig);
    const root = job.projectRoot;
    let worker = reuse > 1 ? this.#idle.get(root)?.shift() : undefined;
    if (!worker) {
      worker = this.#spares.get(root)?.shift() ?? this.#spawnWorker(root);
      worker.runsLeft = reuse - 1;
      if (reuse > 1) worker.boundary = `\u0001kiln-block-run-end-${crypto.randomUUID()}`;
    } else {
      worker.runsLeft--;
    }
    // a claimed worker is a block run kiln waits for, as it waits for a fresh child
    worker.process.ref?.();
    const record: Child = { process: worker.process, cancelled: false, stderrTail: [], result: Promise.resolve({ state: "running" }) };
    record.result = new Promise<ExecutionStatus>((resolve) => {
      record.finish = (code, signal) => resolve(outcomeOf(record, code, signal, resultFile));
      record.fail = (error) => resolve({ state: "failed", error });
    });
    record.job = job;
    worker.current = record;
    worker.ended.clear();
    for (const [stream, line] of worker.pending.splice(0)) {
      if (stream === "stderr") this.#stderrLine(job, record, line);
      else this.#log(job, stream, line);
    }
    const handoff = this.options.handoff?.();
    const run: WarmBlockRun = { job, resultFile, ...(handoff ? { handoff } : {}), ...(worker.boundary ? { boundary: worker.boundary } : {}) };
    const stdin = worker.process.stdin;
    let handedOver = Promise.resolve();
    if (worker.exited || !stdin || stdin.destroyed) {
      record.fail?.("could not start the block process: the warm block process had exited");
    } else {
      // a worker with no runs left is told so by the end of its stdin: it exits after this one
      handedOver = this.#handOver(stdin, `${JSON.stringify(run)}\n`, worker.runsLeft <= 0);
    }
    const key = this.#register(record);
    setImmediate(() => this.#refill(root));
    this.#armIdle();
    await handedOver;
    return {
      mode: "process",
      runner: this.#id,
      key,
      pid: worker.process.pid ?? -1,
      host: hostname(),
      started_at: Date.now(),
      result_file: resultFile,
      ...(worker.boundary ? { reuse: true } : {}),
    };
  }

  /** Starts a warm worker for the project at `root`; it loads kiln and the project and waits on stdin. */
  #spawnWorker(root: string): Worker {
    const [program, ...prefix] = this.options.command as [string, ...string[]];
    const child = spawn(program, [...prefix, ...warmWorkerArgs(root)], {
      cwd: root,
      env: this.#env({}),
      stdio: ["pipe", "pipe", "pipe"],
      // its own process group, so cancel can kill whatever the block started too
      detached: true,
    });
    const worker: Worker = { process: child, root, current: null, pending: [], runsLeft: 0, ended: new Set(), exited: false };
    child.stdin?.on("error", () => {});
    // a spare does not keep kiln's event loop alive; a claimed worker does (ref on claim)
    child.unref?.();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
    eachLine(child.stdout, (line) => this.#workerLine(worker, "stdout", line));
    eachLine(child.stderr, (line) => this.#workerLine(worker, "stderr", line));
    child.once("error", (error) => {
      worker.exited = true;
      this.#drop(worker);
      worker.current?.fail?.(`could not start the block process: ${error.message}`);
      worker.current = null;
    });
    child.once("close", (code, signal) => {
      worker.exited = true;
      // what its block runs started and left behind goes with it
      if (child.pid) killGroup(child.pid, "SIGKILL");
      this.#drop(worker);
      worker.current?.finish?.(code, signal);
      worker.current = null;
    });
    return worker;
  }

  /** A line of a worker's output: its current block run's, or the end of it (the boundary line). */
  #workerLine(worker: Worker, stream: "stdout" | "stderr", line: string): void {
    const record = worker.current;
    const at = worker.boundary ? line.indexOf(worker.boundary) : -1;
    if (at >= 0 && record) {
      const code = Number(line.slice(at + worker.boundary!.length + 1));
      const before = line.slice(0, at);
      if (before) this.#workerLine(worker, stream, before);
      worker.ended.add(stream);
      if (worker.ended.size === 2) {
        worker.current = null;
        record.finish?.(Number.isInteger(code) ? code : 1, null);
        // a cancelled run's worker is being killed: never hand it another one
        if (worker.runsLeft > 0 && !worker.exited && !record.cancelled) {
          worker.process.unref?.();
          const idle = this.#idle.get(worker.root) ?? [];
          idle.push(worker);
          this.#idle.set(worker.root, idle);
        }
      }
      return;
    }
    if (!record || !record.job) {
      worker.pending.push([stream, line]);
      return;
    }
    if (stream === "stderr") this.#stderrLine(record.job, record, line);
    else this.#log(record.job, "stdout", line);
  }

  #drop(worker: Worker): void {
    for (const pool of [this.#spares, this.#idle]) {
      const workers = pool.get(worker.root);
      const at = workers?.indexOf(worker) ?? -1;
      if (at >= 0) workers!.splice(at, 1);
    }
  }

  /** Starts spares for `root` up to the pool's size. */
  #refill(root: string): void {
    const spares = this.#spares.get(root) ?? [];
    this.#spares.set(root, spares);
    const size = this.options.spares?.() ?? 1;
    while (spares.length < size) spares.push(this.#spawnWorker(root));
  }

  /** Retires every spare after SPARE_IDLE_MS without a claim. */
  #armIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.retireSpares(), SPARE_IDLE_MS);
    (this.#idleTimer as { unref?: () => void }).unref?.();
  }

  /** Ends the spares and the reused workers between runs: their stdin ends, so they exit. */
  retireSpares(): void {
    for (const pool of [this.#spares, this.#idle]) {
      for (const workers of pool.values()) for (const worker of workers.splice(0)) worker.process.stdin?.end();
    }
  }

  /** Kills the spares at once (kiln is exiting; a worker running a block run is left to it). */
  killSpares(): void {
    for (const pool of [this.#spares, this.#idle]) {
      for (const workers of pool.values()) for (const worker of workers.splice(0)) if (worker.process.pid) killGroup(worker.process.pid, "SIGKILL");
    }
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
    // a reused worker lives on after the block run: its result, once there, is the run's end
    if (handle.reuse === true && typeof handle.result_file === "string") {
      if (existsSync(cancelMark(handle.result_file))) return { state: "cancelled" };
      const recorded = readResult(handle.result_file);
      if (recorded) return recorded;
    }
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
    if (handle.reuse === true) {
      // a reused worker whose block run ended may be running another one by now: leave it be
      if (child && (await Promise.race([child.result.then(() => true), Promise.resolve(false)]))) return;
      if (!child && typeof handle.result_file === "string" && readResult(handle.result_file)) return;
    }
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
