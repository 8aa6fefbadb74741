/**
 * The scheduler benchmarks: (d) the cost of one Scheduler.tick() against the number of active
 * schedules in the database (the flat-cost claim: a tick reads only the due ones, through the
 * partial index pipeline_schedules_due), and (e) the lag from a trigger's instant to its first
 * block starting on a live scheduler (Scheduler.start()).
 *
 * (d) runs each N in a child process (bench/scheduler-child.ts), so the memory figures are that
 * database's alone and not what the other benchmarks left in this process.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { createSchedule } from "@kiln/core/api";
import { scheduling, type SqlClient } from "@kiln/core/store";
import { Scheduler, silentLog, type TickReport } from "@kiln/scheduler";
import { median } from "./benchmarks.ts";
import { openBenchProject, withProject, writeProject, type ProjectSpec } from "./project.ts";

/** The pipeline every scheduler benchmark schedules: one no-op block, in-process. */
export const SCHEDULER_PROJECT: ProjectSpec = { inProcess: true, pipelines: [{ uuid: "p", blocks: 1 }] };

const DAY_MS = 24 * 60 * 60 * 1000;

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`benchmark check failed: ${message}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

// ---------------------------------------------------------------------------------------------
// (d) tick cost vs number of active schedules

export interface TickCost {
  /** Active schedules asked for. */
  requested: number;
  /** Active @daily schedules actually inserted (fewer than requested if setup hit its time limit). */
  schedules: number;
  /** Setup stopped at its time limit before reaching `requested`. */
  truncated: boolean;
  /** The setup's time limit: the insert stops at the first transaction boundary after it. */
  insertLimitSeconds: number;
  insertSeconds: number;
  /** Schedules that are due at every measured tick (each creates and starts one run). */
  due: number;
  /** Milliseconds of each measured tick (warm-up ticks excluded). */
  tickMs: number[];
  medianTickMs: number;
  /** Median ms of the tick's queries run alone, outside a tick (see PROBES). */
  probes: Record<string, number>;
  /** process.memoryUsage() of the child process after the ticks (after a full GC), bytes. */
  rss: number;
  heapUsed: number;
  /** RSS of the child process before the database was opened, bytes. */
  rssAtStart: number;
  /** Database file plus its WAL, bytes. */
  databaseBytes: number;
}

/** Rows per multi-row INSERT statement and statements per transaction (client.batch): 50,000 rows a transaction. */
const ROWS_PER_STATEMENT = 500;
const STATEMENTS_PER_TRANSACTION = 100;

/** A multi-row INSERT of `rows` active @daily api schedules of pipeline p; one parameter (the name) a row. */
function bulkInsertSql(rows: number): string {
  const values = Array.from({ length: rows }, () => "(?, 'p', 'time', '@daily', 'UTC', 'active', '{}', '{}', ?, 'api', ?, ?)").join(", ");
  return `INSERT INTO pipeline_schedules (name, pipeline_uuid, schedule_type, schedule_interval, timezone, status, variables, settings,
            next_run_at, source, created_at, updated_at) VALUES ${values}`;
}

/**
 * Inserts up to `count` active @daily schedules, not due before tomorrow, 50,000 a transaction.
 * Stops early (at a transaction boundary) once `limitSeconds` have passed.
 */
async function insertSchedules(client: SqlClient, count: number, limitSeconds: number): Promise<{ inserted: number; seconds: number; truncated: boolean }> {
  const start = performance.now();
  const now = Date.now();
  const tomorrow = now + DAY_MS;
  const full = bulkInsertSql(ROWS_PER_STATEMENT);
  let inserted = 0;
  while (inserted < count) {
    if ((performance.now() - start) / 1000 > limitSeconds) break;
    const statements = [];
    for (let s = 0; s < STATEMENTS_PER_TRANSACTION && inserted < count; s++) {
      const rows = Math.min(ROWS_PER_STATEMENT, count - inserted);
      const args: Array<string | number> = [];
      for (let r = 0; r < rows; r++) args.push(`bulk-${inserted + r}`, tomorrow, now, now);
      statements.push({ sql: rows === ROWS_PER_STATEMENT ? full : bulkInsertSql(rows), args });
      inserted += rows;
    }
    await client.batch(statements, "write");
  }
  return { inserted, seconds: (performance.now() - start) / 1000, truncated: inserted < count };
}

/**
 * The tick's reads, timed alone (median of 20 each) to show which one grows with N: the
 * functions of core/src/store/scheduling.ts that a tick calls (dueSchedules: createDueRuns;
 * codeSchedules: syncTriggers; initialRuns: startInitialRuns; runsPastSla; orphanedRuns).
 */
const PROBES: Record<string, (client: SqlClient, now: number) => Promise<unknown>> = {
  dueSchedules: (client, now) => scheduling.dueSchedules(client, now, 500),
  codeSchedules: (client) => scheduling.codeSchedules(client),
  initialRuns: (client) => scheduling.initialRuns(client, 500),
  runsPastSla: (client, now) => scheduling.runsPastSla(client, now, 500),
  orphanedRuns: (client) => scheduling.orphanedRuns(client, ["bench-dead"], 500),
};

/**
 * (d) in this process: a fresh project and database with `count` active schedules not due
 * before tomorrow plus `due` schedules due at every tick, then `ticks` measured Scheduler.tick()
 * calls after `warmUp` unmeasured ones. The due schedules are @once triggers re-armed before
 * each tick (start_time and next_run_at = now, last_execution_date cleared, outside the timed
 * part), so every tick creates `due` runs and starts them; the engine runs them in-process
 * and the next tick waits (untimed) until they ended.
 */
export async function tickCostHere(
  root: string,
  count: number,
  /** setupSql: statements run on the new database before the inserts (to try a schema change). */
  options: { due?: number; ticks?: number; warmUp?: number; insertLimitSeconds?: number; setupSql?: string[] } = {},
): Promise<TickCost> {
  const due = options.due ?? 10;
  const ticks = options.ticks ?? 20;
  const warmUp = options.warmUp ?? 2;
  const rssAtStart = process.memoryUsage().rss;
  const p = await openBenchProject(root);
  try {
    const client = p.store.client;
    for (const sql of options.setupSql ?? []) await client.execute(sql);
    const insertLimitSeconds = options.insertLimitSeconds ?? 60;
    const insert = await insertSchedules(client, count, insertLimitSeconds);

    // the schedules due at every tick: @once api triggers of the project's pipeline p
    const dueIds: number[] = [];
    for (let i = 0; i < due; i++) {
      const now = Date.now();
      const rs = await client.execute({
        sql: `INSERT INTO pipeline_schedules (name, pipeline_uuid, schedule_type, schedule_interval, start_time, timezone, status,
                variables, settings, next_run_at, source, created_at, updated_at)
              VALUES (?, 'p', 'time', '@once', ?, 'UTC', 'active', '{}', '{}', ?, 'api', ?, ?) RETURNING id`,
        args: [`due-${i}`, now, now, now, now],
      });
      dueIds.push(Number(rs.rows[0]?.id));
    }
    const active = await client.execute("SELECT count(*) AS n FROM pipeline_schedules WHERE status = 'active'");
    check(Number(active.rows[0]?.n) === insert.inserted + due, `expected ${insert.inserted + due} active schedules, found ${String(active.rows[0]?.n)}`);

    const scheduler = new Scheduler({ store: p.store, project: p.project, engine: p.engine, log: silentLog, id: "bench-scheduler" });
    const rearm = `UPDATE pipeline_schedules SET start_time = ?, next_run_at = ?, last_execution_date = NULL WHERE id IN (${dueIds.join(", ")})`;
    const times: number[] = [];
    let lastStart = 0;
    for (let i = 0; i < warmUp + ticks; i++) {
      // untimed: the previous tick's runs have ended, and the due schedules are due again
      for (let waited = 0; p.engine.activeRunIds().length > 0; waited++) {
        check(waited < 2000, "the runs of the previous tick did not end within 20 s");
        await sleep(10);
      }
      let now = Date.now();
      if (now <= lastStart) {
        await sleep(2); // a new execution date for every @once run: (schedule, execution_date) is unique
        now = Date.now();
      }
      lastStart = now;
      await client.execute({ sql: rearm, args: [now, now] });

      const start = performance.now();
      const report: TickReport = await scheduler.tick();
      const took = performance.now() - start;

      check(report.runs.created === due && report.runs.invalid === 0, `tick ${i}: created ${report.runs.created} runs (invalid ${report.runs.invalid}), expected ${due}`);
      check(report.started === due, `tick ${i}: started ${report.started} runs, expected ${due}`);
      if (i >= warmUp) times.push(took);
    }
    for (let waited = 0; p.engine.activeRunIds().length > 0; waited++) {
      check(waited < 2000, "the runs of the last tick did not end within 20 s");
      await sleep(10);
    }
    const completed = await client.execute("SELECT count(*) AS n FROM pipeline_runs WHERE status = 'completed'");
    check(Number(completed.rows[0]?.n) === (warmUp + ticks) * due, `${String(completed.rows[0]?.n)} of ${(warmUp + ticks) * due} runs completed`);
    await scheduler.stop();

    const probes: Record<string, number> = {};
    for (const [name, probe] of Object.entries(PROBES)) {
      const samples: number[] = [];
      for (let i = 0; i < 20; i++) {
        const start = performance.now();
        await probe(client, Date.now());
        samples.push(performance.now() - start);
      }
      probes[name] = median(samples);
    }

    Bun.gc(true);
    const memory = process.memoryUsage();
    const file = join(root, ".kiln", "kiln.db");
    const size = (path: string) => {
      try {
        return statSync(path).size;
      } catch {
        return 0;
      }
    };
    return {
      requested: count,
      schedules: insert.inserted,
      truncated: insert.truncated,
      insertLimitSeconds,
      insertSeconds: insert.seconds,
      due,
      tickMs: times,
      medianTickMs: median(times),
      probes,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      rssAtStart,
      databaseBytes: size(file) + size(`${file}-wal`),
    };
  } finally {
    p.close();
  }
}

/** (d) for one N, in a child process on a project written (and later removed) by this one. */
export async function tickCost(count: number): Promise<TickCost> {
  const root = writeProject("scheduler-tick", SCHEDULER_PROJECT);
  const child = Bun.spawn([process.execPath, join(import.meta.dirname, "scheduler-child.ts"), root, String(count)], {
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, KILN_DATABASE_URL: "" },
  });
  const [text, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  if (code !== 0) throw new Error(`the (d) child process for ${count} schedules exited with code ${code}`);
  return JSON.parse(text) as TickCost;
}

// ---------------------------------------------------------------------------------------------
// (e) lag on a live scheduler

export interface Lag {
  tickIntervalMs: number;
  triggers: number;
  /** The triggers' instants are spread over this many ms. */
  spreadMs: number;
  /** Per run, ms from its execution date (the trigger's instant) to... */
  created: number[];
  /** ...its pipeline run's started_at... */
  runStarted: number[];
  /** ...and its first block run's started_at: the lag. */
  lag: number[];
  p50: number;
  p99: number;
  max: number;
  skippedTicks: number;
}

/** The golden ratio's fractional part: i * PHI mod 1 spreads points evenly without lining up with any tick period. */
const PHI = (Math.sqrt(5) - 1) / 2;

/**
 * (e) A Scheduler started with start() on a fresh in-process project; `triggers` @once triggers
 * created through the API (createSchedule) at instants spread over `spreadMs`, starting
 * `leadMs` from now. Once every run has ended, lag = the first block run's started_at minus
 * the run's execution_date (the trigger's instant).
 */
export async function schedulerLag(tickIntervalMs: number, triggers = 30, spreadMs = 15_000, leadMs = 1_000): Promise<Lag> {
  return withProject("scheduler-lag", SCHEDULER_PROJECT, async (p) => {
    const scheduler = new Scheduler({ store: p.store, project: p.project, engine: p.engine, log: silentLog, tickIntervalMs, id: "bench-lag" });
    // warm-up: one run through the whole path (module import, JIT), not counted
    const warm = await p.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now() });
    check(warm !== null, "createPipelineRun returned null");
    check((await p.engine.execute(warm.id)).status === "completed", "the warm-up run did not complete");

    const base = Date.now() + leadMs;
    const instants = Array.from({ length: triggers }, (_, i) => base + Math.round(((i * PHI) % 1) * spreadMs)).sort((a, b) => a - b);
    const ids: number[] = [];
    for (const [i, startTime] of instants.entries()) {
      const schedule = await createSchedule(p.store, p.project, { name: `once-${i}`, pipelineUuid: "p", scheduleType: "time", scheduleInterval: "@once", startTime, status: "active" });
      ids.push(schedule.id);
    }
    // Work-around, before the scheduler starts: next_run_at = start_time, which is what the
    // scheduler's first look at a future @once trigger sets anyway. Without it, that first look
    // (a tick before start_time) stores last_execution_date = 0 instead of NULL
    // (scheduling.scheduleProgressStatement: max(coalesce(last_execution_date, 0), coalesce(?, 0))),
    // and a @once trigger with a last execution date never fires.
    await p.store.client.execute(`UPDATE pipeline_schedules SET next_run_at = start_time WHERE id IN (${ids.join(", ")})`);

    scheduler.start();
    try {
      const deadline = base + spreadMs + 10_000 + 3 * tickIntervalMs;
      for (;;) {
        const rs = await p.store.client.execute("SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_schedule_id IS NOT NULL AND status IN ('completed', 'failed', 'cancelled')");
        if (Number(rs.rows[0]?.n) >= triggers) break;
        check(Date.now() < deadline, `only ${String(rs.rows[0]?.n)} of ${triggers} scheduled runs ended in time`);
        await sleep(100);
      }
    } finally {
      await scheduler.stop();
    }

    const rs = await p.store.client.execute(`
      SELECT pr.execution_date, pr.created_at, pr.started_at, pr.status, min(br.started_at) AS block_started
      FROM pipeline_runs pr JOIN block_runs br ON br.pipeline_run_id = pr.id
      WHERE pr.pipeline_schedule_id IS NOT NULL GROUP BY pr.id ORDER BY pr.execution_date`);
    check(rs.rows.length === triggers, `${rs.rows.length} scheduled runs with block runs, expected ${triggers}`);
    const created: number[] = [];
    const runStarted: number[] = [];
    const lag: number[] = [];
    for (const r of rs.rows) {
      check(r.status === "completed", `a scheduled run ended ${String(r.status)}`);
      const date = Number(r.execution_date);
      created.push(Number(r.created_at) - date);
      runStarted.push(Number(r.started_at) - date);
      lag.push(Number(r.block_started) - date);
    }
    return { tickIntervalMs, triggers, spreadMs, created, runStarted, lag, p50: percentile(lag, 50), p99: percentile(lag, 99), max: Math.max(...lag), skippedTicks: scheduler.skippedTicks };
  });
}
