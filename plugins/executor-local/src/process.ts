/**
 * Block runs as child processes (`kiln run-block ...`), one process group each, so a block that
 * crashes or hangs cannot take kiln down, and a timeout or cancel kills everything it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { eachLine } from "@kiln/node/lines";
import {
  BlockError,
  blockCallSpec,
  formatLogLine,
  parseBlockRunUuid,
  readBlockInputs,
  runBlockArgs,
  triggerPipeline,
  TriggerPipelineError,
  type BlockJob,
  type BlockRuntime,
  type ExecutionHandle,
  type ExecutionStatus,
  type JsonObject,
  type LogSink,
} from "@kiln/core";
import type { BlockConfig } from "@kiln/core/project";
import { blockRunVariables, isPythonModule } from "@kiln/core/runtime";
import { readResult as readRecorded, writeResult } from "./result-file.ts";
import { startWorkerProcess, writeToStdin, type WorkerProcess } from "./worker-process.ts";
import {
  BLOCK_FAILED_MARK,
  RESULT_FILE_ENV,
  thinWorkerArgs,
  warmWorkerArgs,
  WORKER_MARK,
  type BlockCall,
  type WarmBlockRun,
  type WorkerAsk,
  type WorkerReply,
} from "./warm-protocol.ts";

export { BLOCK_FAILED_MARK, RESULT_FILE_ENV } from "./warm-protocol.ts";
export { writeResult } from "./result-file.ts";

export interface ProcessOptions {
  /** The command that starts kiln, e.g. `[process.execPath, "/path/to/cli/src/main.ts"]`. */
  command: string[];
  /**
   * The command that starts a thin warm block process for a project, when kiln has one faster
   * than `command` with `run-block --warm --thin` (the CLI's bundled block process); null: use that.
   */
  thinCommand?: (projectRoot: string) => string[] | null;
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
  /**
   * The runtime of the kiln starting the processes. With it, a TypeScript or JavaScript block
   * runs in a thin warm process: kiln resolves its inputs and variables, answers its secrets and
   * triggerPipeline calls, and stores the output it records. Without it (or for a Python block),
   * a full `kiln run-block --warm` process loads the project and stores the output itself.
   */
  runtime?: BlockRuntime;
}

interface Child {
  /** Null for a block run that failed before a process was handed it. */
  process: ChildProcess | WorkerProcess | null;
  cancelled: boolean;
  stderrTail: string[];
  result: Promise<ExecutionStatus>;
  /** A warm worker's block run: its job, and how its end is told (exit, or the boundary line). */
  job?: BlockJob;
  finish?: (code: number | null, signal: NodeJS.Signals | null) => void;
  fail?: (error: string) => void;
  /** A thin process's block run: kiln stores the output its result file holds. */
  thin?: boolean;
  /** Aborted when the block run ends or is cancelled: a triggerPipeline kiln waits on for it stops waiting. */
  stop?: AbortController;
}

const TAIL_LINES = 20;

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

