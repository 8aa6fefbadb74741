/**
 * A real `kiln start` process killed with SIGKILL while a block runs in its own process, and a
 * second one started: it takes the run over (the block process outlived the first scheduler),
 * drives it to an end, and nothing is left running, doubled or lost. The same with the block run
 * handed to a warm process (started before the block run was claimed), reused or not.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_MAIN, isAlive, queryDb, REPO_ROOT, TempDirs, waitFor } from "../helpers/cli.ts";

const temp = new TempDirs();
/** Every process this file started (schedulers) or that they started (block processes): pid -> is a group leader. */
const started = new Map<number, ChildProcess | null>();

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    // both the schedulers (spawned detached here) and the block processes (detached by the local
    // executor) lead their own process group
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

afterAll(() => {
  for (const pid of started.keys()) if (isAlive(pid)) killGroup(pid, "SIGKILL");
  temp.removeAll();
});

interface Scheduler {
  pid: number;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startScheduler(root: string): Scheduler {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "KILN_DATABASE_URL" && k !== "ENV" && k !== "REDIS_URL") env[k] = v;
  const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--tick-interval", "200", "--orphan-after", "2", "--grace-period", "20"], {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (!child.pid) throw new Error("kiln start did not spawn");
  started.set(child.pid, child);
  let text = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (text += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (text += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { pid: child.pid, child, output: () => text, exited };
}

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

describe("kill -9 of a scheduler process mid-run, then a restart", () => {
  test(
    "the second scheduler takes the run over and every run ends; no run or block run is doubled",
    async () => {
      const root = temp.project({
        "kiln.yaml": "executor_type: local\n",
        // retries allowed, so a re-run would show as attempt 2: the test asserts there is none
        "pipelines/p/metadata.yaml": "retry_config:\n  retries: 2\n  delay: 0\nblocks:\n  - uuid: work\n    type: custom\n",
        "custom/work.js": "export default async function work(ctx) {\n  await new Promise((r) => setTimeout(r, 3000));\n  return { partition: ctx.executionPartition, attempt: ctx.attempt };\n}\n",
        "pipelines/p/triggers.yaml": `triggers:\n  - name: every_minute\n    schedule_type: time\n    schedule_interval: "* * * * *"\n    status: active\n    settings:\n      create_initial_pipeline_run: true\n`,
      });
      const db = join(root, ".kiln/kiln.db");
      const rows = (sql: string, args: Array<string | number | null> = []) => queryDb(db, sql, args).catch(() => [] as Record<string, unknown>[]);
      const logs: string[] = [];
      const first = startScheduler(root);
      let second: Scheduler | null = null;
      try {
        // the first scheduler starts the initial run, and its block process is running (its handle stored)
        let handle: { pid: number } | null = null;
        let runId = 0;
        await waitFor(
          async () => {
            const [br] = await rows("SELECT * FROM block_runs WHERE status = 'running' AND executor_handle IS NOT NULL ORDER BY id LIMIT 1");
            if (br) {
              handle = JSON.parse(String(br.executor_handle)) as { pid: number };
              runId = Number(br.pipeline_run_id);
            }
            return handle !== null;
          },
          "a block run to be running in the database",
          45_000,
        );
        const blockPid = handle!.pid;
        started.set(blockPid, null);
        const [run] = await rows("SELECT * FROM pipeline_runs WHERE id = ?", [runId]);
        expect(String(run!.status)).toBe("running");
        const firstOwner = String(run!.owner);

        // SIGKILL the scheduler alone: the block, in its own process group, outlives it
        process.kill(first.pid, "SIGKILL");
        expect((await first.exited).signal).toBe("SIGKILL");
        logs.push(`--- first scheduler (pid ${first.pid}):\n${first.output()}`);
        expect(isAlive(blockPid)).toBe(true);

        second = startScheduler(root);
        // every run ends; the trigger keeps making one a minute, so stop between minute marks
        await waitFor(
          async () => {
            const all = await rows("SELECT status FROM pipeline_runs");
            const second = new Date().getUTCSeconds();
            return all.length > 0 && all.every((r) => TERMINAL.has(String(r.status))) && second >= 2 && second <= 50;
          },
          "every pipeline run to be completed or failed",
          90_000,
          100,
        );
        process.kill(second.pid, "SIGTERM");
        const stop = await second.exited;
        logs.push(`--- second scheduler (pid ${second.pid}):\n${second.output()}`);
        expect(stop.code).toBe(0);

        const runs = await rows("SELECT * FROM pipeline_runs ORDER BY id");
        const blocks = await rows("SELECT * FROM block_runs ORDER BY id");
        for (const b of blocks) {
          const h = b.executor_handle === null ? null : (JSON.parse(String(b.executor_handle)) as { pid?: number });
          if (h?.pid) started.set(h.pid, null);
        }
        const nonTerminal = runs.filter((r) => !TERMINAL.has(String(r.status)));
        expect(nonTerminal).toEqual([]);
        expect(blocks.filter((b) => !TERMINAL.has(String(b.status)) && b.status !== "upstream_failed")).toEqual([]);
        // each (schedule, execution_date) once; each (run, block) once
        const dates = runs.map((r) => `${r.pipeline_schedule_id}@${r.execution_date}`);
        expect(new Set(dates).size).toBe(dates.length);
        const pairs = blocks.map((b) => `${b.pipeline_run_id}/${b.block_uuid}`);
        expect(new Set(pairs).size).toBe(pairs.length);
        expect(new Set(blocks.map((b) => Number(b.pipeline_run_id)))).toEqual(new Set(runs.map((r) => Number(r.id))));

        // the run that was interrupted: taken over by the second scheduler and completed
        const taken = runs.find((r) => Number(r.id) === runId)!;
        expect(taken.owner).not.toBe(firstOwner);
        expect(String(taken.status)).toBe("completed");
        const takenBlock = blocks.find((b) => Number(b.pipeline_run_id) === runId)!;
        expect(String(takenBlock.status)).toBe("completed");
        // re-attached, not re-run: the block process that outlived the first scheduler recorded its
        // outcome, and the second scheduler read it through the block run's stored handle
        expect(Number(takenBlock.attempt)).toBe(1);
        // the orphaned block process ended on its own; nothing this test started is left behind
        await waitFor(() => !isAlive(blockPid), "the orphaned block process to end", 20_000);
        expect(runs.every((r) => String(r.status) === "completed")).toBe(true);
        // a clean stop removes the second scheduler's heartbeat
        const schedulers = await rows("SELECT id FROM schedulers");
        expect(schedulers.map((s) => String(s.id))).toEqual([firstOwner]);
      } catch (error) {
        if (second) logs.push(`--- second scheduler (pid ${second.pid}):\n${second.output()}`);
        else logs.push(`--- first scheduler (pid ${first.pid}):\n${first.output()}`);
        console.error(logs.join("\n"));
        throw error;
      } finally {
        for (const s of [first, second]) if (s && isAlive(s.pid)) killGroup(s.pid, "SIGKILL");
      }
    },
    180_000,
  );
});

/** When a process started, in ms since the epoch (Linux: its start in clock ticks against the uptime, 10 ms steps). */
function processStartedAt(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const startTicks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const uptimeMs = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
  return Date.now() - (uptimeMs - startTicks * 10);
}

describe("kill -9 of a scheduler while a block runs in a warm process, then a restart", () => {
  for (const [name, config] of [["a warm process", "      warm: true\n"], ["a reused warm process (reuse: 3)", "      reuse: 3\n"]] as const) {
    test(
      `${name}: the block process started before its block run outlives the scheduler, and the second scheduler re-attaches to it`,
      async () => {
        const root = temp.project({
          "kiln.yaml": "executor_type: local\n",
          // first's claim starts the spares; work is handed one of them
          "pipelines/p/metadata.yaml": `retry_config:\n  retries: 2\n  delay: 0\nblocks:\n  - uuid: first\n    type: custom\n  - uuid: work\n    type: custom\n    upstream_blocks: [first]\n    executor_config:\n${config}`,
          "custom/first.js": "export default async function first(ctx) {\n  await new Promise((r) => setTimeout(r, 1500));\n  return 1;\n}\n",
          "custom/work.js": "export default async function work(x, ctx) {\n  await new Promise((r) => setTimeout(r, 4000));\n  return { attempt: ctx.attempt, argv: process.argv };\n}\n",
          "pipelines/p/triggers.yaml": `triggers:\n  - name: every_minute\n    schedule_type: time\n    schedule_interval: "* * * * *"\n    status: active\n    settings:\n      create_initial_pipeline_run: true\n`,
        });
        const db = join(root, ".kiln/kiln.db");
        const rows = (sql: string, args: Array<string | number | null> = []) => queryDb(db, sql, args).catch(() => [] as Record<string, unknown>[]);
        const first = startScheduler(root);
        let second: Scheduler | null = null;
        const logs: string[] = [];
        try {
          let handle: { pid: number } | null = null;
          let runId = 0;
          await waitFor(
            async () => {
              const [br] = await rows("SELECT * FROM block_runs WHERE block_uuid = 'work' AND status = 'running' AND executor_handle IS NOT NULL LIMIT 1");
              if (br) {
                handle = JSON.parse(String(br.executor_handle)) as { pid: number };
                runId = Number(br.pipeline_run_id);
              }
              return handle !== null;
            },
            "the work block run to be running in the database",
            60_000,
          );
          const blockPid = handle!.pid;
          started.set(blockPid, null);
          const [firstRun] = await rows("SELECT completed_at FROM block_runs WHERE pipeline_run_id = ? AND block_uuid = 'first'", [runId]);
          // a warm worker, started before first completed (so before work was claimed)
          expect(readFileSync(`/proc/${blockPid}/cmdline`, "utf8").split("\0")).toContain("--warm");
          expect(processStartedAt(blockPid)).toBeLessThan(Number(firstRun!.completed_at));

          process.kill(first.pid, "SIGKILL");
          expect((await first.exited).signal).toBe("SIGKILL");
          logs.push(`--- first scheduler (pid ${first.pid}):\n${first.output()}`);
          expect(isAlive(blockPid)).toBe(true);

          second = startScheduler(root);
          await waitFor(
            async () => {
              const [run] = await rows("SELECT status FROM pipeline_runs WHERE id = ?", [runId]);
              return run !== undefined && TERMINAL.has(String(run.status));
            },
            "the interrupted run to end",
            90_000,
            100,
          );
          const [run] = await rows("SELECT * FROM pipeline_runs WHERE id = ?", [runId]);
          const blocks = await rows("SELECT * FROM block_runs WHERE pipeline_run_id = ? ORDER BY id", [runId]);
          expect(String(run!.status)).toBe("completed");
          const work = blocks.find((b) => b.block_uuid === "work")!;
          expect(String(work.status)).toBe("completed");
          // re-attached, not re-run
          expect(Number(work.attempt)).toBe(1);
          // and its output, which the block process recorded after the scheduler that handed it the run was gone, stored by the second
          const output = JSON.parse(readFileSync(join(root, ".variables/pipelines/p", String(run!.execution_partition), "work/output_0"), "utf8")) as { attempt: number; argv: string[] };
          expect(output.attempt).toBe(1);
          expect(output.argv).toContain("--warm");
          // the worker ends once its block run has (its stdin closed with the first scheduler)
          await waitFor(() => !isAlive(blockPid), "the orphaned warm process to end", 20_000);
        } catch (error) {
          if (second) logs.push(`--- second scheduler (pid ${second.pid}):\n${second.output()}`);
          else logs.push(`--- first scheduler (pid ${first.pid}):\n${first.output()}`);
          console.error(logs.join("\n"));
          throw error;
        } finally {
          for (const s of [first, second]) if (s && isAlive(s.pid)) killGroup(s.pid, "SIGKILL");
        }
      },
      180_000,
    );
  }
});
