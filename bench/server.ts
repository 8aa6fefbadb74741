/**
 * The server benchmarks. (f) API trigger → first block started: a POST to the token route over
 * loopback HTTP until the in-process block's first line runs, next to the same POST answered by
 * a bare Bun.serve (the HTTP floor, measured in the same run) and the 5 ms target. (g) listing
 * runs with 1,000,000 stored: GET /api/pipeline_runs?_limit=40, first page and a deep page.
 */
import { createSchedule } from "@kiln/core/api";
import { createApiKey } from "@kiln/core/auth";
import { Scheduler, silentLog } from "@kiln/scheduler";
import { createApp } from "@kiln/server";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startCheckpointer } from "@kiln/node";
import { openBenchProject, writeProject } from "./project.ts";
import { percentile } from "./scheduler.ts";

export interface TriggerLatency {
  samples: number;
  p50: number;
  p99: number;
  floorP50: number;
  floorP99: number;
}

export interface ListThroughput {
  runs: number;
  page: "first" | "deep";
  requests: number;
  concurrency: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** One request in flight: the latency a single client sees. */
  aloneP50: number;
  aloneP99: number;
  /** The same response body from a bare Bun.serve, same concurrency: HTTP alone. */
  floorPerSecond: number;
  /** The same page fetched with LIMIT/OFFSET (how offset-paged APIs do it), SQL alone, p50. */
  offsetSqlP50: number;
}

/** Where the block reports that it started (the block runs in this process). */
type StartedHook = { __kilnBenchStarted?: () => void };

async function benchServer(name: string) {
  const root = writeProject(name, { inProcess: true, pipelines: [{ uuid: "p", blocks: 1 }] });
  // the chain's first block announces it started, then does nothing
  writeFileSync(join(root, "data_loaders/b000.js"), "export default () => { globalThis.__kilnBenchStarted?.(); return null; };\n");
  const p = await openBenchProject(root);
  // as kiln start does
  const stopCheckpointer = await startCheckpointer(p.store.client, join(root, ".kiln/kiln.db"));
  const scheduler = new Scheduler({ store: p.store, project: p.project, engine: p.engine, log: silentLog, tickIntervalMs: 1000 });
  // not ticking: only the store's "runs created" signal starts runs, so (f) measures that path alone
  const unlisten = p.store.runsCreated.listen((event) => scheduler.wake(event));
  const app = createApp(
    {
      store: p.store,
      project: () => p.project,
      clock: p.store.clock,
      version: "bench",
      authEnabled: true,
      secretKey: null,
      bodyLimitBytes: 1024 * 1024,
      engine: p.engine,
    },
    { log: () => {} },
  );
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  const { key } = await createApiKey(p.store.client, { name: "bench", role: "admin" }, Date.now());
  return {
    p,
    scheduler,
    key,
    url: `http://127.0.0.1:${server.port}`,
    async close() {
      unlisten();
      await scheduler.stop(5000);
      await stopCheckpointer();
      server.stop(true);
      p.close();
    },
  };
}

/**
 * Untimed triggers (and peers' adds) before the timed ones, the same for kiln and its peers:
 * each is a long-running process, and the JIT's tier-up compiles on the path land in the first
 * few hundred (seen with BUN_JSC_reportDFGCompileTimes=1: at the same trigger numbers in every
 * run, each a slow trigger), so the p99 is the steady state's, not the process's first minute.
 */
export const LATENCY_WARMUP = 500;

