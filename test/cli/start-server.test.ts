/**
 * `kiln start` as real processes serving the API: server_and_scheduler alone, and a web_server
 * beside a scheduler on the same database (the server creates the run, the scheduler runs it).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { CLI_MAIN, createAdminKey, REPO_ROOT, runKiln, TempDirs, waitFor } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";

const dirs = new TempDirs();
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  dirs.removeAll();
});

const PROJECT = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
  "custom/work.js": "export default (ctx) => ({ got: ctx.variables.x ?? null });\n",
  "pipelines/p/triggers.yaml": "triggers:\n  - name: hook\n    schedule_type: api\n    status: active\n",
};

function startKiln(root: string, instanceType: string, port: number): { output: () => string; exited: Promise<number | null>; child: ChildProcess } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !["KILN_DATABASE_URL", "REDIS_URL", "KILN_SECRET_KEY", "KILN_AUTH"].includes(k)) env[k] = v;
  env.PORT = String(port);
  env.HOST = "127.0.0.1";
  const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--instance-type", instanceType, "--tick-interval", "200", "--grace-period", "5"], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let text = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (text += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (text += c));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { output: () => text, exited, child };
}

async function triggerAndWait(base: string, key: string): Promise<Record<string, unknown>> {
  const auth = { authorization: `Bearer ${key}` };
  let schedule: { id: number; token: string | null } | undefined;
  await waitFor(async () => {
    const answer = await fetch(`${base}/api/pipelines/p/pipeline_schedules`, { headers: auth }).catch(() => null);
    if (!answer?.ok) return false;
    schedule = ((await answer.json()) as { pipeline_schedules: Array<{ id: number; token: string | null }> }).pipeline_schedules[0];
    return Boolean(schedule?.token);
  }, "the code trigger to be synced with a token", 45_000);
  const created = await fetch(`${base}/api/pipeline_schedules/${schedule!.id}/pipeline_runs/${schedule!.token}`, {
    method: "POST",
    body: JSON.stringify({ pipeline_run: { variables: { x: 7 } } }),
  });
  expect(created.status).toBe(201);
  const run = ((await created.json()) as { pipeline_run: { id: number } }).pipeline_run;
  let final: Record<string, unknown> = {};
  await waitFor(async () => {
    const answer = await fetch(`${base}/api/pipeline_schedules/${schedule!.id}/pipeline_runs`, { headers: auth });
    const runs = ((await answer.json()) as { pipeline_runs: Array<Record<string, unknown>> }).pipeline_runs;
    final = runs.find((r) => r.id === run.id) ?? {};
    return final.status === "completed";
  }, "the triggered run to complete", 45_000);
  return final;
}

describe("kiln start serving the API", () => {
  test("server_and_scheduler: with an admin key from kiln api-key create, an API-triggered run completes, SIGTERM exits 0", async () => {
    const root = dirs.project(PROJECT);
    const port = await freePort();
    const key = await createAdminKey(root, { KILN_DATABASE_URL: undefined });
    const kiln = startKiln(root, "server_and_scheduler", port);
    const run = await triggerAndWait(`http://127.0.0.1:${port}`, key);
    expect(run.variables).toEqual({ x: 7 });
    // the key was printed once by api-key create: never in the server's log, nor kept on disk
    expect(kiln.output()).not.toContain(key);
    expect(existsSync(join(root, ".kiln/admin-api-key"))).toBe(false);
    kiln.child.kill("SIGTERM");
    expect(await kiln.exited).toBe(0);
  }, 90_000);

  test("web_server beside a scheduler on the same database: the server creates the run, the scheduler runs it", async () => {
    const root = dirs.project(PROJECT);
    const port = await freePort();
    const key = await createAdminKey(root, { KILN_DATABASE_URL: undefined });
    const web = startKiln(root, "web_server", port);
    const scheduler = startKiln(root, "scheduler", await freePort());
    const run = await triggerAndWait(`http://127.0.0.1:${port}`, key);
    expect(run.status).toBe("completed");
    for (const p of [web, scheduler]) p.child.kill("SIGTERM");
    expect(await web.exited).toBe(0);
    expect(await scheduler.exited).toBe(0);
  }, 90_000);

  test("bad flags and an unreadable secret setup exit 2 naming the problem", async () => {
    const root = dirs.project(PROJECT);
    const bad = await runKiln(["start", root, "--instance-type", "web_server", "--port", "99999"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--port");
    const badKey = await runKiln(["start", root, "--instance-type", "web_server", "--port", String(await freePort())], { KILN_SECRET_KEY: "not-a-key" });
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain("KILN_SECRET_KEY");
  });

  test("with secrets stored and no KILN_SECRET_KEY, the server refuses to start (exit 2)", async () => {
    const root = dirs.project(PROJECT);
    const client = await openDatabase(`file:${join(root, ".kiln/kiln.db")}`);
    const store = await Store.open(client);
    await store.putSecret(await importSecretKey(generateSecretKey()), "warehouse_password", "hunter2");
    client.close();
    const refused = await runKiln(["start", root, "--instance-type", "server_and_scheduler", "--port", String(await freePort())]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("KILN_SECRET_KEY is not set");
    expect(refused.stderr).not.toContain("hunter2");
  });
});
