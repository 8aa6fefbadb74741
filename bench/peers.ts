/**
 * The peers on kiln's three workloads, in the same run as kiln's own figures: BullMQ (on a
 * redis-server this starts; FlowProducer and enqueue-next) and graphile-worker (on a PostgreSQL
 * cluster this starts). Their jobs do nothing, as kiln's no-op blocks do. See bench/README.md.
 *
 * - throughput: 1,000 chains of 3 jobs, all added at once, until the 3,000th job completed
 * - chain: one chain of 40 jobs, each added by the one before when it ends (a flow for BullMQ's flow variant)
 * - latency: a job added → its processor starts, one at a time (p50/p99)
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { FlowProducer, Queue, Worker, type FlowJob } from "bullmq";
import { freePort } from "../test/helpers/ports.ts";
import { LATENCY_WARMUP } from "./server.ts";
import { Logger, run as runGraphile, makeWorkerUtils, type Runner, type TaskList } from "graphile-worker";

/** graphile-worker logs a line per job by default: that would be measured too. Errors still show. */
const quiet = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`graphile-worker: ${message}\n`);
});

export interface PeerFigures {
  name: string;
  /** 1,000 × 3 chains: jobs/s. */
  jobsPerSecond: number;
  /** 40-job chain, seconds (median of the repetitions). */
  chainSeconds: number;
  /** add → processor start, ms. */
  p50: number;
  p99: number;
  detail: string;
}

const CHAINS = 1_000;
const CHAIN_LENGTH = 3;
const LONG_CHAIN = 40;
const LATENCY_SAMPLES = 500;

const seconds = (since: number) => (performance.now() - since) / 1000;


function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  // nearest rank
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function median(values: number[]): number {
  return quantile(values, 0.5);
}

// ------------------------------------------------------------------------------------------------
// servers

interface Server {
  url: string;
  stop(): void;
}

async function startRedis(): Promise<Server & { port: number }> {
  const port = await freePort();
  const child: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const stop = () => void (child.exitCode === null && child.kill("SIGKILL"));
  process.once("exit", stop);
  for (let i = 0; i < 200; i++) {
    if (spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() === "PONG") return { url: `redis://127.0.0.1:${port}`, port, stop };
    await new Promise((r) => setTimeout(r, 25));
  }
  stop();
  throw new Error(`redis-server did not start on port ${port}`);
}

/** The PostgreSQL binaries: Debian's, else those on PATH. */
function pgBin(name: string): string {
  for (const version of ["17", "16", "15"]) {
    const path = `/usr/lib/postgresql/${version}/bin/${name}`;
    if (spawnSync("test", ["-x", path]).status === 0) return path;
  }
  return name;
}

/** A PostgreSQL cluster in a temp folder (initdb refuses root: run as the postgres user when root). */
async function startPostgres(): Promise<Server> {
  const root = mkdtempSync(join(tmpdir(), "kiln-bench-pg-"));
  const data = join(root, "data");
  mkdirSync(data);
  const asRoot = process.getuid?.() === 0;
  const as = (args: string[]) => (asRoot ? ["runuser", ["-u", "postgres", "--", ...args]] : [args[0]!, args.slice(1)]) as [string, string[]];
  if (asRoot) {
    const uid = Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());
    const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
    chownSync(root, uid, gid);
    chownSync(data, uid, gid);
  }
  const init = spawnSync(...as([pgBin("initdb"), "-D", data, "-U", "postgres", "--auth=trust"]), { encoding: "utf8" });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const start = spawnSync(...as([pgBin("pg_ctl"), "-D", data, "-o", `-p ${port} -c listen_addresses=127.0.0.1 -k ${root} -c max_connections=100`, "-w", "-l", join(root, "log"), "start"]), { encoding: "utf8" });
  if (start.status !== 0) throw new Error(`pg_ctl start failed: ${start.stderr}${start.stdout}`);
  const stop = () => {
    spawnSync(...as([pgBin("pg_ctl"), "-D", data, "-m", "immediate", "stop"]));
    rmSync(root, { recursive: true, force: true });
  };
  process.once("exit", stop);
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
}

