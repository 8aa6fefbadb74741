/**
 * `bun run bench`: kiln's throughput and latency next to the raw write ceiling of its database
 * connection, and the scheduler's tick cost and lag, printed as markdown tables. See bench/README.md.
 *
 * `bun run bench -- --only core` runs (a)-(c) only; `--only scheduler` runs (d) and (e) only;
 * `--only d` or `--only e` runs one scheduler benchmark; `--only server` runs (f) and (g), the API's;
 * `--only worker` runs (w), kiln on workerd with D1 and with sqld.
 */
import { cpus, loadavg, platform, release } from "node:os";
import { chainFromCreation, latency, rawWrites, throughput, throughputFromCreation, triggerBurst, type Latency, type Throughput } from "./benchmarks.ts";
import { peerFigures, peersTable, type KilnFigures } from "./peers.ts";
import { bareProcesses } from "./process-ceiling.ts";
import { removeTempFolders } from "./project.ts";
import { details, markdownTable, type Results } from "./report.ts";
import { schedulerLag, tickCost, type Lag, type TickCost } from "./scheduler.ts";
import { lagCaption, lagTable, schedulerDetails, tickCostCaption, tickCostTable } from "./scheduler-report.ts";
import { apiTriggerLatency, listThroughput, serverTables } from "./server.ts";
import { uiPageTimes, uiTable } from "./ui.ts";
import { workerBench, workerTables } from "./worker.ts";

// each benchmark uses the fresh database of its own temp project, never one named in the environment
delete process.env.KILN_DATABASE_URL;

const log = (text: string) => process.stderr.write(`${text}\n`);

/** Runs × 3 blocks for kiln's process-per-block throughput beside the peers (each block run a process: 3,000 would take minutes). */
const PROCESS_RUNS = 30;

/** The active-schedule counts of (d) and the tick intervals of (e). */
const SCHEDULE_COUNTS = [1_000, 100_000, 1_000_000];
const TICK_INTERVALS_MS = [1_000, 200];

const ONLY: Record<string, string[]> = { peers: ["p"], p: ["p"], core: ["a", "b", "c"], scheduler: ["d", "e"], d: ["d"], e: ["e"], server: ["f", "g"], f: ["f"], g: ["g"], ui: ["h"], h: ["h"], worker: ["w"], w: ["w"] };

/** The benchmarks to run: all, or those of `--only <core|scheduler|d|e>`. */
function selected(argv: string[]): Set<string> {
  const i = argv.indexOf("--only");
  const only = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
  if (only === undefined) return new Set(["a", "b", "c", "d", "e", "f", "g", "h", "p", "w"]);
  const picked = ONLY[only];
  if (!picked) throw new Error(`--only ${only}: expected one of ${Object.keys(ONLY).join(", ")}`);
  return new Set(picked);
}

