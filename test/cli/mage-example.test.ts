/**
 * examples/mage_project, a Mage-layout project (root metadata.yaml, Python blocks with a
 * TypeScript block between two of them, a callback, a conditional, the seeds' trigger_pipeline
 * exporter, a time and an API trigger), runs to completion under `kiln run` and `kiln start`.
 * It runs in place (its TypeScript block imports @kiln/core from the repository); the database
 * is a temporary file.
 */
import { afterAll, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CLI_MAIN, queryDb, REPO_ROOT, runKiln, TempDirs, waitFor } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const EXAMPLE = join(REPO_ROOT, "examples/mage_project");
const dirs = new TempDirs();
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  dirs.removeAll();
});

test("kiln run: every block completes, the exporter creates the downstream_pipeline run", async () => {
  const db = join(dirs.make("kiln-mage-example-"), "kiln.db");
  // Mage's data folder (MAGE_DATA_DIR): outputs land in it, under the project's name, as Mage lays them out
  const dataDir = dirs.make("kiln-mage-data-");
  const result = await runKiln(["run", EXAMPLE, "orders_etl"], { KILN_DATABASE_URL: `file:${db}`, MAGE_DATA_DIR: dataDir });
  expect(result.stderr).not.toContain("warning");
  expect(result.code).toBe(0);
  const blocks = await queryDb(db, "SELECT block_uuid, status FROM block_runs ORDER BY id");
  expect(blocks).toEqual([
    { block_uuid: "load_orders", status: "completed" },
    { block_uuid: "enrich/add_totals", status: "completed" },
    { block_uuid: "summarize", status: "completed" },
    { block_uuid: "trigger_downstream_pipeline", status: "completed" },
  ]);
  const [{ execution_partition: partition }] = (await queryDb(db, "SELECT execution_partition FROM pipeline_runs WHERE pipeline_uuid = 'orders_etl'")) as [{ execution_partition: string }];
  expect(existsSync(join(dataDir, "mage_project/pipelines/orders_etl/.variables", partition, "enrich/add_totals/output_0"))).toBe(true);
  // trigger_pipeline created the downstream run (a scheduler starts it: kiln start)
  const downstream = await queryDb(db, "SELECT status, variables FROM pipeline_runs WHERE pipeline_uuid = 'downstream_pipeline'");
  expect(downstream).toHaveLength(1);
  expect(String(downstream[0]!.variables)).toContain("upstream_date");
}, 120_000);

test("kiln start: the API trigger's run completes, and so does the downstream run its exporter starts", async () => {
  const db = join(dirs.make("kiln-mage-example-"), "kiln.db");
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !["REDIS_URL", "KILN_AUTH"].includes(k)) env[k] = v;
  Object.assign(env, { PORT: String(port), HOST: "127.0.0.1", KILN_DATABASE_URL: `file:${db}`, MAGE_DATA_DIR: dirs.make("kiln-mage-data-") });
  const child = spawn(process.execPath, [CLI_MAIN, "start", EXAMPLE, "--instance-type", "server_and_scheduler", "--no-auth", "--tick-interval", "200", "--grace-period", "5"], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (output += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (output += c));
  const base = `http://127.0.0.1:${port}`;
  let scheduleId = 0;
  await waitFor(async () => {
    const answer = await fetch(`${base}/api/pipelines/orders_etl/pipeline_schedules`).catch(() => null);
    if (!answer?.ok) return false;
    const schedules = ((await answer.json()) as { pipeline_schedules: Array<{ id: number; name: string }> }).pipeline_schedules;
    scheduleId = schedules.find((s) => s.name === "orders_api")?.id ?? 0;
    return scheduleId > 0;
  }, "the code triggers to be synced", 60_000);
  const created = await fetch(`${base}/api/pipeline_schedules/${scheduleId}/pipeline_runs/example-orders-token`, {
    method: "POST",
    body: JSON.stringify({ pipeline_run: { variables: {} } }),
  });
  expect(created.status).toBeLessThan(300);
  const runId = ((await created.json()) as { pipeline_run: { id: number } }).pipeline_run.id;
  await waitFor(async () => {
    const rows = await queryDb(db, "SELECT status FROM pipeline_runs WHERE id = ?", [runId]).catch(() => []);
    return rows[0]?.status === "completed";
  }, `run ${runId} to complete (output so far: ${output.slice(-2000)})`, 90_000);
  await waitFor(async () => {
    const rows = await queryDb(db, "SELECT status FROM pipeline_runs WHERE pipeline_uuid = 'downstream_pipeline'").catch(() => []);
    return rows.length > 0 && rows.every((r) => r.status === "completed");
  }, "the downstream run to complete", 90_000);
  child.kill("SIGTERM");
}, 240_000);
