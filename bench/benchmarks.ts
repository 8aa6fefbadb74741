/**
 * The three benchmarks: (a) throughput of many small runs, (b) handoff latency along a long
 * chain, (c) the raw single-row write ceiling of the same kind of database connection.
 */
import { join } from "node:path";
import { openDatabase } from "@kiln/node";
import { createRunForSchedule } from "@kiln/core/api";
import { cpuDuring, type CpuTime } from "./cpu-time.ts";
import { tempFolder, withProject, type BenchProject } from "./project.ts";

export interface RawWrites {
  writes: number;
  /** One entry per repetition. */
  seconds: number[];
  /** Median over the repetitions. */
  writesPerSecond: number;
}

export interface ThroughputRound {
  createSeconds: number;
  executeSeconds: number;
  /** Write transactions (client.batch calls) and their statements while the runs executed. */
  transactions: number;
  statements: number;
  /** CPU spent while the runs executed: kiln's process, and the block processes it reaped. */
  cpu: CpuTime;
}

export interface Throughput {
  runs: number;
  blocksPerRun: number;
  rounds: ThroughputRound[];
  /** Medians over the rounds. */
  createSeconds: number;
  runsCreatedPerSecond: number;
  executeSeconds: number;
  blockRunsPerSecond: number;
  /** CPU per block run, ms (medians over the rounds): kiln's process, and its block processes (null where not known). */
  selfCpuMsPerBlockRun: number;
  childrenCpuMsPerBlockRun: number | null;
}

export interface Latency {
  blocks: number;
  /** Total seconds of each measured run. */
  seconds: number[];
  medianSeconds: number;
  handoffSeconds: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/** Fails the benchmark loudly. */
function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`benchmark check failed: ${message}`);
}

/**
 * (c) `writes` sequential single-row INSERTs, each its own implicit transaction, through
 * openDatabase on a fresh file (the connection kiln's store uses: WAL, synchronous=NORMAL
 * unless KILN_DB_SYNC=full). Repeated on a fresh file each time; the median counts.
 */
export async function rawWrites(writes = 10_000, repetitions = 3): Promise<RawWrites> {
  const times: number[] = [];
  for (let r = 0; r < repetitions; r++) {
    const client = await openDatabase(`file:${join(tempFolder("raw"), "raw.db")}`);
    try {
      await client.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL, at INTEGER NOT NULL)");
      for (let i = 0; i < 200; i++) await client.execute({ sql: "INSERT INTO t (v, at) VALUES (?, ?)", args: ["warm", i] });
      const start = performance.now();
      for (let i = 0; i < writes; i++) {
        await client.execute({ sql: "INSERT INTO t (v, at) VALUES (?, ?)", args: [`row ${i}`, i] });
      }
      times.push(seconds(start));
      const rs = await client.execute("SELECT count(*) AS n FROM t");
      check(Number(rs.rows[0]?.n) === writes + 200, `expected ${writes + 200} rows, found ${String(rs.rows[0]?.n)}`);
    } finally {
      client.close();
    }
  }
  return { writes, seconds: times, writesPerSecond: writes / median(times) };
}

async function createRuns(p: BenchProject, pipelineUuid: string, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const run = await p.store.createPipelineRun({ pipelineUuid, executionDate: Date.now() });
    check(run !== null, "createPipelineRun returned null");
    ids.push(run.id);
  }
  return ids;
}

async function count(p: BenchProject, sql: string, args: number[]): Promise<number> {
  const rs = await p.store.client.execute({ sql, args });
  return Number(rs.rows[0]?.n ?? -1);
}

/** Counts the write transactions and statements the store sends while `fn` runs. */
async function countingBatches<T>(p: BenchProject, fn: () => Promise<T>): Promise<{ value: T; transactions: number; statements: number }> {
  const client = p.store.client;
  const batch = client.batch;
  const own = Object.hasOwn(client, "batch");
  let transactions = 0;
  let statements = 0;
  client.batch = ((stmts: Parameters<typeof batch>[0], mode?: Parameters<typeof batch>[1]) => {
    transactions++;
    statements += stmts.length;
    return batch.call(client, stmts, mode);
  }) as typeof batch;
  try {
    return { value: await fn(), transactions, statements };
  } finally {
    if (own) client.batch = batch;
    else delete (client as Partial<typeof client>).batch;
  }
}

/**
 * One round of (a): `runs` runs of a 3-block chain of no-op blocks, in-process, in a fresh
 * project: created one after another (timed separately), then all executed at once. A few
 * warm-up runs come first (JIT, module imports) and are not counted.
 */
