/**
 * A real `kiln start` process frozen (SIGSTOP) past the orphan window while an in-process block
 * of its run waits, while a second `kiln start` takes the run over and completes it with a new
 * attempt; then the first wakes (SIGCONT). On waking it lets go: its block's ctx.signal is
 * aborted, and nothing it does afterwards is recorded (the block run, the run and the block's
 * output stay the new owner's).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { CLI_MAIN, isAlive, queryDb, readOutput, REPO_ROOT, TempDirs, waitFor } from "../helpers/cli.ts";

const temp = new TempDirs();
const started: ChildProcess[] = [];

afterAll(() => {
  for (const child of started) {
    if (child.pid && isAlive(child.pid)) {
      try {
        process.kill(child.pid, "SIGCONT");
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
  temp.removeAll();
});

interface Kiln {
  pid: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startKiln(root: string): Kiln {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "KILN_DATABASE_URL" && k !== "ENV" && k !== "REDIS_URL") env[k] = v;
  const child = spawn(process.execPath, [CLI_MAIN, "start", root, "--tick-interval", "200", "--orphan-after", "2", "--grace-period", "5"], {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (!child.pid) throw new Error("kiln start did not spawn");
  started.push(child);
  let text = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (text += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (text += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { pid: child.pid, output: () => text, exited };
}

/** The block: marks its start and its signal's abort in files named by attempt, waits for its gate file, returns. */
function freezeBlock(root: string): string {
  const at = (name: string) => JSON.stringify(join(root, name));
  return `import { existsSync, writeFileSync } from "node:fs";
export default async function work(ctx) {
  const mark = (name) => writeFileSync(${at("marks")} + "/" + name + "-" + ctx.attempt, String(process.pid));
  mark("started");
  ctx.signal.addEventListener("abort", () => mark("aborted"));
  while (!existsSync(${at("marks")} + "/gate-" + ctx.attempt)) await new Promise((r) => setTimeout(r, 20));
  mark("returned");
  return { attempt: ctx.attempt, pid: process.pid };
}
`;
}

/** Whether a mark file exists with its content (a block writes it in two steps: create, then write). */
function written(path: string): boolean {
  try {
    return readFileSync(path, "utf8") !== "";
  } catch {
    return false;
  }
}

describe("a replica frozen past the orphan window", () => {
  test(
    "on waking it aborts its in-process block's ctx.signal and records nothing: the new owner's attempt stands",
    async () => {
      const root = temp.project({
        "kiln.yaml": "executor_config:\n  in_process: true\n",
        // the frozen attempt cannot be re-attached (it is in-process): it counts as failed, and the new owner retries it
        "pipelines/p/metadata.yaml": "retry_config:\n  retries: 1\n  delay: 0\nblocks:\n  - uuid: work\n    type: custom\n",
        "marks/.keep": "",
        "custom/work.js": "",
      });
      writeFileSync(join(root, "custom/work.js"), freezeBlock(root));
      const mark = (name: string) => join(root, "marks", name);
      const db = join(root, ".kiln/kiln.db");
      const rows = (sql: string, args: Array<string | number | null> = []) => queryDb(db, sql, args).catch(() => [] as Record<string, unknown>[]);

      const frozen = startKiln(root);
      let other: Kiln | null = null;
      let stopped = false;
      try {
        await waitFor(async () => (await rows("SELECT id FROM schedulers")).length === 1, "the first scheduler to heartbeat", 45_000);
        const [first] = await rows("SELECT id FROM schedulers");
        const frozenId = String(first!.id);
        const client = await openDatabase(`file:${db}`);
        const store = await Store.open(client);
        const run = (await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
        client.close();
        await waitFor(() => written(mark("started-1")), "the first attempt to start in the first scheduler", 30_000);
        expect(Number(readFileSync(mark("started-1"), "utf8"))).toBe(frozen.pid);
        expect(String((await rows("SELECT owner FROM pipeline_runs WHERE id = ?", [run.id]))[0]!.owner)).toBe(frozenId);

        other = startKiln(root);
        await waitFor(async () => (await rows("SELECT id FROM schedulers")).length === 2, "the second scheduler to heartbeat", 45_000);
        const otherId = String((await rows("SELECT id FROM schedulers WHERE id != ?", [frozenId]))[0]!.id);

        // freeze the first past the orphan window: the second takes the run over and retries the lost attempt
        process.kill(frozen.pid, "SIGSTOP");
        stopped = true;
        await waitFor(async () => String((await rows("SELECT owner FROM pipeline_runs WHERE id = ?", [run.id]))[0]?.owner) === otherId, "the second scheduler to take the run over", 30_000);
        await waitFor(() => written(mark("started-2")), "the retry to start in the second scheduler", 30_000);
        expect(Number(readFileSync(mark("started-2"), "utf8"))).toBe(other.pid);
        writeFileSync(mark("gate-2"), "");
        await waitFor(async () => String((await rows("SELECT status FROM pipeline_runs WHERE id = ?", [run.id]))[0]?.status) === "completed", "the run to complete", 30_000);
        const recorded = await rows("SELECT status, attempt, error, updated_at FROM block_runs WHERE pipeline_run_id = ?", [run.id]);
        expect(recorded.map((r) => [r.status, Number(r.attempt)])).toEqual([["completed", 2]]);
        expect(readOutput(root, "p", run.executionPartition, "work")).toEqual({ attempt: 2, pid: other.pid });
        expect(existsSync(mark("aborted-1"))).toBe(false);

        // wake it: before it writes anything it finds its heartbeat lapsed, lets go, and aborts its block
        process.kill(frozen.pid, "SIGCONT");
        stopped = false;
        await waitFor(() => written(mark("aborted-1")), "the woken scheduler to abort its block's ctx.signal", 30_000);
        expect(Number(readFileSync(mark("aborted-1"), "utf8"))).toBe(frozen.pid);
        // the zombie attempt now runs to its end: what it returns is stored nowhere
        writeFileSync(mark("gate-1"), "");
        await waitFor(() => existsSync(mark("returned-1")), "the woken attempt to return", 30_000);
        // the woken process goes on ticking and heartbeating, so its later writes would have shown by the time it has beaten again
        const beats = Number((await rows("SELECT beats FROM schedulers WHERE id = ?", [frozenId]))[0]!.beats);
        await waitFor(async () => Number((await rows("SELECT beats FROM schedulers WHERE id = ?", [frozenId]))[0]?.beats) >= beats + 3, "the woken scheduler to tick again", 30_000);

        const [final] = await rows("SELECT status, owner, metrics FROM pipeline_runs WHERE id = ?", [run.id]);
        expect([final!.status, final!.owner, JSON.parse(String(final!.metrics)).error]).toEqual(["completed", otherId, undefined]);
        expect(await rows("SELECT status, attempt, error, updated_at FROM block_runs WHERE pipeline_run_id = ?", [run.id])).toEqual(recorded);
        expect(readOutput(root, "p", run.executionPartition, "work")).toEqual({ attempt: 2, pid: other.pid });
        // the woken process said why it let go, and reported no error about it
        expect(frozen.output()).toContain("wrote no heartbeat for");
        expect(frozen.output()).not.toContain("ERROR");
      } finally {
        if (stopped) process.kill(frozen.pid, "SIGCONT");
        for (const k of [frozen, other]) if (k && isAlive(k.pid)) process.kill(k.pid, "SIGTERM");
        await Promise.all([frozen.exited, other?.exited].filter(Boolean));
      }
    },
    120_000,
  );
});
