/**
 * A pipeline added to the project while `kiln start` runs is listed and runnable at once (after
 * the next reload), in process and as a child process, without a restart.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_MAIN, createAdminKey, REPO_ROOT, TempDirs, waitFor } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const dirs = new TempDirs();
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  }
  dirs.removeAll();
});

function startKiln(root: string, port: number): () => string {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !["KILN_DATABASE_URL", "REDIS_URL", "KILN_SECRET_KEY", "KILN_AUTH"].includes(k)) env[k] = v;
  env.PORT = String(port);
  env.HOST = "127.0.0.1";
  const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--instance-type", "server_and_scheduler", "--tick-interval", "200", "--reload-interval", "0.5", "--grace-period", "5"], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let text = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (text += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (text += c));
  return () => text;
}

async function addedPipelineRuns(inProcess: boolean): Promise<void> {
  const root = dirs.project({
    "kiln.yaml": inProcess ? "executor_config:\n  in_process: true\n" : "{}\n",
    "pipelines/first/metadata.yaml": "blocks:\n  - uuid: one\n    type: custom\n",
    "custom/one.js": "export default () => 1;\n",
  });
  // the first admin key, made as README says (kiln keeps none on disk)
  const key = await createAdminKey(root, { KILN_DATABASE_URL: undefined });
  const port = await freePort();
  const output = startKiln(root, port);
  const base = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  await waitFor(async () => (await fetch(`${base}/api/pipelines`, { headers: auth }).catch(() => null))?.ok === true, "the server", 30_000);

  // added while the server runs
  mkdirSync(join(root, "pipelines/slow"), { recursive: true });
  writeFileSync(join(root, "custom/later.js"), "export default () => ({ late: true });\n");
  writeFileSync(join(root, "pipelines/slow/metadata.yaml"), "blocks:\n  - uuid: later\n    type: custom\n");
  await waitFor(async () => (await fetch(`${base}/api/pipelines/slow`, { headers: auth })).ok, "the added pipeline to be listed", 20_000);

  const trigger = await fetch(`${base}/api/pipelines/slow/pipeline_schedules`, { method: "POST", headers: auth, body: JSON.stringify({ pipeline_schedule: { name: "now", schedule_type: "api", status: "active" } }) });
  expect(trigger.status).toBe(201);
  const id = ((await trigger.json()) as { pipeline_schedule: { id: number } }).pipeline_schedule.id;
  const created = await fetch(`${base}/api/pipeline_schedules/${id}/pipeline_runs`, { method: "POST", headers: auth, body: "{}" });
  expect(created.status).toBe(201);
  const runId = ((await created.json()) as { pipeline_run: { id: number } }).pipeline_run.id;
  let run: { status?: string; block_runs?: Array<{ error: string | null }> } = {};
  await waitFor(async () => {
    run = ((await (await fetch(`${base}/api/pipeline_runs/${runId}`, { headers: auth })).json()) as { pipeline_run: typeof run }).pipeline_run;
    return run.status === "completed" || run.status === "failed";
  }, "the added pipeline's run to end", 30_000);
  expect({ status: run.status, errors: run.block_runs?.map((b) => b.error) }).toEqual({ status: "completed", errors: [null] });
  expect(output()).not.toContain("has no pipeline slow");
}

describe("a pipeline added while kiln start runs", () => {
  test("runs in process at once", () => addedPipelineRuns(true), 90_000);
  test("runs as a child process at once", () => addedPipelineRuns(false), 90_000);
});