// ------------------------------------------------------------------------------------------------
// BullMQ

interface Connection {
  host: string;
  port: number;
}

/** A worker on a new queue; `onJob` is the processor. Resolves once it is ready. */
async function bullWorker(connection: Connection, name: string, concurrency: number, onJob: (data: { i: number; chain: number }) => Promise<void> | void) {
  const worker = new Worker(name, async (job) => onJob(job.data as { i: number; chain: number }), { connection, concurrency, autorun: true });
  await worker.waitUntilReady();
  return worker;
}

/** A 3-job (or n-job) chain as a flow: the last job is the root, each job's child the one before. */
function flowOf(queueName: string, chain: number, length: number): FlowJob {
  let node: FlowJob = { name: "step", queueName, data: { i: 0, chain } };
  for (let i = 1; i < length; i++) node = { name: "step", queueName, data: { i, chain }, children: [node] };
  return node;
}

async function bullThroughputFlow(connection: Connection, concurrency: number): Promise<number> {
  const name = `flow-${concurrency}-${crypto.randomUUID()}`;
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const worker = await bullWorker(connection, name, concurrency, () => {
    if (++done === CHAINS * CHAIN_LENGTH) setImmediate(resolveAll);
  });
  const flows = new FlowProducer({ connection });
  try {
    const started = performance.now();
    await flows.addBulk(Array.from({ length: CHAINS }, (_, chain) => flowOf(name, chain, CHAIN_LENGTH)));
    await all;
    return (CHAINS * CHAIN_LENGTH) / seconds(started);
  } finally {
    await worker.close();
    await flows.close();
  }
}

async function bullThroughputEnqueueNext(connection: Connection, concurrency: number): Promise<number> {
  const name = `next-${concurrency}-${crypto.randomUUID()}`;
  const queue = new Queue(name, { connection });
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const worker = await bullWorker(connection, name, concurrency, async (data) => {
    if (data.i + 1 < CHAIN_LENGTH) await queue.add("step", { i: data.i + 1, chain: data.chain }, { removeOnComplete: true });
    if (++done === CHAINS * CHAIN_LENGTH) setImmediate(resolveAll);
  });
  try {
    const started = performance.now();
    await queue.addBulk(Array.from({ length: CHAINS }, (_, chain) => ({ name: "step", data: { i: 0, chain }, opts: { removeOnComplete: true } })));
    await all;
    return (CHAINS * CHAIN_LENGTH) / seconds(started);
  } finally {
    await worker.close();
    await queue.close();
  }
}

/** A 40-job chain, each job added by the one before as it ends; from the first add to the 40th job's end. */
async function bullChain(connection: Connection, repetitions: number): Promise<number[]> {
  const name = `chain-${crypto.randomUUID()}`;
  const queue = new Queue(name, { connection });
  let finished: (() => void) | null = null;
  const worker = await bullWorker(connection, name, 1, async (data) => {
    if (data.i + 1 < LONG_CHAIN) await queue.add("step", { i: data.i + 1, chain: data.chain }, { removeOnComplete: true });
    else setImmediate(() => finished?.());
  });
  const times: number[] = [];
  try {
    for (let r = 0; r < repetitions + 1; r++) {
      const ended = new Promise<void>((resolve) => (finished = resolve));
      const started = performance.now();
      await queue.add("step", { i: 0, chain: r }, { removeOnComplete: true });
      await ended;
      if (r > 0) times.push(seconds(started));
    }
    return times;
  } finally {
    await worker.close();
    await queue.close();
  }
}