async function throughputRound(runs: number, blocksPerRun: number, warmUpRuns: number, inProcess = true): Promise<ThroughputRound> {
  return withProject("throughput", { inProcess, pipelines: [{ uuid: "chain3", blocks: blocksPerRun }] }, async (p) => {
    const warm = await createRuns(p, "chain3", warmUpRuns);
    await Promise.all(warm.map((id) => p.engine.execute(id)));

    let start = performance.now();
    const ids = await createRuns(p, "chain3", runs);
    const createSeconds = seconds(start);

    start = performance.now();
    const {
      value: { value: finals, transactions, statements },
      cpu,
    } = await cpuDuring(() => countingBatches(p, () => Promise.all(ids.map((id) => p.engine.execute(id)))));
    const executeSeconds = seconds(start);

    const notCompleted = finals.filter((r) => r.status !== "completed");
    check(notCompleted.length === 0, `${notCompleted.length} of ${runs} runs did not complete (first: ${JSON.stringify(notCompleted[0])})`);
    const first = Math.min(...ids);
    const last = Math.max(...ids);
    check(last - first + 1 === runs, `run ids are not contiguous (${first}..${last} for ${runs} runs)`);
    const runsDone = await count(p, "SELECT count(*) AS n FROM pipeline_runs WHERE id BETWEEN ? AND ? AND status = 'completed'", [first, last]);
    check(runsDone === runs, `${runsDone} of ${runs} pipeline runs are completed in the database`);
    const blockRuns = await count(p, "SELECT count(*) AS n FROM block_runs WHERE pipeline_run_id BETWEEN ? AND ?", [first, last]);
    const blocksDone = await count(
      p,
      "SELECT count(*) AS n FROM block_runs WHERE pipeline_run_id BETWEEN ? AND ? AND status = 'completed'",
      [first, last],
    );
    const expected = runs * blocksPerRun;
    check(blockRuns === expected && blocksDone === expected, `${blocksDone} of ${blockRuns} block runs completed; expected ${expected} completed`);
    return { createSeconds, executeSeconds, transactions, statements, cpu };
  });
}

/** (a) `rounds` rounds (each in a fresh project); the medians count. `inProcess: false`: a warm process per block run. */
export async function throughput(runs = 1_000, blocksPerRun = 3, rounds = 3, warmUpRuns = 20, inProcess = true): Promise<Throughput> {
  const results: ThroughputRound[] = [];
  for (let r = 0; r < rounds; r++) results.push(await throughputRound(runs, blocksPerRun, warmUpRuns, inProcess));
  const createSeconds = median(results.map((r) => r.createSeconds));
  const executeSeconds = median(results.map((r) => r.executeSeconds));
  const blockRuns = runs * blocksPerRun;
  const childrenMs = results.map((r) => r.cpu.childrenMs);
  return {
    runs,
    blocksPerRun,
    rounds: results,
    createSeconds,
    runsCreatedPerSecond: runs / createSeconds,
    executeSeconds,
    blockRunsPerSecond: blockRuns / executeSeconds,
    selfCpuMsPerBlockRun: median(results.map((r) => r.cpu.selfMs)) / blockRuns,
    childrenCpuMsPerBlockRun: childrenMs.includes(null) ? null : median(childrenMs as number[]) / blockRuns,
  };
}

/**
 * (b) One run at a time of a `blocks`-long chain; `repetitions` measured runs after `warmUp`
 * unmeasured ones. Only engine.execute is timed (the run is created before).
 */
export async function latency(inProcess: boolean, repetitions: number, warmUp: number, blocks = 40, executorConfig?: Record<string, boolean | number>): Promise<Latency> {
  const name = inProcess ? "latency-in-process" : "latency-process";
  return withProject(name, { inProcess, executorConfig, pipelines: [{ uuid: "chain", blocks }] }, async (p) => {
    const times: number[] = [];
    for (let i = 0; i < warmUp + repetitions; i++) {
      const run = await p.store.createPipelineRun({ pipelineUuid: "chain", executionDate: Date.now() });
      check(run !== null, "createPipelineRun returned null");
      const start = performance.now();
      const final = await p.engine.execute(run.id);
      const took = seconds(start);
      check(final.status === "completed", `run ${run.id} ended ${final.status}: ${JSON.stringify(final.metrics)}`);
      const done = await count(p, "SELECT count(*) AS n FROM block_runs WHERE pipeline_run_id = ? AND status = 'completed'", [run.id]);
      check(done === blocks, `run ${run.id}: ${done} of ${blocks} block runs completed`);
      if (i >= warmUp) times.push(took);
    }
    const medianSeconds = median(times);
    return { blocks, seconds: times, medianSeconds, handoffSeconds: medianSeconds / blocks };
  });
}