/** (f): `samples` triggers one after another, each waiting for its run to end before the next. */
export async function apiTriggerLatency(samples = 500, warmup = LATENCY_WARMUP): Promise<TriggerLatency> {
  const s = await benchServer("api-trigger");
  const hook = globalThis as StartedHook;
  try {
    const schedule = await createSchedule(s.p.store, s.p.project, { name: "api", pipelineUuid: "p", scheduleType: "api", status: "active" });
    const target = `${s.url}/api/pipeline_schedules/${schedule.id}/pipeline_runs/${await s.p.store.revealTriggerToken(schedule.id)}`;
    const body = JSON.stringify({ pipeline_run: { variables: { n: 1 } } });
    const latencies: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      let started = 0;
      const blockStarted = new Promise<void>((resolve) => {
        hook.__kilnBenchStarted = () => {
          started = performance.now();
          resolve();
        };
      });
      const t0 = performance.now();
      const response = await fetch(target, { method: "POST", body, headers: { "content-type": "application/json" } });
      if (response.status !== 201) throw new Error(`trigger answered ${response.status}: ${await response.text()}`);
      const run = ((await response.json()) as { pipeline_run: { id: number } }).pipeline_run;
      await blockStarted;
      if (i >= warmup) latencies.push(started - t0);
      if (process.env.KILN_BENCH_TRACE && started - t0 > Number(process.env.KILN_BENCH_TRACE_MS ?? 4)) console.error(`slow #${i}: ${(started - t0).toFixed(1)} ms`);
      // the next trigger starts with no run in flight
      while ((await s.p.store.getPipelineRun(run.id))?.status !== "completed") await Bun.sleep(1);
    }
    const floor = await httpFloor(warmup + samples, body);
    latencies.sort((a, b) => a - b);
    return { samples, p50: percentile(latencies, 50), p99: percentile(latencies, 99), floorP50: floor.p50, floorP99: floor.p99 };
  } finally {
    delete hook.__kilnBenchStarted;
    await s.close();
  }
}

/** The same POST answered by a bare Bun.serve that reads the body and answers 201: HTTP alone. */
async function httpFloor(n: number, body: string): Promise<{ p50: number; p99: number }> {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      return Response.json({ pipeline_run: await request.json() }, { status: 201 });
    },
  });
  try {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const response = await fetch(`http://127.0.0.1:${server.port}/`, { method: "POST", body, headers: { "content-type": "application/json" } });
      await response.json();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 50), p99: percentile(times, 99) };
  } finally {
    server.stop(true);
  }
}

/** Inserts `count` completed runs in one statement per 100,000 (no engine: the rows alone). */
async function insertRuns(s: Awaited<ReturnType<typeof benchServer>>, count: number): Promise<void> {
  const chunk = 100_000;
  const base = Date.UTC(2020, 0, 1);
  for (let done = 0; done < count; done += chunk) {
    const n = Math.min(chunk, count - done);
    await s.p.store.client.execute({
      sql: `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
            INSERT INTO pipeline_runs (pipeline_uuid, execution_date, execution_partition, status, variables, metrics, created_at, updated_at, started_at, completed_at)
            SELECT 'p', ? + (? + i) * 60000, 'manual/' || (? + i), 'completed', '{}', '{}', ?, ?, ?, ? FROM seq`,
      args: [n, base, done, done, base, base, base, base],
    });
  }
}

/** (g): `requests` GETs of one page, `concurrency` at a time. */
export async function listThroughput(runs = 1_000_000, requests = 2_000, concurrency = 8): Promise<ListThroughput[]> {
  const s = await benchServer("list-runs");
  try {
    await insertRuns(s, runs);
    const headers = { authorization: `Bearer ${s.key}` };
    const results: ListThroughput[] = [];
    for (const page of ["first", "deep"] as const) {
      // the deep page is the one after run id runs/2: page 12,500 of 40
      const url = `${s.url}/api/pipeline_runs?_limit=40${page === "deep" ? `&_after=${Math.floor(runs / 2)}` : ""}`;
      const check = await fetch(url, { headers });
      const body = (await check.json()) as { pipeline_runs?: unknown[] };
      if (check.status !== 200 || body.pipeline_runs?.length !== 40) throw new Error(`GET ${url} answered ${check.status} with ${body.pipeline_runs?.length} runs`);
      for (let i = 0; i < 100; i++) await (await fetch(url, { headers })).arrayBuffer();
      const loaded = await load(url, headers, requests, concurrency);
      const alone = await load(url, headers, Math.floor(requests / 4), 1);
      const floor = await bodyFloor(JSON.stringify(body), requests, concurrency);
      const offset = page === "first" ? 0 : runs - Math.floor(runs / 2) + 1;
      const sqlTimes: number[] = [];
      for (let i = 0; i < 21; i++) {
        const t = performance.now();
        await s.p.store.client.execute({ sql: "SELECT * FROM pipeline_runs ORDER BY id DESC LIMIT 41 OFFSET ?", args: [offset] });
        sqlTimes.push(performance.now() - t);
      }
      sqlTimes.sort((a, b) => a - b);
      results.push({
        runs,
        page,
        requests: loaded.times.length,
        concurrency,
        perSecond: loaded.perSecond,
        p50: percentile(loaded.times, 50),
        p99: percentile(loaded.times, 99),
        aloneP50: percentile(alone.times, 50),
        aloneP99: percentile(alone.times, 99),
        floorPerSecond: floor.perSecond,
        offsetSqlP50: percentile(sqlTimes, 50),
      });
    }
    return results;
  } finally {
    await s.close();
  }
}

