/**
 * (i) The event loop while a big backfill starts: `POST /api/backfills/:id/start` of a
 * 100,000-date backfill over loopback HTTP, while GET /api/health is sent one request after
 * another from the start's request until its answer. Prints the health p50/p99/max during the
 * start next to the 50 ms limit, and the start's own duration; checks that all 100,000 runs exist.
 *
 * `bun bench/backfill-start.ts` (about 10 s). The server runs without a scheduler, so what is
 * measured is the start alone, not the runs it creates.
 */
import { createApiKey } from "@kiln/core/auth";
import { createBackfill } from "@kiln/core/backfill";
import { createApp } from "@kiln/server";
import { cpus, platform, release } from "node:os";
import { openBenchProject, removeTempFolders, writeProject } from "./project.ts";
import { percentile } from "./scheduler.ts";

export interface BackfillStartLoop {
  dates: number;
  startMs: number;
  healthSamples: number;
  p50: number;
  p99: number;
  max: number;
  limitMs: number;
}

/** Starts one backfill of `dates` minutes while timing /api/health. */
export async function backfillStartLoop(dates = 100_000): Promise<BackfillStartLoop> {
  const root = writeProject("backfill-start", { inProcess: true, pipelines: [{ uuid: "p", blocks: 1 }] });
  const p = await openBenchProject(root);
  const app = createApp(
    { store: p.store, project: () => p.project, clock: p.store.clock, version: "bench", authEnabled: true, secretKey: null, bodyLimitBytes: 1024 * 1024 },
    { log: () => {} },
  );
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  const url = `http://127.0.0.1:${server.port}`;
  try {
    const { key } = await createApiKey(p.store.client, { name: "bench", role: "admin" }, Date.now());
    const start = Date.UTC(2020, 0, 1);
    const backfill = await createBackfill(p.store, p.project, {
      name: "big",
      pipelineUuid: "p",
      startDatetime: start,
      endDatetime: start + (dates - 1) * 60_000,
      intervalType: "minute",
    });
    // warm the health route and the connection
    for (let i = 0; i < 50; i++) await (await fetch(`${url}/api/health`)).text();

    let done = false;
    const latencies: number[] = [];
    const health = (async () => {
      while (!done) {
        const t0 = performance.now();
        await (await fetch(`${url}/api/health`)).text();
        latencies.push(performance.now() - t0);
      }
    })();
    const t0 = performance.now();
    const answer = await fetch(`${url}/api/backfills/${backfill.id}/start`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: "{}" });
    const startMs = performance.now() - t0;
    done = true;
    await health;
    if (answer.status !== 200) throw new Error(`start answered ${answer.status}: ${await answer.text()}`);
    const runs = Number((await p.store.client.execute({ sql: "SELECT count(*) AS n FROM pipeline_runs WHERE backfill_id = ?", args: [backfill.id] })).rows[0]?.n);
    if (runs !== dates) throw new Error(`the start created ${runs} runs, expected ${dates}`);
    return { dates, startMs, healthSamples: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies), limitMs: 50 };
  } finally {
    server.stop(true);
    p.close();
  }
}

if (import.meta.main) {
  try {
    const cpu = cpus();
    const r = await backfillStartLoop();
    const ms = (n: number) => `${n.toFixed(1)} ms`;
    console.log(`Machine: ${cpu[0]?.model ?? "unknown CPU"}, ${cpu.length} CPUs, ${platform()} ${release()}; Bun ${Bun.version}; ${new Date().toISOString()}`);
    console.log("");
    console.log("| (i) backfill start | dates | start took | /api/health during it: samples | p50 | p99 | max | limit (p99) |");
    console.log("|---|---|---|---|---|---|---|---|");
    console.log(`| POST /api/backfills/:id/start | ${r.dates.toLocaleString("en-US")} | ${ms(r.startMs)} | ${r.healthSamples} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${ms(r.limitMs)} (${r.p99 <= r.limitMs ? "met" : "NOT met"}) |`);
  } finally {
    removeTempFolders();
  }
}
