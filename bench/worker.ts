/**
 * (w) kiln on workerd: the built Worker (`kiln build worker`, bundled by `wrangler deploy
 * --dry-run`) under Miniflare, once with Miniflare's local D1 and once with a libSQL server
 * (sqld from the devDependency, on a free port). Measured per invocation, beside Cloudflare's
 * Free and Paid plan limits:
 * - API trigger -> first block started: the POST of Mage's trigger URL (no credentials) to the
 *   first block run's started_at as stored (the Worker's clock, whole ms). The route wakes the
 *   scheduler object, whose alarm runs the tick that starts the run.
 * - subrequests: counted inside the Worker by bench/worker-instrument.ts (fetches, D1 queries,
 *   Durable Object calls) for each invocation; with sqld, the fetches are also counted by a
 *   loopback proxy in front of sqld, and the two counts must agree.
 * - CPU: workerd does not report an invocation's CPU time, so this is the CPU time (user +
 *   system, from /proc/<pid>/task/<tid>/schedstat, in ns) of the whole workerd process over
 *   the invocation's span: kiln's JavaScript plus workerd's own work for it (HTTP, and with D1,
 *   Miniflare's SQLite engine, which runs inside workerd and is not the Worker's CPU on
 *   Cloudflare). An upper bound of the Worker's CPU time, then, measured over a span of
 *   invocations that overlap (the route's waitUntil wakes the object; the tick runs meanwhile).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { Miniflare } from "miniflare";
import { createClient } from "@libsql/client";
import { createApiKey } from "@kiln/core/auth";
import { generateSecretKey } from "@kiln/core/runtime";
import { Store, type SqlClient } from "@kiln/core/store";
import { d1Client, type D1Database } from "@kiln/worker";
import { CLI_MAIN, REPO_ROOT } from "../test/helpers/fixtures.ts";
import { startSqld, type Started } from "../test/worker/processes.ts";
import { percentile } from "./scheduler.ts";
import type { InvocationRecord } from "./worker-instrument.ts";
import { bundleWorker } from "../test/helpers/wrangler.ts";

/** The Worker's name under Miniflare. */
const WORKER_NAME = "kiln-bench";

/** Blocks in the benchmark pipeline's chain (no-op, in the Worker). */
const BLOCKS = 3;

/**
 * Cloudflare's limits per invocation (developers.cloudflare.com/workers/platform/limits,
 * /durable-objects/platform/limits and /d1/platform/limits, read 2026-12-02). A Durable
 * Object's alarm is an invocation of its own, with the CPU limit of a request.
 */
export const CLOUDFLARE_LIMITS = {
  free: { cpuMs: 10, subrequests: 50, d1Queries: 50 },
  paid: { cpuMs: 30_000, cpuMsMax: 300_000, subrequests: 10_000, d1Queries: 1_000 },
};

export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

/** One invocation kind's subrequests (fetches + D1 queries + object calls), counted per invocation. */
export interface InvocationCost {
  samples: number;
  subrequests: Spread;
  /** D1 statements, when a batch carries several: what the D1 query limit may count instead. */
  d1Statements: Spread;
}

/**
 * CPU over one span of invocations. The Worker isolate runs them concurrently (the route's
 * waitUntil wakes the object while it answers; the tick starts meanwhile), so CPU is measured
 * over the whole span: an upper bound of each invocation's.
 */
export interface SpanCpu {
  /** workerd's whole process over the span. */
  processMs: Spread;
}

export interface WorkerFigures {
  database: "D1 (Miniflare)" | "sqld";
  samples: number;
  triggerToStart: Spread;
  apiRequest: InvocationCost;
  wake: InvocationCost;
  tick: InvocationCost;
  idleCron: InvocationCost;
  idleTick: InvocationCost;
  /** An API request, the wake and the tick that runs its run to the end. */
  runCpu: SpanCpu;
  /** A cron firing, the wake and a tick with nothing to run. */
  idleCpu: SpanCpu;
  /** workerd's CPU while nothing runs, per second: the noise floor of the process figures. */
  idleCpuMsPerSecond: number;
  /** sqld only: fetches the proxy saw / fetches the Worker counted. */
  proxyCheck: { proxy: number; counted: number } | null;
}