/** add → processor start, one job at a time. */
async function bullLatency(connection: Connection): Promise<number[]> {
  const name = `latency-${crypto.randomUUID()}`;
  const queue = new Queue(name, { connection });
  let started: ((at: number) => void) | null = null;
  const worker = await bullWorker(connection, name, 1, () => started?.(performance.now()));
  const samples: number[] = [];
  try {
    for (let i = 0; i < LATENCY_WARMUP + LATENCY_SAMPLES; i++) {
      const began = new Promise<number>((resolve) => (started = resolve));
      const at = performance.now();
      await queue.add("step", { i, chain: 0 }, { removeOnComplete: true });
      const ms = (await began) - at;
      if (i >= LATENCY_WARMUP) samples.push(ms);
    }
    return samples;
  } finally {
    await worker.close();
    await queue.close();
  }
}

async function bullmqFigures(log: (text: string) => void): Promise<PeerFigures[]> {
  const redis = await startRedis();
  const connection = { host: "127.0.0.1", port: redis.port };
  try {
    log("  BullMQ: 1,000 x 3 flows (FlowProducer), concurrency 8 and 32...");
    const flow8 = await bullThroughputFlow(connection, 8);
    const flow32 = await bullThroughputFlow(connection, 32);
    log("  BullMQ: 1,000 x 3 enqueue-next, concurrency 8 and 32...");
    const next8 = await bullThroughputEnqueueNext(connection, 8);
    const next32 = await bullThroughputEnqueueNext(connection, 32);
    log("  BullMQ: 40-job chain (enqueue-next, 1 warm-up + 5) and add -> start latency...");
    const chain = await bullChain(connection, 5);
    const latency = await bullLatency(connection);
    const common = { chainSeconds: median(chain), p50: quantile(latency, 0.5), p99: quantile(latency, 0.99) };
    return [
      { name: "BullMQ, FlowProducer", jobsPerSecond: Math.max(flow8, flow32), ...common, detail: `flows: ${Math.round(flow8)} jobs/s at concurrency 8, ${Math.round(flow32)} at 32` },
      { name: "BullMQ, enqueue-next", jobsPerSecond: Math.max(next8, next32), ...common, detail: `enqueue-next: ${Math.round(next8)} jobs/s at concurrency 8, ${Math.round(next32)} at 32; chain runs ${chain.map((s) => s.toFixed(3)).join(", ")} s` },
    ];
  } finally {
    redis.stop();
  }
}

// ------------------------------------------------------------------------------------------------
// graphile-worker

async function graphileFigures(log: (text: string) => void): Promise<PeerFigures> {
  const pg = await startPostgres();
  let runner: Runner | null = null;
  const utils = await makeWorkerUtils({ connectionString: pg.url, logger: quiet });
  try {
    await utils.migrate();
    let onStep: (payload: { i: number; chain: number; kind: string }) => void = () => {};
    const taskList: TaskList = {
      step: async (payload, helpers) => {
        const p = payload as { i: number; chain: number; kind: string; length: number };
        onStep(p);
        if (p.i + 1 < p.length) await helpers.addJob("step", { ...p, i: p.i + 1 });
      },
    };
    runner = await runGraphile({ connectionString: pg.url, concurrency: 16, maxPoolSize: 20, noHandleSignals: true, pollInterval: 1000, taskList, logger: quiet });

    log("  graphile-worker: 1,000 x 3 chains (concurrency 16)...");
    let done = 0;
    let resolveAll!: () => void;
    let all = new Promise<void>((r) => (resolveAll = r));
    onStep = () => {
      if (++done === CHAINS * CHAIN_LENGTH) resolveAll();
    };
    const started = performance.now();
    await utils.addJobs(Array.from({ length: CHAINS }, (_, chain) => ({ identifier: "step", payload: { i: 0, chain, kind: "tp", length: CHAIN_LENGTH } })));
    await all;
    const jobsPerSecond = (CHAINS * CHAIN_LENGTH) / seconds(started);

    log("  graphile-worker: 40-job chain (1 warm-up + 5) and add -> start latency...");
    const chain: number[] = [];
    for (let r = 0; r < 6; r++) {
      all = new Promise<void>((r2) => (resolveAll = r2));
      onStep = (p) => {
        if (p.i === LONG_CHAIN - 1) resolveAll();
      };
      const at = performance.now();
      await utils.addJob("step", { i: 0, chain: r, kind: "chain", length: LONG_CHAIN });
      await all;
      if (r > 0) chain.push(seconds(at));
    }
    const latency: number[] = [];
    for (let i = 0; i < LATENCY_WARMUP + LATENCY_SAMPLES; i++) {
      const began = new Promise<number>((resolve) => (onStep = () => resolve(performance.now())));
      const at = performance.now();
      await utils.addJob("step", { i: 0, chain: i, kind: "latency", length: 1 });
      const ms = (await began) - at;
      if (i >= LATENCY_WARMUP) latency.push(ms);
    }
    return {
      name: "graphile-worker",
      jobsPerSecond,
      chainSeconds: median(chain),
      p50: quantile(latency, 0.5),
      p99: quantile(latency, 0.99),
      detail: `concurrency 16; chain runs ${chain.map((s) => s.toFixed(3)).join(", ")} s`,
    };
  } finally {
    await runner?.stop();
    await utils.release();
    pg.stop();
  }
}