/**
 * kiln's side of the peers' throughput workload, the same work they are timed on: from the
 * first of `runs` runs being created (all at once, as concurrent API triggers would: the
 * store's group commit shares their transactions, as BullMQ's addBulk and graphile-worker's
 * addJobs add theirs together) to the last block run's end, each run executed as soon as it
 * exists. (a) times the execution alone, its runs created beforehand one by one. Each run is
 * handed to the engine as created (RunOptions.run), as the scheduler's wake hands it a run an API
 * trigger created (scheduler/src/start-runs.ts), so the engine does not read it back.
 */
export async function throughputFromCreation(runs = 1_000, blocksPerRun = 3, rounds = 3, warmUpRuns = 20): Promise<{ blockRunsPerSecond: number; seconds: number[] }> {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    times.push(
      await withProject("throughput-from-creation", { inProcess: true, pipelines: [{ uuid: "chain3", blocks: blocksPerRun }] }, async (p) => {
        const createAndRun = async () => {
          const run = await p.store.createPipelineRun({ pipelineUuid: "chain3", executionDate: Date.now() });
          check(run !== null, "createPipelineRun returned null");
          return p.engine.execute(run.id, { run });
        };
        await Promise.all(Array.from({ length: warmUpRuns }, createAndRun));
        const start = performance.now();
        const finals = await Promise.all(Array.from({ length: runs }, createAndRun));
        const took = seconds(start);
        const notCompleted = finals.filter((r) => r.status !== "completed");
        check(notCompleted.length === 0, `${notCompleted.length} of ${runs} runs did not complete (first: ${JSON.stringify(notCompleted[0])})`);
        const blocksDone = await count(p, "SELECT count(*) AS n FROM block_runs WHERE status = 'completed'", []);
        check(blocksDone === (runs + warmUpRuns) * blocksPerRun, `${blocksDone} block runs completed; expected ${(runs + warmUpRuns) * blocksPerRun}`);
        return took;
      }),
    );
  }
  return { blockRunsPerSecond: (runs * blocksPerRun) / median(times), seconds: times };
}

/**
 * kiln's side of the peers' chain workload: the run created, then executed to its 40th block
 * (the peers are timed from their first job's add). In-process, 1 warm-up then the median of `repetitions`.
 */
export async function chainFromCreation(repetitions = 5, blocks = 40): Promise<Latency> {
  return withProject("chain-from-creation", { inProcess: true, pipelines: [{ uuid: "chain", blocks }] }, async (p) => {
    const times: number[] = [];
    for (let i = 0; i < repetitions + 1; i++) {
      const start = performance.now();
      const run = await p.store.createPipelineRun({ pipelineUuid: "chain", executionDate: Date.now() });
      check(run !== null, "createPipelineRun returned null");
      // handed over as created, as for throughputFromCreation
      const final = await p.engine.execute(run.id, { run });
      const took = seconds(start);
      check(final.status === "completed", `run ${run.id} ended ${final.status}`);
      if (i > 0) times.push(took);
    }
    const medianSeconds = median(times);
    return { blocks, seconds: times, medianSeconds, handoffSeconds: medianSeconds / blocks };
  });
}

export interface TriggerBurst {
  runs: number;
  /** Seconds from the first request to the last run created (median of the rounds). */
  seconds: number;
  runsPerSecond: number;
  /** Insert attempts (store.createPipelineRun calls) per run created, in the median round. */
  insertsPerRun: number;
}

/**
 * (a″) `runs` runs of one API trigger asked for at once, as a webhook burst would: through
 * createRunForSchedule, the API trigger route's call, so their execution dates (now) collide and
 * each but one is moved to a millisecond of its own. `rounds` rounds, each on a trigger of its own.
 */
export async function triggerBurst(runs = 1_000, rounds = 3): Promise<TriggerBurst> {
  return withProject("trigger-burst", { inProcess: true, pipelines: [{ uuid: "chain3", blocks: 3 }] }, async (p) => {
    const results: Array<{ seconds: number; inserts: number }> = [];
    const create = p.store.createPipelineRun.bind(p.store);
    let inserts = 0;
    p.store.createPipelineRun = (run) => {
      inserts++;
      return create(run);
    };
    for (let r = 0; r < rounds; r++) {
      const schedule = await p.store.createPipelineSchedule({ name: `burst_${r}`, pipelineUuid: "chain3", scheduleType: "api" });
      inserts = 0;
      const start = performance.now();
      const created = await Promise.all(Array.from({ length: runs }, () => createRunForSchedule(p.store, schedule)));
      const took = seconds(start);
      check(new Set(created.map((run) => run.executionDate)).size === runs, `${runs} runs of one trigger did not get ${runs} execution dates`);
      results.push({ seconds: took, inserts });
    }
    results.sort((a, b) => a.seconds - b.seconds);
    const mid = results[results.length >> 1]!;
    return { runs, seconds: mid.seconds, runsPerSecond: runs / mid.seconds, insertsPerRun: mid.inserts / runs };
  });
}