/** `requests` GETs of `url`, `concurrency` at a time: sorted latencies and the rate. */
async function load(url: string, headers: Record<string, string>, requests: number, concurrency: number): Promise<{ times: number[]; perSecond: number }> {
  const times: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next++;
        const start = performance.now();
        await (await fetch(url, { headers })).arrayBuffer();
        times.push(performance.now() - start);
      }
    }),
  );
  const perSecond = times.length / ((performance.now() - t0) / 1000);
  times.sort((a, b) => a - b);
  return { times, perSecond };
}

/** The same body from a bare Bun.serve: what HTTP and the client cost with no kiln in the way. */
async function bodyFloor(body: string, requests: number, concurrency: number): Promise<{ perSecond: number }> {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(body, { headers: { "content-type": "application/json" } }) });
  try {
    return await load(`http://127.0.0.1:${server.port}/`, {}, requests, concurrency);
  } finally {
    server.stop(true);
  }
}

const ms = (n: number) => `${n.toFixed(2)} ms`;

/** (f) and (g) as markdown. */
export function serverTables(trigger: TriggerLatency | null, lists: readonly ListThroughput[]): string {
  const lines: string[] = [];
  if (trigger) {
    lines.push(
      `(f): ${trigger.samples} API triggers (POST /api/pipeline_schedules/:id/pipeline_runs/:token over loopback HTTP) one after another, each timed until its in-process block's first line runs; after 50 warm-ups. Floor: the same POST to a bare Bun.serve in the same run.`,
      "",
      "| Benchmark | p50 | p99 | HTTP floor p50 / p99 | Target |",
      "| --- | --- | --- | --- | --- |",
      `| (f) API trigger → first block started | ${ms(trigger.p50)} | ${ms(trigger.p99)} | ${ms(trigger.floorP50)} / ${ms(trigger.floorP99)} | p99 < 5 ms: ${trigger.p99 < 5 ? "**met**" : "**missed**"} |`,
      "",
    );
  }
  if (lists.length > 0) {
    const l = lists[0]!;
    lines.push(
      `(g): ${l.runs.toLocaleString("en-US")} runs stored; ${l.requests.toLocaleString("en-US")} GET /api/pipeline_runs?_limit=40 with an admin key, ${l.concurrency} in flight, after 100 warm-ups; the deep page is _after=${Math.floor(l.runs / 2)} (page ${Math.floor(l.runs / 2 / 40).toLocaleString("en-US")}).`,
      "",
      `Alone: one request in flight. HTTP floor: the same body from a bare Bun.serve, ${l.concurrency} in flight. OFFSET: the same page read with LIMIT 41 OFFSET n (offset paging), the SQL alone.`,
      "",
      "| Benchmark | Requests/s | p50 | p99 | Alone p50 / p99 | HTTP floor | OFFSET SQL p50 |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...lists.map(
        (r) =>
          `| (g) list runs, ${r.page} page | ${Math.round(r.perSecond).toLocaleString("en-US")} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.aloneP50)} / ${ms(r.aloneP99)} | ${Math.round(r.floorPerSecond).toLocaleString("en-US")} req/s | ${ms(r.offsetSqlP50)} |`,
      ),
      "",
    );
  }
  return lines.join("\n");
}