async function main(): Promise<void> {
  const started = performance.now();
  const run = selected(process.argv.slice(2));
  const sync = process.env.KILN_DB_SYNC === "full" ? "FULL" : "NORMAL";
  const cpu = cpus();
  const out = [
    "",
    `Machine: ${cpu[0]?.model ?? "unknown CPU"}, ${cpu.length} CPUs, ${platform()} ${release()}`,
    `Runtime: Bun ${Bun.version}`,
    `Date: ${new Date().toISOString()}`,
    "",
  ];

  let kiln: { throughput: Throughput; inProcess: Latency; process: Latency; reused: Latency } | null = null;
  if (run.has("a")) {
    log("(c) raw write ceiling...");
    const raw = await rawWrites();
    log("(a) throughput: 1,000 runs x 3 blocks, in-process (3 rounds)...");
    const tp = await throughput();
    log("(a″) run creation: 1,000 runs of one API trigger at once (3 rounds)...");
    const burst = await triggerBurst();
    log("(b) latency: 40-block chain, in-process (1 warm-up + 5)...");
    const inProcess = await latency(true, 5, 1);
    log("(b) latency: 40-block chain, a warm process per block (the default; 1 warm-up + 3)...");
    const process_ = await latency(false, 3, 1);
    log("(b) latency: 40-block chain, a process started per block (warm: false; 2 runs)...");
    const fresh = await latency(false, 2, 0, 40, { warm: false });
    log("(b) latency: 40-block chain, reused warm processes (reuse: 1000; 1 warm-up + 3)...");
    const reused = await latency(false, 3, 1, 40, { reuse: 1000 });
    const results: Results = { raw, throughput: tp, burst, inProcess, process: process_, fresh, reused, sync };
    out.push(markdownTable(results), "", details(results), "");
    kiln = { throughput: tp, inProcess, process: process_, reused };
  }

  const costs: TickCost[] = [];
  if (run.has("d")) {
    for (const n of SCHEDULE_COUNTS) {
      log(`(d) tick cost: ${n.toLocaleString("en-US")} active schedules (own process)...`);
      costs.push(await tickCost(n));
    }
    out.push(tickCostCaption(costs), "", tickCostTable(costs), "");
  }
  const lags: Lag[] = [];
  if (run.has("e")) {
    for (const ms of TICK_INTERVALS_MS) {
      log(`(e) lag: live scheduler, tick every ${ms} ms, 30 @once triggers over 15 s...`);
      lags.push(await schedulerLag(ms));
    }
    out.push(lagCaption(lags), "", lagTable(lags), "");
  }
  if (costs.length > 0 || lags.length > 0) out.push(schedulerDetails(costs, lags), "");

  const trigger = run.has("f") ? (log("(f) API trigger -> first block started (500 triggers)..."), await apiTriggerLatency()) : null;
  const lists = run.has("g") ? (log("(g) GET /api/pipeline_runs with 1,000,000 runs stored..."), await listThroughput()) : [];
  if (trigger || lists.length > 0) out.push(serverTables(trigger, lists));

  if (run.has("p")) {
    // kiln's side of the comparison, measured now unless (a)-(b) and (f) ran above
    if (!kiln) {
      log("(peers) kiln: 1,000 runs x 3 blocks in-process (3 rounds), 40-block chains (in-process, warm processes, reused)...");
      kiln = { throughput: await throughput(), inProcess: await latency(true, 5, 1), process: await latency(false, 3, 1), reused: await latency(false, 3, 1, 40, { reuse: 1000 }) };
    }
    // the peers are timed from their first add: kiln from its runs' creation, the same work
    log("(peers) kiln: 1,000 runs x 3 blocks in-process, timed from the runs' creation (3 rounds); 40-block chain from its creation (1 warm-up + 5)...");
    const fromCreation = await throughputFromCreation();
    const chainFromCreated = await chainFromCreation();
    log(`(peers) kiln: ${PROCESS_RUNS} runs x 3 blocks, a warm process per block run (1 round)...`);
    const perProcess = await throughput(PROCESS_RUNS, 3, 1, 2, false);
    log("(peers) the limit of a process per block run: bare runtime processes started and ended per second (200, one per core at a time)...");
    const bare = await bareProcesses();
    const triggerForPeers = trigger ?? (log("(peers) kiln: API trigger -> first block started (500 triggers)..."), await apiTriggerLatency());
    log("(peers) BullMQ and graphile-worker on the same workloads...");
    const peers = await peerFigures(log);
    const figures: KilnFigures = {
      inProcessThroughput: fromCreation.blockRunsPerSecond,
      executionOnlyThroughput: kiln.throughput.blockRunsPerSecond,
      processThroughput: perProcess.blockRunsPerSecond,
      processCpu: { kilnMs: perProcess.selfCpuMsPerBlockRun, blockProcessesMs: perProcess.childrenCpuMsPerBlockRun },
      bareProcesses: bare.perSecond,
      bareProcessCpuMs: bare.cpuMsEach,
      inProcessChain: chainFromCreated.medianSeconds,
      executionOnlyChain: kiln.inProcess.medianSeconds,
      processChain: kiln.process.medianSeconds,
      reusedChain: kiln.reused.medianSeconds,
      triggerP50: triggerForPeers.p50,
      triggerP99: triggerForPeers.p99,
    };
    out.push(
      `kiln beside its peers, measured in this run (load average at the end: ${loadavg().map((n) => n.toFixed(2)).join(" ")}; kiln's process-per-block throughput over ${PROCESS_RUNS} runs × 3 blocks)`,
      "",
      peersTable(figures, peers),
      "",
    );
  }
  if (run.has("h")) {
    log("(h) web UI pages with 1,000,000 runs stored...");
    out.push(uiTable(await uiPageTimes()));
  }

  if (run.has("w")) {
    log("(w) kiln on workerd: the built Worker under Miniflare with D1, then with sqld (110 API triggers and 30 idle ticks each)...");
    const figures = [await workerBench("d1"), await workerBench("sqld")];
    out.push(workerTables(figures), `load average at the end: ${loadavg().map((n) => n.toFixed(2)).join(" ")}`, "");
  }

  out.push(`whole benchmark: ${((performance.now() - started) / 1000).toFixed(1)} s`, "");
  process.stdout.write(out.join("\n"));
}

// an interrupted run still removes its temp projects
process.once("SIGINT", () => {
  removeTempFolders();
  process.exit(130);
});

try {
  await main();
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  removeTempFolders();
}
