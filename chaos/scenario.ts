/**
 * One chaos run: N replicas on one database (a libSQL file or sqld), with or without Redis, time,
 * @always_on, API and backfill runs, faults every few seconds; then everything is put back, the
 * time triggers are switched off, the runs settle, and the checks read what happened.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretKey } from "@kiln/core/runtime";
import { createAdminKey } from "../test/helpers/cli.ts";
import { freePort } from "../test/helpers/ports.ts";
import { runChecks, type CheckResult } from "./checks.ts";
import { ChaosDb, type Row } from "./db.ts";
import { Faults, type FaultKind } from "./faults.ts";
import { AlwaysOnWatch, ApiLoad, startBackfill } from "./load.ts";
import { processesIn, RedisProcess, Replica, SqldProcess } from "./processes.ts";
import { BLOCK_MS, deactivateTimeTriggers, PIPELINE, TRIGGERS, writeProject, type BlockOutput, type BlockRecord } from "./project.ts";
import { Random } from "./random.ts";
import { messageOf } from "@kiln/core";

export interface ChaosOptions {
  /** How long faults are injected, in minutes (the settling comes after). */
  minutes: number;
  seed: number;
  database: "file" | "sqld";
  redis: boolean;
  replicas: number;
  /** Seconds between faults: [min, max). */
  faultEverySeconds: [number, number];
  /** Seconds between two API trigger calls: [min, max). */
  apiEverySeconds: [number, number];
  /** kiln start --orphan-after; freezes last this plus 2-4 s. */
  orphanAfterSeconds: number;
  /** Most seconds to wait for every run to end once the faults stop. */
  settleSeconds: number;
  /** Keep the work folder (project, database, logs, records) even when every check holds. */
  keep?: boolean;
  log?: (line: string) => void;
}

/** Project folders of the runs in progress (for killEverythingStarted on an interrupt). */
export const activeRoots = new Set<string>();