function spread(values: number[]): Spread {
  return { p50: percentile(values, 50), p99: percentile(values, 99), max: Math.max(...values) };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** CPU time (ns) of every thread of process `pid` so far. */
function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

/** The workerd process Miniflare started: a child of this process named workerd. */
function workerdPid(): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (name === "workerd" && ppid === process.pid) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error("no workerd child process found: Miniflare did not start one");
}

/** The benchmark's project: one pipeline, a chain of no-op blocks in the Worker, an API trigger. */
function writeProject(root: string): void {
  const files: Record<string, string> = {
    "kiln.yaml": "executor_config:\n  in_process: true\n",
    "pipelines/p/metadata.yaml": `blocks:\n${Array.from({ length: BLOCKS }, (_, i) => `  - uuid: b${i}\n    type: custom\n${i > 0 ? `    upstream_blocks: [b${i - 1}]\n` : ""}`).join("")}`,
    "pipelines/p/triggers.yaml": "triggers:\n  - name: api\n    schedule_type: api\n    status: active\n",
  };
  for (let i = 0; i < BLOCKS; i++) files[`custom/b${i}.js`] = "export default () => null;\n";
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

/** Builds the benchmark project's Worker into `dir` with the counting wrapper as its entry, bundled by wrangler; the bundle's path. */
export function buildWorker(dir: string): string {
  writeProject(join(dir, "project"));
  const built = spawnSync("bun", [CLI_MAIN, "build", "worker", join(dir, "project"), "--out", join(dir, "build")], { cwd: REPO_ROOT, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`kiln build worker failed (${built.status}): ${built.stderr}`);
  writeFileSync(
    join(dir, "entry.ts"),
    [
      "// the counting wrapper first, so kiln's modules find the fetch it wraps",
      `import { instrumentedObject, instrumentedWorker } from ${JSON.stringify(join(REPO_ROOT, "bench/worker-instrument.ts"))};`,
      'import worker, { KilnScheduler as Base } from "./build/index.ts";',
      "export default instrumentedWorker(worker);",
      "export const KilnScheduler = instrumentedObject(Base);",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "wrangler.toml"), ['name = "kiln-bench"', 'main = "entry.ts"', 'compatibility_date = "2026-04-01"', 'compatibility_flags = ["nodejs_compat"]', ""].join("\n"));
  bundleWorker(dir);
  return join(dir, "dist/entry.js");
}

/** A loopback HTTP proxy in front of sqld that counts what it forwards: the independent count of the Worker's fetches. */
function countingProxy(target: string): { url: string; count: () => number; stop: () => void } {
  let count = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      count++;
      const url = new URL(request.url);
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      const headers = new Headers(request.headers);
      headers.delete("host");
      const answer = await fetch(`${target}${url.pathname}${url.search}`, { method: request.method, headers, body });
      // Bun's fetch has decoded the body already: its encoding and length headers no longer hold
      const back = new Headers(answer.headers);
      back.delete("content-encoding");
      back.delete("content-length");
      return new Response(await answer.arrayBuffer(), { status: answer.status, headers: back });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, count: () => count, stop: () => server.stop(true) };
}

/** Waits for the instrument's end-of-invocation notices. */
function noticeBoard(): { url: string; next: (kind: InvocationRecord["kind"], limitMs?: number) => Promise<number>; clear: () => void; stop: () => void } {
  const heard: Array<{ seq: number; kind: InvocationRecord["kind"] }> = [];
  const waiters: Array<() => void> = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      heard.push((await request.json()) as { seq: number; kind: InvocationRecord["kind"] });
      for (const wake of waiters.splice(0)) wake();
      return new Response("ok");
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/`,
    async next(kind, limitMs = 30_000) {
      const deadline = Date.now() + limitMs;
      for (;;) {
        const i = heard.findIndex((h) => h.kind === kind);
        if (i >= 0) return heard.splice(i, 1)[0]!.seq;
        if (Date.now() > deadline) throw new Error(`no ${kind} invocation ended within ${limitMs} ms`);
        await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), sleep(100)]);
      }
    },
    clear: () => void heard.splice(0),
    stop: () => server.stop(true),
  };
}

function subrequestsOf(record: InvocationRecord): number {
  return Object.values(record.fetches).reduce((a, b) => a + b, 0) + record.d1Calls + record.objectCalls;
}

function cost(records: InvocationRecord[]): InvocationCost {
  if (records.length === 0) throw new Error("no invocation of this kind was recorded");
  return { samples: records.length, subrequests: spread(records.map(subrequestsOf)), d1Statements: spread(records.map((r) => r.d1Statements)) };
}

/**
 * One database: `samples` API triggers one after another (each waits until the tick that ran
 * its run has ended), after `warmup` untimed ones; then `idle` cron firings with nothing to run.
 */
export async function workerBench(database: "d1" | "sqld", samples = 100, warmup = 10, idle = 30): Promise<WorkerFigures> {
  const dir = join(REPO_ROOT, "test-artifacts", `bench-worker-${crypto.randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  let mf: Miniflare | null = null;
  let sqld: Started | null = null;
  let proxy: ReturnType<typeof countingProxy> | null = null;
  const notices = noticeBoard();
  try {
    const script = buildWorker(dir);
    const bindings: Record<string, string> = { KILN_SECRET_KEY: generateSecretKey(), KILN_BENCH_NOTIFY: notices.url };
    // KILN_BENCH_TRACE=1: each invocation keeps its statements, printed at the end
    if (process.env.KILN_BENCH_TRACE) bindings.KILN_BENCH_TRACE = "1";
    if (database === "sqld") {
      sqld = await startSqld(dir);
      proxy = countingProxy(sqld.url);
      bindings.LIBSQL_URL = proxy.url;
    }
    mf = new Miniflare({
      name: WORKER_NAME,
      modules: true,
      scriptPath: script,
      modulesRoot: join(dir, "dist"),
      compatibilityDate: "2026-04-01",
      compatibilityFlags: ["nodejs_compat"],
      host: "127.0.0.1",
      port: 0,
      ...(database === "d1" ? { d1Databases: { DB: "kiln" }, d1Persist: join(dir, "d1") } : {}),
      durableObjects: { KILN_SCHEDULER: { className: "KilnScheduler", useSQLite: true } },
      durableObjectsPersist: join(dir, "do"),
      bindings,
      // the Worker's own log (a line per tick) would go to stdout, which is the report's: it goes to stderr when tracing, else nowhere
      handleRuntimeStdio(stdout: Readable, stderr: Readable) {
        for (const stream of [stdout, stderr]) stream.on("data", (chunk: Buffer) => void (process.env.KILN_BENCH_TRACE && process.stderr.write(chunk)));
      },
    });
    const url = (await mf.ready).toString().replace(/\/$/, "");
    const pid = workerdPid();
    // the benchmark's own reads go to the database directly (D1 through Miniflare, sqld without the proxy)
    const client: SqlClient = database === "d1" ? d1Client((await mf.getD1Database("DB")) as unknown as D1Database) : createClient({ url: sqld!.url });
    await Store.open(client);
    const key = (await createApiKey(client, { name: "bench", role: "admin" }, Date.now())).key;
    const listed = await fetch(`${url}/api/pipelines/p/pipeline_schedules`, { headers: { authorization: `Bearer ${key}` } });
    if (listed.status !== 200) throw new Error(`listing the triggers answered ${listed.status}: ${await listed.text()}`);
    const trigger = ((await listed.json()) as { pipeline_schedules: Array<{ id: number; token: string; schedule_type: string }> }).pipeline_schedules.find((s) => s.schedule_type === "api");
    if (!trigger) throw new Error("the benchmark project's API trigger was not synced");
    const target = `${url}/api/pipeline_schedules/${trigger.id}/pipeline_runs/${trigger.token}`;

    const idleStart = processCpuNs(pid);
    const idleAt = performance.now();
    await sleep(2000);
    const idleCpuMsPerSecond = (processCpuNs(pid) - idleStart) / 1e6 / ((performance.now() - idleAt) / 1000);

    // the setup's own requests (the trigger listing) are no samples
    notices.clear();
    const latencies: number[] = [];
    const seqs = { api: [] as number[], tick: [] as number[], cron: [] as number[], idleTick: [] as number[] };
    const processMs = { run: [] as number[], idle: [] as number[] };
    const post = async (variables: Record<string, unknown>): Promise<number> => {
      const response = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ pipeline_run: { variables } }) });
      if (response.status !== 201) throw new Error(`the API trigger answered ${response.status}: ${await response.text()}`);
      return ((await response.json()) as { pipeline_run: { id: number } }).pipeline_run.id;
    };
    for (let i = 0; i < warmup + samples; i++) {
      const cpu0 = processCpuNs(pid);
      const t0 = Date.now();
      const runId = await post({ i });
      const tickSeq = await notices.next("alarm");
      const cpu1 = processCpuNs(pid);
      const apiSeq = await notices.next("fetch");
      const rows = await client.execute({ sql: "SELECT r.status AS status, b.started_at AS started_at FROM pipeline_runs r JOIN block_runs b ON b.pipeline_run_id = r.id WHERE r.id = ? AND b.block_uuid = 'b0'", args: [runId] });
      const row = rows.rows[0];
      if (String(row?.status) !== "completed") throw new Error(`run ${runId} is ${String(row?.status ?? "missing")} after its tick ended`);
      if (i < warmup) continue;
      latencies.push(Number(row!.started_at) - t0);
      seqs.api.push(apiSeq);
      seqs.tick.push(tickSeq);
      processMs.run.push((cpu1 - cpu0) / 1e6);
    }

    const worker = (await mf.getWorker()) as unknown as { scheduled(options: { cron: string; scheduledTime: Date }): Promise<unknown> };
    const idleTick = async (): Promise<void> => {
      await worker.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
      seqs.cron.push(await notices.next("scheduled"));
      seqs.idleTick.push(await notices.next("alarm"));
    };
    for (let i = 0; i < idle; i++) {
      const cpu0 = processCpuNs(pid);
      await idleTick();
      processMs.idle.push((processCpuNs(pid) - cpu0) / 1e6);
    }

    const answer = (await (await fetch(`${url}/__bench/invocations`)).json()) as { records: InvocationRecord[]; outside: number };
    if (answer.outside > 0) throw new Error(`${answer.outside} subrequest(s) were made outside any invocation: the counts cannot be attributed`);
    const bySeq = new Map(answer.records.map((r) => [r.seq, r]));
    if (process.env.KILN_BENCH_TRACE) for (const r of answer.records.slice(-8)) console.error(JSON.stringify(r, null, 1));
    const pick = (list: number[]) => list.map((s) => bySeq.get(s)).filter((r): r is InvocationRecord => r !== undefined);
    // the wakes: the object's fetches, each sent by an API request's waitUntil or a cron firing
    const wakes = answer.records.filter((r) => r.kind === "object-fetch" && r.path === "/wake");
    const proxyCheck = proxy ? { proxy: proxy.count(), counted: answer.records.reduce((n, r) => n + (r.fetches[new URL(proxy!.url).host] ?? 0), 0) } : null;
    if (proxyCheck && proxyCheck.proxy !== proxyCheck.counted) {
      throw new Error(`the proxy in front of sqld forwarded ${proxyCheck.proxy} requests, the Worker counted ${proxyCheck.counted} fetches: the count is not honest`);
    }
    return {
      database: database === "d1" ? "D1 (Miniflare)" : "sqld",
      samples,
      triggerToStart: spread(latencies),
      apiRequest: cost(pick(seqs.api)),
      wake: cost(wakes),
      tick: cost(pick(seqs.tick)),
      idleCron: cost(pick(seqs.cron)),
      idleTick: cost(pick(seqs.idleTick)),
      runCpu: { processMs: spread(processMs.run) },
      idleCpu: { processMs: spread(processMs.idle) },
      idleCpuMsPerSecond,
      proxyCheck,
    };
  } finally {
    await mf?.dispose().catch(() => undefined);
    proxy?.stop();
    notices.stop();
    await sqld?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (n: number) => (Number.isNaN(n) ? "–" : n < 10 ? n.toFixed(2) : n.toFixed(1));

/** The figures as markdown, beside Cloudflare's Free and Paid limits. */
export function workerTables(figures: WorkerFigures[]): string {
  const free = CLOUDFLARE_LIMITS.free;
  const paid = CLOUDFLARE_LIMITS.paid;
  const lines = [
    `(w) kiln on workerd (Miniflare ${"4"}, wrangler-bundled Worker), a ${BLOCKS}-block chain of no-op blocks in the Worker, triggered through its API trigger one run at a time`,
    "",
    "| database | API trigger → first block started p50 / p99 ms | samples |",
    "|---|---|---|",
    ...figures.map((f) => `| ${f.database} | ${f.triggerToStart.p50} / ${f.triggerToStart.p99} (max ${f.triggerToStart.max}) | ${f.samples} |`),
    "",
    `Subrequests per invocation, p50 / p99 (max), beside Cloudflare's limits per invocation (Free ${free.subrequests}, D1 ${free.d1Queries} queries; Paid ${paid.subrequests.toLocaleString("en-US")}, D1 ${paid.d1Queries.toLocaleString("en-US")} queries):`,
    "",
    "| database | invocation | subrequests | D1 statements | Free | Paid |",
    "|---|---|---|---|---|---|",
  ];
  for (const f of figures) {
    const rows: Array<[string, InvocationCost]> = [
      ["API trigger request (fetch)", f.apiRequest],
      ["wake of the scheduler object (its fetch)", f.wake],
      [`tick running one ${BLOCKS}-block run (alarm)`, f.tick],
      ["cron firing (scheduled)", f.idleCron],
      ["tick with nothing to run (alarm)", f.idleTick],
    ];
    for (const [name, c] of rows) {
      const within = (limit: number) => (c.subrequests.max <= limit ? "within" : "over");
      lines.push(
        `| ${f.database} | ${name} | ${c.subrequests.p50} / ${c.subrequests.p99} (${c.subrequests.max}) | ${f.database === "sqld" ? "–" : `${c.d1Statements.p50} / ${c.d1Statements.p99}`} | ${within(free.subrequests)} | ${within(paid.subrequests)} |`,
      );
    }
  }
  lines.push(
    "",
    `CPU ms, p50 / p99 (max), beside Cloudflare's CPU limit per invocation (Free ${free.cpuMs} ms; Paid ${paid.cpuMs / 1000} s by default, up to ${paid.cpuMsMax / 60_000} min with limits.cpu_ms). A span holds several invocations, so each figure bounds each of them:`,
    "",
    "| database | span | workerd process CPU | Free | Paid |",
    "|---|---|---|---|---|",
  );
  for (const f of figures) {
    for (const [name, c] of [
      [`API trigger request + wake + the tick running its ${BLOCKS}-block run`, f.runCpu],
      ["cron firing + wake + a tick with nothing to run", f.idleCpu],
    ] as Array<[string, SpanCpu]>) {
      // an upper bound over several invocations: "over" means it may not fit, not that it does not
      const within = (limit: number) => (c.processMs.p99 <= limit ? "within" : "bound over the limit");
      lines.push(`| ${f.database} | ${name} | ${ms(c.processMs.p50)} / ${ms(c.processMs.p99)} (${ms(c.processMs.max)}) | ${within(free.cpuMs)} | ${within(paid.cpuMs)} |`);
    }
  }
  lines.push(
    "",
    "Subrequests are counted inside the Worker per invocation (fetches, D1 queries: one per statement or batch, calls to the Durable Object)" +
      figures
        .filter((f) => f.proxyCheck)
        .map((f) => `; with sqld, a proxy in front of it forwarded ${f.proxyCheck!.proxy} requests, the number of fetches the Worker counted`)
        .join("") +
      ". workerd reports no invocation's CPU time, so CPU is that of workerd's whole process (user + system, every thread) over the span: kiln's JavaScript plus workerd's HTTP, Miniflare's own workers and, with D1, its SQLite engine, which on Cloudflare is not the Worker's CPU. " +
      "(V8's profiler on the Worker's isolate was tried instead: under workerd it counts waiting for I/O as busy, more than the whole process's CPU, so it is not used.) " +
      `workerd idle: ${figures.map((f) => `${ms(f.idleCpuMsPerSecond)} ms CPU/s (${f.database})`).join(", ")}.`,
    "",
  );
  return lines.join("\n");
}
