/** The scheduler benchmarks' results as markdown tables, in the style of report.ts. */
import type { Lag, TickCost } from "./scheduler.ts";
import { percentile } from "./scheduler.ts";

/** The flat-cost claim holds if a tick over the most schedules costs at most this many times one over the fewest. */
export const FLAT_FACTOR = 2;

/** Mage's scheduler loop: a published figure, not measured here. */
export const MAGE_TICK_SECONDS = 10;

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ms`;
/** Whole milliseconds: the database stores instants in ms, so (e)'s figures are integers. */
const wholeMs = (n: number) => `${int(n)} ms`;
const secs = (s: number) => `${s.toFixed(s < 1 ? 3 : 2)} s`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const verdict = (ok: boolean) => (ok ? "**met**" : "**missed**");
const table = (rows: string[][]) => rows.map((cells) => `| ${cells.join(" | ")} |`).join("\n");

/** The largest N's median tick over the smallest N's. */
export function flatRatio(costs: readonly TickCost[]): number {
  const first = costs[0];
  const last = costs[costs.length - 1];
  return first && last ? last.medianTickMs / first.medianTickMs : Number.NaN;
}

/** What (d) did, one line above its table. */
export function tickCostCaption(costs: readonly TickCost[]): string {
  const c = costs[0];
  if (!c) return "";
  return (
    `(d): each N in a fresh database (own child process): N active @daily schedules not due before tomorrow, inserted 50,000 a transaction, ` +
    `plus ${c.due} @once triggers made due again before every tick (untimed), so each tick creates and starts ${c.due} in-process runs ` +
    `of a one-no-op-block pipeline; ${c.tickMs.length} ticks timed after 2 warm-up ticks. Memory: process.memoryUsage() of the child after the ticks and a full GC.`
  );
}

/** What (e) did, one line above its table. */
export function lagCaption(lags: readonly Lag[]): string {
  const l = lags[0];
  if (!l) return "";
  return (
    `(e): a live scheduler (Scheduler.start()) on a fresh project; ${l.triggers} @once triggers created with createSchedule, their start_time spread over ` +
    `${(l.spreadMs / 1000).toFixed(0)} s; lag = the run's first block run started_at − its execution_date (the trigger's instant); one no-op block, in-process.`
  );
}

export function tickCostTable(costs: readonly TickCost[]): string {
  const ratio = flatRatio(costs);
  const rows: string[][] = [
    ["(d) Scheduler.tick() vs active schedules", "Setup: bulk INSERT", `Tick, median of ${costs[0]?.tickMs.length ?? 0} (min–max)`, "Slowest tick query alone", "RSS after the ticks", "JS heap used", "Target / reference"],
    ["---", "---:", "---:", "---:", "---:", "---:", "---"],
  ];
  for (const [i, c] of costs.entries()) {
    const n = c.truncated ? `${int(c.schedules)} (of ${int(c.requested)} asked: the insert stopped at its ${c.insertLimitSeconds} s limit)` : int(c.schedules);
    const [slowest, slowestMs] = Object.entries(c.probes).sort((a, b) => b[1] - a[1])[0] ?? ["—", 0];
    rows.push([
      `${n} active + ${c.due} due`,
      secs(c.insertSeconds),
      `${ms(c.medianTickMs)} (${ms(Math.min(...c.tickMs))}–${ms(Math.max(...c.tickMs))})`,
      `${slowest} ${ms(slowestMs)}`,
      mib(c.rss),
      mib(c.heapUsed),
      i === costs.length - 1 && costs.length > 1
        ? `kiln claim: flat, ≤ ${FLAT_FACTOR}× from ${int(costs[0]!.schedules)} to ${int(c.schedules)}: ${verdict(ratio <= FLAT_FACTOR)} (${ratio.toFixed(1)}×)`
        : "—",
    ]);
  }
  return table(rows);
}

export function lagTable(lags: readonly Lag[]): string {
  const rows: string[][] = [
    ["(e) lag: trigger instant → first block run started", "Triggers", "p50", "p99", "max", "Target / reference"],
    ["---", "---:", "---:", "---:", "---:", "---"],
  ];
  for (const l of lags) {
    rows.push([
      `Scheduler.start(), tickIntervalMs ${int(l.tickIntervalMs)}`,
      int(l.triggers),
      wholeMs(l.p50),
      wholeMs(l.p99),
      wholeMs(l.max),
      `expected: up to one tick interval (${int(l.tickIntervalMs)} ms) plus the tick's own work`,
    ]);
  }
  rows.push([
    "Mage",
    "—",
    "—",
    "—",
    `up to ${MAGE_TICK_SECONDS} s`,
    `ticks every ${MAGE_TICK_SECONDS} s: up to ${MAGE_TICK_SECONDS} s lag plus one tick per DAG level; published figure, not measured here`,
  ]);
  return table(rows);
}

export function schedulerDetails(costs: readonly TickCost[], lags: readonly Lag[]): string {
  const lines: string[] = [];
  for (const c of costs) {
    lines.push(
      `(d) ${int(c.schedules)} schedules: ticks ms ${c.tickMs.map((t) => t.toFixed(1)).join(", ")}; RSS at the child's start ${mib(c.rssAtStart)}; database + WAL ${mib(c.databaseBytes)}`,
    );
    lines.push(`(d) ${int(c.schedules)} schedules, the tick's reads alone (median of 20): ${Object.entries(c.probes).map(([name, t]) => `${name} ${ms(t)}`).join("; ")}`);
  }
  for (const l of lags) {
    const after = l.lag.map((x, i) => x - l.created[i]!);
    lines.push(
      `(e) tick ${int(l.tickIntervalMs)} ms: instant → run created (waiting for a tick) p50 ${wholeMs(percentile(l.created, 50))}, max ${wholeMs(Math.max(...l.created))}; ` +
        `run created → first block started p50 ${wholeMs(percentile(after, 50))}, max ${wholeMs(Math.max(...after))}; late ticks ${l.skippedTicks}`,
    );
  }
  lines.push("(e) percentiles are nearest-rank: with 30 triggers, p99 is the largest value");
  return lines.join("\n");
}
