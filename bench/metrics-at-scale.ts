/**
 * /metrics' figures at 1,000,000 runs: systemStats (which reads the run counters) against the
 * count(*) GROUP BY it replaced, on the same embedded libSQL file. Prints p50/p99 of each.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Store, systemStats } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";

const RUNS = Number(process.env.KILN_BENCH_RUNS ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), "kiln-metrics-"));
try {
  const client = await openDatabase(`file:${join(dir, "kiln.db")}`);
  await Store.open(client);
  const started = performance.now();
  // the counters' triggers run for every inserted row, as for the scheduler's inserts
  await client.execute({
    sql: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
          INSERT INTO pipeline_runs (pipeline_uuid, execution_date, execution_partition, status, variables, metrics, created_at, updated_at)
          SELECT 'p' || (i % 10), i * 1000, 'bench/' || i, CASE i % 4 WHEN 0 THEN 'completed' WHEN 1 THEN 'failed' WHEN 2 THEN 'cancelled' ELSE 'completed' END, '{}', '{}', i, i FROM n`,
    args: [RUNS],
  });
  const insertS = (performance.now() - started) / 1000;
  const time = async (fn: () => Promise<unknown>, samples = 50) => {
    for (let i = 0; i < 5; i++) await fn();
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      await fn();
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    return { p50: ms[Math.floor(samples / 2)]!, p99: ms[Math.min(samples - 1, Math.floor(samples * 0.99))]! };
  };
  const counters = await time(() => systemStats(client));
  const scan = await time(() => client.batch(["SELECT status, count(*) AS n FROM pipeline_runs GROUP BY status", "SELECT status, count(*) AS n FROM block_runs GROUP BY status"], "read"), 10);
  const stats = await systemStats(client);
  const total = Object.values(stats.pipelineRuns).reduce((a, b) => a + b, 0);
  if (total !== RUNS) throw new Error(`counters say ${total} runs, expected ${RUNS}`);
  console.log(`${RUNS.toLocaleString("en-US")} runs inserted in ${insertS.toFixed(1)} s (counters kept by triggers)`);
  console.log(`/metrics figures (systemStats, run counters): p50 ${counters.p50.toFixed(2)} ms, p99 ${counters.p99.toFixed(2)} ms`);
  console.log(`the count(*) GROUP BY it replaced:            p50 ${scan.p50.toFixed(1)} ms, p99 ${scan.p99.toFixed(1)} ms`);
  client.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
