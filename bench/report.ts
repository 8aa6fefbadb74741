/** The benchmark results as a markdown table (to paste into a README). */
import type { Latency, RawWrites, Throughput, TriggerBurst } from "./benchmarks.ts";

export const TARGETS = {
  blockRunsPerSecond: 6_000,
  chainSeconds: 0.04,
};

export interface Results {
  raw: RawWrites;
  throughput: Throughput;
  burst: TriggerBurst;
  inProcess: Latency;
  /** A warm process per block run (the local executor's default). */
  process: Latency;
  /** A process started for each block run (`warm: false`). */
  fresh: Latency;
  /** Warm processes running block runs in sequence (`reuse: 1000`). */
  reused: Latency;
  sync: string;
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const fixed = (n: number, digits: number) => n.toFixed(digits);
const ms = (s: number) => `${fixed(s * 1000, s < 0.01 ? 2 : 1)} ms`;
const secs = (s: number) => `${fixed(s, s < 1 ? 3 : 2)} s`;
const ratio = (n: number) => (n >= 10 ? int(n) : n >= 1 ? fixed(n, 1) : fixed(n, 3));
const verdict = (ok: boolean) => (ok ? "**met**" : "**missed**");

export function markdownTable(r: Results): string {
  const w = r.raw.writesPerSecond;
  const a = r.throughput;
  const ip = r.inProcess;
  const pp = r.process;
  const rows: string[][] = [
    ["Benchmark", "Measured", "Ratio to (c)", "Target / reference"],
    ["---", "---:", "---:", "---"],
    [
      `(c) raw ceiling: ${int(r.raw.writes)} sequential single-row INSERTs, one implicit transaction each (kiln's database connection: libsql with a statement cache, WAL, synchronous=${r.sync}; median of ${r.raw.seconds.length})`,
      `${int(w)} writes/s`,
      "1",
      "measured here",
    ],
    [
      `(a) throughput: ${int(a.runs)} runs × ${a.blocksPerRun} no-op blocks, in-process, all executed concurrently (median of ${a.rounds.length} rounds)`,
      `${int(a.blockRunsPerSecond)} block runs/s (${secs(a.executeSeconds)})`,
      `${ratio(a.blockRunsPerSecond / w)} (block runs/s ÷ writes/s)`,
      `kiln target ≥ ${int(TARGETS.blockRunsPerSecond)} block runs/s: ${verdict(a.blockRunsPerSecond >= TARGETS.blockRunsPerSecond)}`,
    ],
    [
      `(a′) run creation: ${int(a.runs)} × store.createPipelineRun, sequential (outside the timed part of (a))`,
      `${int(a.runsCreatedPerSecond)} runs/s (${secs(a.createSeconds)})`,
      `${ratio(a.runsCreatedPerSecond / w)} (runs/s ÷ writes/s)`,
      "—",
    ],
    [
      `(a″) run creation: ${int(r.burst.runs)} runs of one API trigger asked for at once (createRunForSchedule, as the trigger route; their execution dates collide in the same milliseconds; median of 3)`,
      `${int(r.burst.runsPerSecond)} runs/s (${secs(r.burst.seconds)}), ${fixed(r.burst.insertsPerRun, 2)} inserts per run`,
      `${ratio(r.burst.runsPerSecond / w)} (runs/s ÷ writes/s)`,
      "—",
    ],
    [
      `(b) latency: ${ip.blocks}-block chain, in-process (median of ${ip.seconds.length})`,
      `${secs(ip.medianSeconds)} total, ${ms(ip.handoffSeconds)} per handoff`,
      `${ratio(ip.handoffSeconds * w)} writes per handoff`,
      `kiln target < ${TARGETS.chainSeconds} s: ${verdict(ip.medianSeconds < TARGETS.chainSeconds)}`,
    ],
    [
      `(b) latency: ${pp.blocks}-block chain, a warm process per block (the default: \`kiln run-block --warm\` started ahead, handed the block run; median of ${pp.seconds.length})`,
      `${secs(pp.medianSeconds)} total, ${ms(pp.handoffSeconds)} per handoff`,
      `${ratio(pp.handoffSeconds * w)} writes per handoff`,
      `issue 16 target < 0.4 s: ${verdict(pp.medianSeconds < 0.4)}`,
    ],
    [
      `(b) latency: ${r.fresh.blocks}-block chain, a process started per block (\`warm: false\`; median of ${r.fresh.seconds.length})`,
      `${secs(r.fresh.medianSeconds)} total, ${ms(r.fresh.handoffSeconds)} per handoff`,
      `${ratio(r.fresh.handoffSeconds * w)} writes per handoff`,
      "—",
    ],
    [
      `(b) latency: ${r.reused.blocks}-block chain, warm processes reused (\`reuse: 1000\`; median of ${r.reused.seconds.length})`,
      `${secs(r.reused.medianSeconds)} total, ${ms(r.reused.handoffSeconds)} per handoff`,
      `${ratio(r.reused.handoffSeconds * w)} writes per handoff`,
      "—",
    ],
    [
      "BullMQ, graphile-worker",
      "measured on the same workloads in the peers table (`--only peers`, and the full run)",
      "—",
      "ratios there, not here: the peers are timed from their first add",
    ],
    [
      "kiln targets",
      "≥ 6,000 block runs/s; 40-block chain in-process < 0.04 s",
      "—",
      "target, not a measurement",
    ],
  ];
  return rows.map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

export function details(r: Results): string {
  const list = (xs: number[]) => xs.map((x) => fixed(x, 3)).join(", ");
  const a = r.throughput;
  const blockRuns = a.runs * a.blocksPerRun;
  return [
    `(a) execute seconds per round: ${list(a.rounds.map((x) => x.executeSeconds))}; create seconds: ${list(a.rounds.map((x) => x.createSeconds))}`,
    ...a.rounds.map(
      (x, i) =>
        `(a) round ${i + 1}: ${int(x.transactions)} write transactions, ${int(x.statements)} statements (${fixed(x.statements / blockRuns, 1)} per block run, ${fixed(x.statements / Math.max(x.transactions, 1), 0)} per transaction)`,
    ),
    `(c) seconds per ${int(r.raw.writes)} writes: ${list(r.raw.seconds)}`,
    `(b) in-process run seconds: ${list(r.inProcess.seconds)}`,
    `(b) warm process per block, run seconds: ${list(r.process.seconds)}`,
    `(b) process started per block (warm: false), run seconds: ${list(r.fresh.seconds)}`,
    `(b) reused warm processes (reuse: 1000), run seconds: ${list(r.reused.seconds)}`,
  ].join("\n");
}
