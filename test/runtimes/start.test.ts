/**
 * `kiln start` on Deno and on Node, as a user starts it there (README, "Running on Deno and
 * Node"): the server answers, an API trigger creates a run, and the scheduler runs it to the end,
 * one block in kiln's process and one in a `kiln run-block` child started on the same runtime.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CLI_MAIN, REPO_ROOT, until, writeTempProject } from "../helpers/fixtures.ts";
import { freePort } from "../helpers/ports.ts";
import { tail } from "../worker/processes.ts";
import { createAdminKey } from "../helpers/cli.ts";

const PROJECT = {
  "kiln.yaml": "executor_type: local\n",
  "pipelines/etl/metadata.yaml": [
    "blocks:",
    "  - uuid: load",
    "    type: data_loader",
    "    executor_config: {in_process: true}",
    "  - uuid: shape",
    "    type: transformer",
    "    upstream_blocks: [load]",
    "",
  ].join("\n"),
  "pipelines/etl/triggers.yaml": "triggers:\n  - name: on_demand\n    schedule_type: api\n    status: active\n",
  "data_loaders/load.js": "export default function load(ctx) { return { rows: [1, 2, 3], date: ctx.variables.date ?? null }; }\n",
  "transformers/shape.js": "export default function shape(data) { return { count: data.rows.length, date: data.date, pid: process.pid }; }\n",
};

const COMMANDS: Record<"deno" | "node", string[]> = {
  deno: ["deno", "run", "-A", CLI_MAIN],
  node: ["node", "--import", "tsx", CLI_MAIN],
};

const hasDeno = spawnSync("deno", ["--version"]).status === 0;
const started: ChildProcess[] = [];
const roots: string[] = [];

afterAll(async () => {
  for (const child of started) {
    if (child.pid === undefined || child.exitCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      continue;
    }
    const late = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await exited;
    clearTimeout(late);
  }
  for (const root of roots) rmSync(root, { recursive: true, force: true });
}, 30_000);

describe("kiln start on other runtimes", () => {
  for (const runtime of ["node", "deno"] as const) {
    test.skipIf(runtime === "deno" && !hasDeno)(`on ${runtime}: serves the API and runs an API-triggered run to completion`, async () => {
      const root = writeTempProject(PROJECT, `kiln-${runtime}-start-`);
      roots.push(root);
      const port = await freePort();
      const logFile = join(root, "kiln.log");
      const out = openSync(logFile, "a");
      const [command, ...args] = COMMANDS[runtime];
      const child = spawn(command!, [...args, "start", root, "--instance-type", "server_and_scheduler", "--port", String(port), "--host", "127.0.0.1"], {
        cwd: REPO_ROOT,
        detached: true,
        stdio: ["ignore", out, out],
        env: { ...process.env, KILN_DATABASE_URL: `file:${join(root, ".kiln/kiln.db")}` },
      });
      started.push(child);
      const url = `http://127.0.0.1:${port}`;
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`kiln exited ${child.exitCode}:\n${tail(logFile)}`);
          return fetch(`${url}/api/health`).then((r) => r.ok, () => false);
        },
        `kiln start on ${runtime}`,
        45_000,
      );
      expect(readFileSync(logFile, "utf8")).toContain(`(version 0.1.0, ${runtime})`);
      const key = await createAdminKey(root, { KILN_DATABASE_URL: `file:${join(root, ".kiln/kiln.db")}` });
      const auth = { authorization: `Bearer ${key}` };

      let schedule: { id: number; token: string } | undefined;
      await until(
        async () => {
          const list = (await (await fetch(`${url}/api/pipelines/etl/pipeline_schedules`, { headers: auth })).json()) as { pipeline_schedules?: Array<{ id: number; token: string; name: string }> };
          schedule = list.pipeline_schedules?.find((s) => s.name === "on_demand" && s.token);
          return schedule !== undefined;
        },
        "the trigger synced from triggers.yaml",
        30_000,
      );
      const created = await fetch(`${url}/api/pipeline_schedules/${schedule!.id}/pipeline_runs/${schedule!.token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pipeline_run: { variables: { date: "2024-01-15" } } }),
      });
      expect(created.status).toBe(201);
      const runId = ((await created.json()) as { pipeline_run: { id: number } }).pipeline_run.id;

      let run: { status: string; execution_partition: string } = { status: "", execution_partition: "" };
      await until(
        async () => {
          run = ((await (await fetch(`${url}/api/pipeline_runs/${runId}`, { headers: auth })).json()) as { pipeline_run: typeof run }).pipeline_run;
          return run.status !== "initial" && run.status !== "running";
        },
        `run ${runId} to end on ${runtime}`,
        45_000,
      );
      expect(run.status).toBe("completed");
      // the process-per-block step ran in a child of kiln, on the same runtime, and read the in-process step's output
      const output = JSON.parse(readFileSync(join(root, ".variables/pipelines/etl", run.execution_partition, "shape/output_0"), "utf8")) as { count: number; date: string; pid: number };
      expect(output).toMatchObject({ count: 3, date: "2024-01-15" });
      expect(output.pid).not.toBe(child.pid);
    }, 120_000);
  }
});