/** Every peer's figures, measured now. */
export async function peerFigures(log: (text: string) => void): Promise<PeerFigures[]> {
  return [...(await bullmqFigures(log)), await graphileFigures(log)];
}

// ------------------------------------------------------------------------------------------------
// the table

export interface KilnFigures {
  /** 1,000 × 3 in-process, durable, timed from the runs' creation as the peers are from their adds: block runs/s. */
  inProcessThroughput: number;
  /** (a): the same, its runs created beforehand and only their execution timed. */
  executionOnlyThroughput: number;
  /** 1,000 × 3 with a warm process per block run: block runs/s (null when not measured). */
  processThroughput: number | null;
  /** CPU per block run of that, ms: kiln's own process, and the block processes (null where not known). */
  processCpu: { kilnMs: number; blockProcessesMs: number | null } | null;
  /** The ceiling of that: bare runtime processes started and ended per second on this machine, in this run (null when not measured). */
  bareProcesses: number | null;
  /** The CPU one bare runtime process took, ms (null when not measured). */
  bareProcessCpuMs: number | null;
  /** The 40-block chain in-process, from the run's creation (the peers: from the first job's add). */
  inProcessChain: number;
  /** (b) in-process: engine.execute of a run created beforehand. */
  executionOnlyChain: number;
  processChain: number;
  reusedChain: number;
  /** (f) POST trigger over HTTP → first block started. */
  triggerP50: number | null;
  triggerP99: number | null;
}

const fmt = (n: number, digits = 2) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits));
const verdict = (ok: boolean) => (ok ? "**met**" : "**missed**");

/**
 * Where a process-per-block run's CPU goes, beside what 200 block runs/s on this machine's cores
 * would allow: the target is out of reach whenever a bare process alone takes most of that.
 */
function cpuBudget(kiln: KilnFigures): string {
  const cpu = kiln.processCpu;
  if (!cpu || cpu.blockProcessesMs === null || kiln.bareProcessCpuMs === null) return "";
  const cores = Math.max(1, cpus().length);
  return (
    `; CPU per block run ${fmt(cpu.kilnMs + cpu.blockProcessesMs, 1)} ms (its block process ${fmt(cpu.blockProcessesMs, 1)}, kiln ${fmt(cpu.kilnMs, 1)}), ` +
    `a bare process ${fmt(kiln.bareProcessCpuMs, 1)} ms; 200/s on ${cores} cores allows ${fmt((cores * 1000) / 200, 1)} ms`
  );
}

