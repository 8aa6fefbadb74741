/**
 * The faults of a chaos run, one every few seconds (seeded): SIGKILL of a replica (started again
 * after a pause), SIGSTOP of a replica past the orphan window then SIGCONT, Redis killed and
 * started again, a block process killed, the sqld server restarted. Each is logged with its time
 * and target, so the checks can tell a frozen process's work from a double execution.
 */
import type { ChaosDb } from "./db.ts";
import { isBlockProcessOf, killBlockProcess, processesIn, type RedisProcess, type Replica, type SqldProcess } from "./processes.ts";
import type { Random } from "./random.ts";
import { messageOf } from "@kiln/core";

export type FaultKind = "kill_replica" | "freeze_replica" | "kill_block_process" | "kill_redis" | "restart_sqld";

export interface Freeze {
  pid: number;
  replica: number;
  from: number;
  /** When SIGCONT was sent (Infinity until then). */
  to: number;
}

export interface FaultEnv {
  rng: Random;
  replicas: Replica[];
  redis: RedisProcess | null;
  sqld: SqldProcess | null;
  db: ChaosDb;
  root: string;
  orphanAfterSeconds: number;
  /** Seconds between two faults: [min, max). */
  everySeconds: [number, number];
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Faults {
  readonly counts: Record<FaultKind, number> = { kill_replica: 0, freeze_replica: 0, kill_block_process: 0, kill_redis: 0, restart_sqld: 0 };
  readonly freezes: Freeze[] = [];
  /** Replica pids killed, and when (their in-process blocks died then). */
  readonly replicaKills: Array<{ pid: number; at: number }> = [];
  readonly blockKills: Array<{ pid: number; at: number }> = [];
  /** Replicas that exited although no fault killed them (e.g. a start while the database was down), each started again. */
  readonly unexpectedExits: Array<{ replica: number; at: number }> = [];
  readonly #pending = new Set<Promise<void>>();
  /** Replicas killed on purpose, whose restart is pending. */
  readonly #restarting = new Set<number>();
  #stopped = false;

  constructor(private readonly env: FaultEnv) {}

  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  /** Injects faults until `untilMs` (epoch ms). */
  async run(untilMs: number): Promise<void> {
    const { rng, everySeconds } = this.env;
    const supervisor = setInterval(() => this.#supervise(), 1_000);
    try {
      await this.#loop(untilMs, rng, everySeconds);
    } finally {
      clearInterval(supervisor);
    }
  }

  /** A replica that is down with no restart pending exited on its own: start it again, and say so. */
  #supervise(): void {
    if (this.#stopped) return;
    for (const replica of this.env.replicas) {
      if (replica.pid === null && !this.#restarting.has(replica.index)) {
        this.unexpectedExits.push({ replica: replica.index, at: Date.now() });
        this.env.log(`replica ${replica.index} exited on its own (see its log); starting it again`);
        replica.start();
      }
    }
  }

  async #loop(untilMs: number, rng: Random, everySeconds: [number, number]): Promise<void> {
    while (!this.#stopped) {
      const wait = rng.between(everySeconds[0], everySeconds[1]) * 1000;
      if (Date.now() + wait >= untilMs) break;
      await sleep(wait);
      if (this.#stopped) break;
      await this.#inject().catch((error: unknown) => this.env.log(`fault injection failed: ${messageOf(error)}`));
    }
  }

  /** Replicas that run and are not frozen. */
  #healthy(): Replica[] {
    return this.env.replicas.filter((r) => r.pid !== null && !r.frozen);
  }

  /** Runs `action` after `ms` in the background; restore() waits for it. */
  #later(ms: number, action: () => Promise<void> | void): void {
    const p = sleep(ms)
      .then(action)
      .catch((error: unknown) => this.env.log(`delayed fault action failed: ${messageOf(error)}`))
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  async #inject(): Promise<void> {
    const { rng, redis, sqld } = this.env;
    const healthy = this.#healthy();
    const kinds: FaultKind[] = ["kill_block_process", "kill_block_process"];
    // one replica always stays up and awake, so time triggers keep being served
    if (healthy.length >= 2) kinds.push("kill_replica", "kill_replica");
    if (healthy.length >= 2 && !this.env.replicas.some((r) => r.frozen)) kinds.push("freeze_replica", "freeze_replica");
    if (redis?.pid) kinds.push("kill_redis");
    if (sqld?.pid) kinds.push("restart_sqld");
    const kind = rng.pick(kinds);
    if (kind === "kill_replica") return this.#killReplica(rng.pick(healthy));
    if (kind === "freeze_replica") return this.#freezeReplica(rng.pick(healthy));
    if (kind === "kill_redis") return this.#killRedis(redis as RedisProcess);
    if (kind === "restart_sqld") return this.#restartSqld(sqld as SqldProcess);
    if (!(await this.#killBlock())) {
      // no block process running at this moment: take another fault instead
      const others = kinds.filter((k) => k !== "kill_block_process");
      if (others.length > 0) {
        const other = rng.pick(others);
        if (other === "kill_replica") return this.#killReplica(rng.pick(healthy));
        if (other === "freeze_replica") return this.#freezeReplica(rng.pick(healthy));
        if (other === "kill_redis") return this.#killRedis(redis as RedisProcess);
        return this.#restartSqld(sqld as SqldProcess);
      }
    }
  }

  async #killReplica(replica: Replica): Promise<void> {
    const pid = replica.pid;
    if (pid === null) return;
    this.#restarting.add(replica.index);
    await replica.kill();
    this.counts.kill_replica++;
    this.replicaKills.push({ pid, at: Date.now() });
    const pause = this.env.rng.between(1, 4) * 1000;
    this.env.log(`SIGKILL replica ${replica.index} (pid ${pid}); restart in ${(pause / 1000).toFixed(1)} s`);
    this.#later(pause, () => {
      this.#restarting.delete(replica.index);
      if (!this.#stopped && replica.pid === null) replica.start();
    });
  }

  async #freezeReplica(replica: Replica): Promise<void> {
    const pid = replica.pid;
    if (pid === null || !replica.freeze()) return;
    const freeze: Freeze = { pid, replica: replica.index, from: Date.now(), to: Infinity };
    this.freezes.push(freeze);
    this.counts.freeze_replica++;
    const ms = (this.env.orphanAfterSeconds + this.env.rng.between(2, 4)) * 1000;
    this.env.log(`SIGSTOP replica ${replica.index} (pid ${pid}) for ${(ms / 1000).toFixed(1)} s (orphan window ${this.env.orphanAfterSeconds} s)`);
    this.#later(ms, () => this.#thaw(replica, freeze));
  }

  #thaw(replica: Replica, freeze: Freeze): void {
    if (freeze.to !== Infinity) return;
    if (replica.pid === freeze.pid) replica.thaw();
    freeze.to = Date.now();
    this.env.log(`SIGCONT replica ${replica.index} (pid ${freeze.pid})`);
  }

  async #killRedis(redis: RedisProcess): Promise<void> {
    await redis.kill();
    this.counts.kill_redis++;
    const pause = this.env.rng.between(2, 5) * 1000;
    this.env.log(`SIGKILL redis; start again in ${(pause / 1000).toFixed(1)} s`);
    this.#later(pause, async () => {
      if (redis.pid === null) await redis.start();
    });
  }

  async #restartSqld(sqld: SqldProcess): Promise<void> {
    await sqld.terminate();
    this.counts.restart_sqld++;
    const pause = this.env.rng.between(0.5, 2) * 1000;
    this.env.log(`sqld stopped; start again in ${(pause / 1000).toFixed(1)} s`);
    this.#later(pause, async () => {
      if (sqld.pid === null) await sqld.start();
    });
  }

  /** SIGKILLs one running block process (from a running block run's handle, else any in the project). */
  async #killBlock(): Promise<boolean> {
    const { db, root, rng } = this.env;
    const rows = (await db.tryRows("SELECT executor_handle FROM block_runs WHERE status = 'running' AND executor_handle IS NOT NULL")) ?? [];
    let pids = rows
      .map((r) => {
        try {
          return Number((JSON.parse(String(r.executor_handle)) as { pid?: unknown }).pid);
        } catch {
          return NaN;
        }
      })
      .filter((pid) => Number.isInteger(pid) && pid > 0 && isBlockProcessOf(pid, root));
    if (pids.length === 0) pids = processesIn(root);
    if (pids.length === 0) return false;
    const pid = rng.pick(pids);
    if (!killBlockProcess(pid, root)) return false;
    this.counts.kill_block_process++;
    this.blockKills.push({ pid, at: Date.now() });
    this.env.log(`SIGKILL block process ${pid}`);
    return true;
  }

  /** Stops injecting; waits for the pending restarts; wakes frozen replicas; starts whatever is down. */
  async restore(): Promise<void> {
    this.#stopped = true;
    // thaw first: a pending thaw may be many seconds away
    for (const replica of this.env.replicas) {
      const open = this.freezes.find((f) => f.replica === replica.index && f.to === Infinity);
      if (open) this.#thaw(replica, open);
    }
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    if (this.env.sqld && this.env.sqld.pid === null) await this.env.sqld.start();
    if (this.env.redis && this.env.redis.pid === null) await this.env.redis.start();
    for (const replica of this.env.replicas) if (replica.pid === null) replica.start();
  }
}