export interface ChaosReport {
  options: ChaosOptions;
  startedAt: string;
  seconds: number;
  workDir: string;
  faults: Record<FaultKind, number>;
  faultsTotal: number;
  unexpectedExits: number;
  api: { sent: number; acknowledged: number; notAcknowledged: number };
  runs: { total: number; cron: number; alwaysOn: number; api: number; backfill: number };
  blockRuns: number;
  executions: number;
  reExecutions: number;
  /** Block runs whose recorded attempt is above 1. */
  retriedBlockRuns: number;
  zombies: { total: number; ranToEnd: number; aborted: number; killed: number };
  alwaysOnSamples: number;
  settledInSeconds: number | null;
  replicaStops: string[];
  blockProcessesLeft: number;
  errorLogLines: number;
  errorSamples: string[];
  checks: CheckResult[];
  ok: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = ["completed", "failed", "cancelled", "upstream_failed", "condition_failed"];

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`chaos: timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** The ERROR lines of the replicas' logs, with digits folded so the same message counts once. */
function errorLines(logDir: string): { count: number; samples: string[] } {
  const counts = new Map<string, number>();
  let count = 0;
  for (const name of readdirSync(logDir)) {
    if (!name.startsWith("replica-")) continue;
    for (const line of readFileSync(join(logDir, name), "utf8").split("\n")) {
      if (!/\bERROR\b/.test(line)) continue;
      count++;
      const key = line.replace(/^\S+\s+/, "").replace(/\d+/g, "N").slice(0, 200);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  const samples = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([line, n]) => `${n} x ${line}`);
  return { count, samples };
}

function readRecords(file: string): BlockRecord[] {
  if (!existsSync(file)) return [];
  const out: BlockRecord[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as BlockRecord);
    } catch {
      // a line cut by a SIGKILL mid-write
    }
  }
  return out;
}

/** Runs one chaos scenario and returns its counts and checks. */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const rng = new Random(options.seed);
  const workDir = mkdtempSync(join(tmpdir(), "kiln-chaos-"));
  const root = join(workDir, "project");
  const logDir = join(workDir, "logs");
  mkdirSync(logDir, { recursive: true });
  // every line also goes to logs/chaos.log, kept with the work folder when a check fails
  const print = options.log ?? ((line: string) => console.log(line));
  const log = (line: string) => {
    const stamped = `${new Date().toISOString()} chaos: ${line}`;
    appendFileSync(join(logDir, "chaos.log"), `${stamped}\n`);
    print(stamped);
  };
  const recordsFile = join(workDir, "records.jsonl");
  const token = Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("");
  writeProject(root, recordsFile, token);
  activeRoots.add(root);
  const startedAt = new Date();
  log(`work folder ${workDir}`);

  const sqld = options.database === "sqld" ? new SqldProcess(await freePort(), join(workDir, "sqld-data"), join(logDir, "sqld.log")) : null;
  const redis = options.redis ? new RedisProcess(await freePort(), join(logDir, "redis.log")) : null;
  const replicas: Replica[] = [];
  let db: ChaosDb | null = null;
  let faults: Faults | null = null;
  let apiLoad: ApiLoad | null = null;
  let watch: AlwaysOnWatch | null = null;
  let keep = options.keep === true;
  try {
    await sqld?.start();
    await redis?.start();
    const databaseUrl = sqld ? sqld.url : `file:${join(workDir, "kiln.db")}`;
    // one key for every replica, as a deployment sets it (secrets and the session key are encrypted under it)
    const secretKey = generateSecretKey();
    for (let i = 0; i < options.replicas; i++) {
      replicas.push(new Replica(i, { root, port: await freePort(), databaseUrl, secretKey, redisUrl: redis?.url ?? null, orphanAfterSeconds: options.orphanAfterSeconds, logFile: join(logDir, `replica-${i}.log`) }));
    }
    // the first admin key, made as an operator makes it (kiln keeps none on disk), then every replica
    const adminKey = await createAdminKey(root, { KILN_DATABASE_URL: databaseUrl, KILN_SECRET_KEY: secretKey, REDIS_URL: undefined });
    for (const replica of replicas) replica.start();
    db = new ChaosDb(databaseUrl);
    const chaosDb = db;
    const scheduleIds = await waitFor("the triggers to be synced", 60_000, async () => {
      const rows = await chaosDb.rows("SELECT id, name FROM pipeline_schedules WHERE pipeline_uuid = ?", [PIPELINE]);
      const id = (name: string) => Number(rows.find((r) => r.name === name)?.id ?? 0);
      const ids = { cron: id(TRIGGERS.cron), alwaysOn: id(TRIGGERS.alwaysOn), api: id(TRIGGERS.api) };
      return ids.cron && ids.alwaysOn && ids.api ? ids : null;
    });
    await waitFor("every replica to answer", 60_000, async () => {
      const answers = await Promise.all(replicas.map((r) => fetch(`${r.url}/api/pipelines`, { headers: { authorization: `Bearer ${adminKey}` }, signal: AbortSignal.timeout(2_000) }).then((a) => a.ok, () => false)));
      return answers.every(Boolean);
    });
    log(`${replicas.length} replicas up (${options.database}${redis ? ", Redis" : ", no Redis"}); faults for ${options.minutes} min, seed ${options.seed}`);

    const chaosStart = Date.now();
    const until = chaosStart + options.minutes * 60_000;
    watch = new AlwaysOnWatch(db, scheduleIds.alwaysOn);
    const watching = watch.run();
    apiLoad = new ApiLoad(replicas, scheduleIds.api, token, rng, options.apiEverySeconds);
    const loading = apiLoad.run();
    const backfills: Array<{ id: number; dates: number }> = [];
    const backfill = async (name: string, from: string) => {
      // through whichever replica answers: one may be down or frozen right now
      for (let attempt = 0; attempt < 20; attempt++) {
        const replica = replicas.find((r) => r.pid !== null && !r.frozen);
        if (replica) {
          try {
            backfills.push(await startBackfill(replica, adminKey, PIPELINE, name, from, 12));
            log(`backfill ${name} started`);
            return;
          } catch (error) {
            log(`backfill ${name}: ${messageOf(error)}; trying again`);
          }
        }
        await sleep(1_000);
      }
      throw new Error(`chaos: backfill ${name} could not be started`);
    };
    await backfill("chaos_first", "2024-01-01T00:00:00Z");
    faults = new Faults({ rng, replicas, redis, sqld, db, root, orphanAfterSeconds: options.orphanAfterSeconds, everySeconds: options.faultEverySeconds, log });
    const faulting = faults.run(until);
    await sleep(Math.max(0, (until - Date.now()) / 2));
    await backfill("chaos_second", "2024-02-01T00:00:00Z");
    await faulting;

    // put everything back, stop the load and the time triggers, and let the runs end
    await apiLoad.stop();
    await loading;
    await faults.restore();
    deactivateTimeTriggers(root, token);
    log(`faults stopped (${faults.total} injected); settling`);
    const settleStart = Date.now();
    let settledInSeconds: number | null = null;
    let quietSince: number | null = null;
    while (Date.now() - settleStart < options.settleSeconds * 1000) {
      const live = await db.tryRows(
        `SELECT (SELECT count(*) FROM pipeline_runs WHERE status NOT IN ('completed','failed','cancelled')) AS runs,
                (SELECT count(*) FROM block_runs WHERE status NOT IN (${TERMINAL.map((s) => `'${s}'`).join(",")})) AS blocks,
                (SELECT count(*) FROM backfills WHERE status NOT IN ('completed','failed','cancelled')) AS backfills,
                (SELECT count(*) FROM pipeline_schedules WHERE pipeline_uuid = '${PIPELINE}' AND schedule_type = 'time' AND status = 'active') AS active,
                (SELECT count(*) FROM pipeline_runs) AS total`,
      );
      const row = live?.[0];
      const settled = row && Number(row.runs) === 0 && Number(row.blocks) === 0 && Number(row.backfills) === 0 && Number(row.active) === 0;
      if (settled) {
        // quiet for a few seconds more: no trigger may still be making a run
        quietSince ??= Date.now();
        if (Date.now() - quietSince >= 5_000) {
          settledInSeconds = Math.round((Date.now() - settleStart) / 1000);
          break;
        }
      } else quietSince = null;
      await sleep(1_000);
    }
    log(settledInSeconds === null ? `not settled within ${options.settleSeconds} s` : `settled in ${settledInSeconds} s`);
    watch.stop();
    await watching;

    const replicaStops: string[] = [];
    for (const replica of replicas) replicaStops.push(`replica ${replica.index}: ${await replica.stop(30_000)}`);
    // a block process still running after every replica stopped belongs to nobody
    await sleep(Math.max(BLOCK_MS.load, BLOCK_MS.finish) + 1_000);
    const leftovers = processesIn(root);
    for (const pid of leftovers) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }

    const runs = await db.rows("SELECT * FROM pipeline_runs ORDER BY id");
    const blockRuns = await db.rows("SELECT * FROM block_runs ORDER BY id");
    const backfillRows = await db.rows("SELECT * FROM backfills ORDER BY id");
    // an in-process block run's small output is a row (read before its file, as kiln reads it)
    const outputRows = new Map((await db.rows("SELECT execution_partition, block_uuid, value FROM block_outputs")).map((r) => [`${String(r.execution_partition)}/${String(r.block_uuid)}`, String(r.value)]));
    const records = readRecords(recordsFile);
    const report = runChecks({
      runs,
      blockRuns,
      backfills,
      backfillRows,
      scheduleIds,
      acks: apiLoad.acks,
      records,
      freezes: faults.freezes,
      alwaysOnDoubles: watch.doubles,
      output: (partition, block) => {
        try {
          const row = outputRows.get(`${partition}/${block}`);
          if (row !== undefined) return JSON.parse(row) as BlockOutput;
          return JSON.parse(readFileSync(join(root, ".variables/pipelines", PIPELINE, partition, block, "output_0"), "utf8")) as BlockOutput;
        } catch {
          return null;
        }
      },
    });
    if (settledInSeconds === null) report.results.unshift({ name: "every run ends once the faults stop", ok: false, detail: `runs still live ${options.settleSeconds} s after the faults stopped` });
    if (leftovers.length > 0) report.results.push({ name: "no block process outlives the replicas", ok: false, detail: `${leftovers.length} still running (pids ${leftovers.join(", ")}), killed` });
    const count = (pred: (r: Row) => boolean) => runs.filter(pred).length;
    const errors = errorLines(logDir);
    const ok = report.results.every((r) => r.ok);
    if (!ok) keep = true;
    const zombies = report.zombies;
    return {
      options,
      startedAt: startedAt.toISOString(),
      seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      workDir,
      faults: { ...faults.counts },
      faultsTotal: faults.total,
      unexpectedExits: faults.unexpectedExits.length,
      api: { sent: apiLoad.sent, acknowledged: apiLoad.acks.length, notAcknowledged: apiLoad.refused },
      runs: {
        total: runs.length,
        cron: count((r) => Number(r.pipeline_schedule_id) === scheduleIds.cron),
        alwaysOn: count((r) => Number(r.pipeline_schedule_id) === scheduleIds.alwaysOn),
        api: count((r) => Number(r.pipeline_schedule_id) === scheduleIds.api),
        backfill: count((r) => r.backfill_id !== null),
      },
      blockRuns: blockRuns.length,
      executions: report.executions.length,
      reExecutions: report.reExecutions,
      retriedBlockRuns: blockRuns.filter((b) => Number(b.attempt) > 1).length,
      zombies: {
        total: zombies.length,
        ranToEnd: zombies.filter((z) => z.ended === "end").length,
        aborted: zombies.filter((z) => z.ended === "aborted").length,
        killed: zombies.filter((z) => z.ended === null).length,
      },
      alwaysOnSamples: watch.samples,
      settledInSeconds,
      replicaStops,
      blockProcessesLeft: leftovers.length,
      errorLogLines: errors.count,
      errorSamples: errors.samples,
      checks: report.results,
      ok,
    };
  } catch (error) {
    keep = true;
    throw error;
  } finally {
    apiLoad && (await apiLoad.stop().catch(() => undefined));
    watch?.stop();
    for (const replica of replicas) if (replica.pid !== null) await replica.kill();
    for (const pid of processesIn(root)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    activeRoots.delete(root);
    db?.close();
    await redis?.kill();
    await sqld?.kill();
    if (!keep) rmSync(workDir, { recursive: true, force: true });
    else log(`kept ${workDir}`);
  }
}

/** The report as the lines `bun run chaos` prints. */
export function formatReport(r: ChaosReport): string {
  const o = r.options;
  const f = Object.entries(r.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ");
  const lines = [
    `chaos run ${r.startedAt}: ${o.database === "file" ? "libSQL file" : "sqld"}, ${o.redis ? "Redis" : "no Redis"}, ${o.replicas} replicas, ${o.minutes} min of faults every ${o.faultEverySeconds[0]}-${o.faultEverySeconds[1]} s, seed ${o.seed}, orphan window ${o.orphanAfterSeconds} s (${r.seconds} s in all)`,
    `  faults injected: ${r.faultsTotal} (${f || "none"}); replicas that exited on their own: ${r.unexpectedExits}`,
    `  API trigger calls: ${r.api.sent} sent, ${r.api.acknowledged} acknowledged`,
    `  runs: ${r.runs.total} (cron ${r.runs.cron}, @always_on ${r.runs.alwaysOn}, API ${r.runs.api}, backfill ${r.runs.backfill}); block runs ${r.blockRuns}; executions ${r.executions}`,
    `  re-executions: ${r.reExecutions} block runs executed more than once (${r.retriedBlockRuns} recorded with attempt > 1)`,
    `  zombies: ${r.zombies.total} executions in a frozen replica beside the new owner's (${r.zombies.ranToEnd} ran to the end, ${r.zombies.aborted} aborted, ${r.zombies.killed} killed)`,
    `  settled in ${r.settledInSeconds ?? "-"} s; ${r.replicaStops.join(", ")}; block processes left: ${r.blockProcessesLeft}`,
    `  ERROR log lines: ${r.errorLogLines}${r.errorSamples.length ? `\n${r.errorSamples.map((s) => `    ${s}`).join("\n")}` : ""}`,
    `  checks:`,
    ...r.checks.map((c) => `    ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`),
    r.ok ? "  all checks hold" : `  CHECKS FAILED (work folder kept: ${r.workDir})`,
  ];
  return lines.join("\n");
}