/** kiln beside the peers, with ratios and the issue-16 targets. */
export function peersTable(kiln: KilnFigures, peers: PeerFigures[]): string {
  const bull = peers.filter((p) => p.name.startsWith("BullMQ"));
  const bestBull = Math.max(...bull.map((p) => p.jobsPerSecond));
  const bullChain = bull[0]!.chainSeconds;
  const bullP99 = bull[0]!.p99;
  const rows: string[][] = [
    ["Workload", "kiln", ...peers.map((p) => p.name), "Ratio", "Target (issue 16)"],
    ["---", "---:", ...peers.map(() => "---:"), "---", "---"],
    [
      "1,000 runs × 3 blocks/jobs, per second, from the first add / run created to the last end (kiln: in-process, every state change durable)",
      fmt(kiln.inProcessThroughput, 0),
      ...peers.map((p) => fmt(p.jobsPerSecond, 0)),
      `kiln ÷ best BullMQ = ${fmt(kiln.inProcessThroughput / bestBull)}×`,
      `≥ 1.5×: ${verdict(kiln.inProcessThroughput / bestBull >= 1.5)}`,
    ],
    [
      "1,000 runs × 3 blocks, a warm process per block run, block runs/s",
      kiln.processThroughput === null ? "not measured" : fmt(kiln.processThroughput, 0),
      ...peers.map(() => "—"),
      kiln.processThroughput === null || kiln.bareProcesses === null
        ? "—"
        : `limit: bare \`bun -e 0\` ${fmt(kiln.bareProcesses, 0)} processes/s here; kiln ÷ limit = ${fmt(kiln.processThroughput / kiln.bareProcesses)}×${cpuBudget(kiln)}`,
      kiln.processThroughput === null ? "≥ 200/s: not measured" : `≥ 200/s: ${verdict(kiln.processThroughput >= 200)}`,
    ],
    [
      "40-block chain, in-process, from the first add / run created, s",
      fmt(kiln.inProcessChain, 3),
      ...peers.map((p) => fmt(p.chainSeconds, 3)),
      `BullMQ ÷ kiln = ${fmt(bullChain / kiln.inProcessChain)}×`,
      `kiln ≥ 2× faster: ${verdict(bullChain / kiln.inProcessChain >= 2)}`,
    ],
    [
      "40-block chain, a warm process per block (default), s",
      fmt(kiln.processChain, 3),
      ...peers.map((p) => fmt(p.chainSeconds, 3)),
      `kiln ÷ BullMQ = ${fmt(kiln.processChain / bullChain, 1)}×`,
      `< 0.4 s and ≤ 10×: ${verdict(kiln.processChain < 0.4 && kiln.processChain / bullChain <= 10)}`,
    ],
    [
      "40-block chain, reused warm processes (reuse: 1000), s",
      fmt(kiln.reusedChain, 3),
      ...peers.map((p) => fmt(p.chainSeconds, 3)),
      `kiln ÷ BullMQ = ${fmt(kiln.reusedChain / bullChain, 1)}×`,
      "— (opt-in; the target is for a process per block)",
    ],
    [
      "trigger → first block started, p50 / p99 ms (kiln: POST over HTTP; peers: add → processor start, in process)",
      kiln.triggerP50 === null || kiln.triggerP99 === null ? "not measured" : `${fmt(kiln.triggerP50)} / ${fmt(kiln.triggerP99)}`,
      ...peers.map((p) => `${fmt(p.p50)} / ${fmt(p.p99)}`),
      kiln.triggerP99 === null ? "—" : `kiln p99 ÷ BullMQ p99 = ${fmt(kiln.triggerP99 / bullP99)}×`,
      kiln.triggerP99 === null ? "not measured" : `p99 ≤ BullMQ's: ${verdict(kiln.triggerP99 <= bullP99)}`,
    ],
  ];
  const kilnDetail =
    `- kiln: the same runs with their creation untimed (bench (a), created one by one beforehand): ${fmt(kiln.executionOnlyThroughput, 0)} block runs/s; ` +
    `the 40-block chain's execution alone (bench (b)): ${fmt(kiln.executionOnlyChain, 3)} s`;
  return [rows.map((cells) => `| ${cells.join(" | ")} |`).join("\n"), "", kilnDetail, ...peers.map((p) => `- ${p.name}: ${p.detail}`)].join("\n");
}