/** The outcome `kiln run-block` recorded, or null if it left none (it crashed, or was killed). */
function readResult(path: string): ExecutionStatus | null {
  const recorded = readRecorded(path);
  return recorded?.state === "completed" ? { state: "completed" } : recorded;
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
  process: WorkerProcess;
  root: string;
  /** A thin process (block-process.ts), or a full `kiln run-block --warm` one. */
  thin: boolean;
  /** The pool it is kept in: its kind and project. */
  pool: string;
  /** A thin process said it is booted (a spare that is still booting is handed a run only when no booted one waits). */
  ready: boolean;
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
  /** The projects whose results folder exists (made here, 0700: a thin process writes its file into it without making it). */
  readonly #resultsFolders = new Set<string>();
  /** Reused workers between block runs, with runs left, by project root. */
  readonly #idle = new Map<string, Worker[]>();
  /** Block runs whose log could not be written, warned of once each. */
  readonly #logFailures = new Set<number>();
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
    const resultFile = join(this.#resultsFolder(job.projectRoot), `${job.blockRunId}-${job.attempt}.json`);
    rmSync(resultFile, { force: true });
    rmSync(cancelMark(resultFile), { force: true });
    if (job.executorConfig.warm === false) return this.#startFresh(job, resultFile);
    return this.#startWarm(job, resultFile);
  }

  /** The environment of a child: kiln's, minus what it withholds, plus `extra`. */
  #env(extra: Record<string, string>): Record<string, string | undefined> {
    const env: Record<string, string | undefined> = { ...process.env, ...this.options.env, ...extra };
    for (const name of this.options.withhold ?? []) delete env[name];
    return env;
  }

  #log(job: BlockJob, stream: string, line: string): void {
    this.#append(job, formatLogLine(Date.now(), stream, line));
  }

  /**
   * Appends to a block run's log. A line that cannot be written (its log folder removed, the
   * disk full) is lost with a warning, once per block run: it is read in the callback of the
   * child's pipe, where a throw would stop the pipe's reading (the child then blocks on a full
   * pipe) or, at the pipe's end, be an uncaught error of kiln's.
   */
  #append(job: BlockJob, text: string): void {
    try {
      this.options.logs.append(job.pipelineUuid, job.executionPartition, job.blockUuid, text);
    } catch (error) {
      if (this.#logFailures.has(job.blockRunId)) return;
      this.#logFailures.add(job.blockRunId);
      process.stderr.write(`kiln: warning: block run ${job.blockRunId} (${job.pipelineUuid}/${job.blockUuid}): its log could not be written, lines are lost: ${error instanceof Error ? error.message : String(error)}\n`);
    }
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
      handedOver = writeToStdin(child.stdin, JSON.stringify(handoff), true);
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

  /** The project's block a job runs, when this runner has the project (options.runtime). */
  #blockOf(job: BlockJob): BlockConfig | null {
    const pipeline = this.options.runtime?.project.pipelines.get(job.pipelineUuid);
    return pipeline?.blocksByUuid.get(parseBlockRunUuid(job.blockUuid).block) ?? null;
  }

  /** What a thin process needs to call the block: read here, where the outputs and the store are. */
  async #callOf(job: BlockJob, block: BlockConfig, runtime: BlockRuntime): Promise<BlockCall> {
    const [inputs, variables] = await Promise.all([readBlockInputs(runtime, job), blockRunVariables(job, runtime.store, runtime.env ?? null)]);
    return { modulePath: block.modulePath, spec: blockCallSpec(block), inputs, variables };
  }

  /**
   * A warm worker handed the block run: a reused one between runs (executor_config.reuse), else
   * a spare, else one started now; a spare is started in its place straight after. TypeScript
   * and JavaScript blocks go to thin processes, Python ones to full ones.
   */
  async #startWarm(job: BlockJob, resultFile: string): Promise<ExecutionHandle> {
    const reuse = reuseOf(job.executorConfig) > 1 && !canReuse() ? 1 : reuseOf(job.executorConfig);
    const root = job.projectRoot;
    const runtime = this.options.runtime;
    const block = this.#blockOf(job);
    const thin = runtime !== undefined && block !== null && !isPythonModule(block.modulePath);
    let call: BlockCall | undefined;
    if (thin) {
      try {
        call = await this.#callOf(job, block, runtime);
      } catch (error) {
        // what the block's own process would have failed with (a missing upstream output): no process is started for it
        return this.#failedBeforeStart(job, resultFile, error);
      }
    }
    const pool = `${thin ? "thin" : "full"}:${root}`;
    let worker = reuse > 1 ? this.#idle.get(pool)?.shift() : undefined;
    if (!worker) {
      worker = this.#takeSpare(pool) ?? this.#spawnWorker(root, thin);
      worker.runsLeft = reuse - 1;
      // a thin process always ends its block run with the boundary: kiln takes the run's end from
      // it, without waiting for the process to exit (it kills what is left of the group instead)
      if (reuse > 1 || thin) worker.boundary = `\u0001kiln-block-run-end-${crypto.randomUUID()}`;
    } else {
      worker.runsLeft--;
    }
    // a claimed worker is a block run kiln waits for, as it waits for a fresh child
    worker.process.ref();
    const record: Child = { process: worker.process, cancelled: false, stderrTail: [], result: Promise.resolve({ state: "running" }), thin, stop: new AbortController() };
    record.result = new Promise<ExecutionStatus>((resolve) => {
      record.finish = (code, signal) => resolve(this.#settle(record, job, code, signal, resultFile));
      record.fail = (error) => resolve({ state: "failed", error });
    });
    void record.result.then(() => record.stop?.abort());
    record.job = job;
    worker.current = record;
    worker.ended.clear();
    for (const [stream, line] of worker.pending.splice(0)) this.#recordLine(record, stream, line);
    const handoff = thin ? undefined : this.options.handoff?.();
    const run: WarmBlockRun = { job, resultFile, ...(call ? { call } : {}), ...(handoff ? { handoff } : {}), ...(worker.boundary ? { boundary: worker.boundary } : {}), ...(worker.runsLeft <= 0 ? { last: true } : {}) };
    let handedOver = Promise.resolve();
    if (worker.exited || !worker.process.writable) {
      record.fail?.("could not start the block process: the warm block process had exited");
    } else {
      // a worker with no runs left is told so by the end of its stdin: it exits after this one
      // (a thin one's stdin stays open for kiln's answers to its questions: it exits after one run unless told otherwise)
      handedOver = worker.process.write(`${JSON.stringify(run)}\n`, !thin && worker.runsLeft <= 0);
    }
    const key = this.#register(record);
    setImmediate(() => this.#refill(pool, root, thin));
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
      ...(reuse > 1 ? { reuse: true } : {}),
      // where a kiln that re-attaches stores the output the thin process recorded
      ...(thin ? { output: { pipeline_uuid: job.pipelineUuid, partition: job.executionPartition, block_uuid: job.blockUuid } } : {}),
    };
  }

  /** `<project>/.kiln/results`, made (owner only) the first time a block run of the project starts. */
  #resultsFolder(projectRoot: string): string {
    const folder = join(projectRoot, ".kiln", "results");
    if (!this.#resultsFolders.has(folder)) {
      mkdirSync(folder, { recursive: true, mode: 0o700 });
      this.#resultsFolders.add(folder);
    }
    return folder;
  }

  /** A booted spare of the pool, else one still booting, else none. */
  #takeSpare(pool: string): Worker | undefined {
    const spares = this.#spares.get(pool);
    if (!spares || spares.length === 0) return undefined;
    const at = spares.findIndex((w) => w.ready);
    return spares.splice(at >= 0 ? at : 0, 1)[0];
  }

  /** A block run that failed before any process ran it: its error in its log and its result file, as its process would have left them. */
  #failedBeforeStart(job: BlockJob, resultFile: string, error: unknown): ExecutionHandle {
    const message = error instanceof Error ? error.message : String(error);
    this.#log(job, "stderr", `${BLOCK_FAILED_MARK}${message.replace(/\n/g, " ")}`);
    writeResult(resultFile, { state: "failed", error: message });
    const record: Child = { process: null, cancelled: false, stderrTail: [], result: Promise.resolve({ state: "failed", error: message }) };
    const key = this.#register(record);
    return { mode: "process", runner: this.#id, key, pid: -1, host: hostname(), started_at: Date.now(), result_file: resultFile };
  }

  /** The outcome of a warm block run that ended; a thin process's output is stored now. */
  async #settle(record: Child, job: BlockJob, code: number | null, signal: NodeJS.Signals | null, resultFile: string): Promise<ExecutionStatus> {
    const outcome = outcomeOf(record, code, signal, resultFile);
    if (outcome.state !== "completed" || !record.thin) return outcome;
    return this.#storeOutput({ pipeline_uuid: job.pipelineUuid, partition: job.executionPartition, block_uuid: job.blockUuid }, resultFile);
  }

  /**
   * Stores the output a thin process recorded in its result file (through this kiln's output
   * store: the process has none); completed, or failed when it cannot be stored.
   */
  async #storeOutput(where: JsonObject, resultFile: string): Promise<ExecutionStatus> {
    const runtime = this.options.runtime;
    const recorded = readRecorded(resultFile);
    // exited 0 without recording anything (the block called process.exit(0)): as a process of its own would
    if (recorded?.state !== "completed" || recorded.output === undefined) return { state: "completed" };
    if (!runtime) return { state: "failed", error: "the block's output is in its result file, but this kiln has no output store to keep it in" };
    const fenced = runtime.fence?.() ?? null;
    if (fenced !== null) return { state: "failed", error: `the output was not stored: ${fenced}` };
    try {
      // the result file, output and all, goes once the engine has committed the end (release):
      // a kiln that restarts before that stores the same output again
      await runtime.outputs.write(String(where.pipeline_uuid), String(where.partition), String(where.block_uuid), JSON.parse(recorded.output));
      return { state: "completed" };
    } catch (error) {
      return { state: "failed", error: `the block's output could not be stored: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  /** Starts a warm worker for the project at `root` (thin, or full: it loads kiln and the project); it waits on stdin. */
  #spawnWorker(root: string, thin: boolean): Worker {
    const bundled = thin ? (this.options.thinCommand?.(root) ?? null) : null;
    const command = bundled ?? [...this.options.command, ...(thin ? thinWorkerArgs(root) : warmWorkerArgs(root))];
    // the events come after the spawn has returned, by which time `worker` is set
    let worker!: Worker;
    // its own process group, so cancel can kill whatever the block started too
    const child = startWorkerProcess(command, { cwd: root, env: this.#env({}) }, {
      line: (stream, line) => this.#workerLine(worker, stream, line),
      error: (error) => {
        worker.exited = true;
        this.#drop(worker);
        worker.current?.fail?.(`could not start the block process: ${error.message}`);
        worker.current = null;
      },
      close: (code, signal) => {
        worker.exited = true;
        // what its block runs started and left behind goes with it
        if (child.pid) killGroup(child.pid, "SIGKILL");
        this.#drop(worker);
        worker.current?.finish?.(code, signal);
        worker.current = null;
      },
    });
    worker = { process: child, root, thin, pool: `${thin ? "thin" : "full"}:${root}`, ready: false, current: null, pending: [], runsLeft: 0, ended: new Set(), exited: false };
    return worker;
  }

  /** A line of a block run's output (stdout, stderr, or a thin process's ctx.logger line) into its log. */
  #recordLine(record: Child, stream: string, line: string): void {
    const job = record.job!;
    if (stream === "stderr") this.#stderrLine(job, record, line);
    else if (stream === "log") this.#append(job, `${line}\n`);
    else this.#log(job, stream, line);
  }

  /** A line of a worker's output: its current block run's, a thin process's message, or the end of a run (the boundary line). */
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
          worker.process.unref();
          const idle = this.#idle.get(worker.pool) ?? [];
          idle.push(worker);
          this.#idle.set(worker.pool, idle);
        } else if (worker.thin && worker.process.pid) {
          // its last block run has ended and its result is recorded: the process, and whatever
          // the block left running in its group, go now
          killGroup(worker.process.pid, "SIGKILL");
        }
      }
      return;
    }
    let kind: string = stream;
    if (worker.thin && stream === "stdout" && line.startsWith(WORKER_MARK)) {
      const message = line.slice(WORKER_MARK.length);
      if (message === "ready") {
        worker.ready = true;
        return;
      }
      // the process has read its first line (its prompt's message, with the space prompt adds)
      if (message.startsWith("took")) return;
      if (message.startsWith("ask ")) {
        if (record) void this.#answer(worker, record, message.slice(4));
        return;
      }
      if (message.startsWith("log ")) {
        kind = "log";
        line = message.slice(4);
      }
    }
    if (!record || !record.job) {
      worker.pending.push([kind, line]);
      return;
    }
    this.#recordLine(record, kind, line);
  }

  /** Answers a thin process's question (a secret, a triggerPipeline) on its stdin, with this kiln's store. */
  async #answer(worker: Worker, record: Child, text: string): Promise<void> {
    let ask: WorkerAsk;
    try {
      ask = JSON.parse(text) as WorkerAsk;
    } catch {
      return;
    }
    const runtime = this.options.runtime;
    const job = record.job!;
    let reply: WorkerReply;
    try {
      if (!runtime) throw new BlockError("this kiln has no block runtime to answer a block process's questions");
      if (ask.op === "secret") {
        reply = { reply: ask.id, value: await runtime.secrets.get(ask.name) };
      } else {
        if (!runtime.store) {
          throw new TriggerPipelineError("ctx.triggerPipeline: this block runtime has no database; call triggerPipeline from @kiln/core with a server's url and API key");
        }
        const log = (message: string) => this.#append(job, formatLogLine(Date.now(), "info", message));
        const signal = record.stop?.signal ?? new AbortController().signal;
        reply = { reply: ask.id, value: await triggerPipeline({ store: runtime.store, project: runtime.project }, ask.pipelineUuid, { ...ask.options, signal, log }) };
      }
    } catch (error) {
      const trigger = error instanceof TriggerPipelineError;
      reply = { reply: ask.id, error: { message: error instanceof Error ? error.message : String(error), trigger, run: trigger ? error.pipelineRun : null } };
    }
    if (worker.current === record && worker.process.writable) void worker.process.write(`${JSON.stringify(reply)}\n`);
  }

  #drop(worker: Worker): void {
    for (const pool of [this.#spares, this.#idle]) {
      const workers = pool.get(worker.pool);
      const at = workers?.indexOf(worker) ?? -1;
      if (at >= 0) workers!.splice(at, 1);
    }
  }

  /** Starts spares for the pool (of `root`, thin or full) up to the pool's size. */
  #refill(pool: string, root: string, thin: boolean): void {
    const spares = this.#spares.get(pool) ?? [];
    this.#spares.set(pool, spares);
    const size = this.options.spares?.() ?? 1;
    while (spares.length < size) spares.push(this.#spawnWorker(root, thin));
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
      for (const workers of pool.values()) for (const worker of workers.splice(0)) worker.process.end();
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
      if (recorded) return this.#reattached(handle, recorded);
    }
    if (pid > 0 && isAlive(pid)) return { state: "running" };
    if (typeof handle.result_file === "string" && existsSync(cancelMark(handle.result_file))) return { state: "cancelled" };
    const recorded = typeof handle.result_file === "string" ? readResult(handle.result_file) : null;
    if (recorded) return this.#reattached(handle, recorded);
    return { state: "failed", error: `block process ${pid} ended while no kiln process was watching it, and left no result` };
  }

  /**
   * The end of a block run another kiln started: a thin process's output, which that kiln did
   * not live to store (its handle says where it goes), is stored now.
   */
  #reattached(handle: ExecutionHandle, recorded: ExecutionStatus): Promise<ExecutionStatus> | ExecutionStatus {
    const where = handle.output;
    if (recorded.state !== "completed" || where === null || typeof where !== "object" || Array.isArray(where)) return recorded;
    return this.#storeOutput(where as JsonObject, String(handle.result_file));
  }

  /**
   * Forgets a block run whose end the engine has committed: its result file and cancel mark go
   * (this machine's, once its process has stopped writing: a run ended by a timeout may still be
   * dying). Without this, `.kiln/results` would keep a file for every block run ever run.
   */
  release(handle: ExecutionHandle): void {
    const file = handle.result_file;
    if (typeof file !== "string" || (handle.host !== undefined && handle.host !== hostname())) return;
    const remove = () => {
      rmSync(file, { force: true });
      rmSync(cancelMark(file), { force: true });
    };
    const child = this.#find(handle);
    if (child) void child.result.then(remove, remove);
    else remove();
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
