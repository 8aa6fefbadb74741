/**
 * The local executor with real child processes: timeouts and cancels kill the whole process
 * tree, crashes become readable block-run errors, logs capture a block's output, in_process
 * runs in kiln's own process, and retries start a fresh process.
 *
 * Runs go either through the real `kiln run` command (a child of this test) or through a
 * RunEngine in this test process, wired as `kiln run` wires it (loadUserProject + openProject).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type PipelineRun } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { loadUserProject, openProject, type OpenProject } from "../../cli/src/project.ts";
import {
  blockRuns,
  isAlive,
  killQuietly,
  logFile,
  pipelineRuns,
  printedPartition,
  readOutput,
  runKiln,
  TempDirs,
  waitFor,
  waitGone,
} from "../helpers/cli.ts";

const temp = new TempDirs();
/** Every pid a block reported, killed at the end in case a failing test left one behind. */
const seenPids: number[] = [];

afterAll(() => {
  killQuietly(seenPids);
  temp.removeAll();
});

/** A block module that writes `{self, child}` (its pid and a `sleep 300` it started) to `<project>/<name>.pids`. */
function spawningBlock(name: string, body: string): string {
  return `import { spawn } from "node:child_process";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
export default async function block(ctx) {
  const child = spawn("sleep", ["300"], { stdio: "ignore" });
  // written then renamed, so the test never reads a half-written file
  const file = join(import.meta.dirname, "..", "${name}.pids");
  writeFileSync(file + ".tmp", JSON.stringify({ self: process.pid, child: child.pid }));
  renameSync(file + ".tmp", file);
  ${body}
}
`;
}

function readPids(root: string, name: string): { self: number; child: number } {
  const pids = JSON.parse(readFileSync(join(root, `${name}.pids`), "utf8")) as { self: number; child: number };
  seenPids.push(pids.self, pids.child);
  return pids;
}

function singleBlockPipeline(block: string, extra = ""): string {
  return `blocks:\n  - uuid: ${block}\n    type: custom\n${extra}`;
}

/** A RunEngine in this process over the project's database at `dbPath`, wired like `kiln run`. */
async function openEngine(root: string, dbPath: string): Promise<{ open: OpenProject; engine: RunEngine; newRun(pipelineUuid: string): Promise<PipelineRun> }> {
  const project = await loadUserProject(root);
  // openProject reads KILN_DATABASE_URL synchronously, before its first await
  const saved = process.env.KILN_DATABASE_URL;
  process.env.KILN_DATABASE_URL = `file:${dbPath}`;
  let opening: Promise<OpenProject>;
  try {
    opening = openProject(project);
  } finally {
    if (saved === undefined) delete process.env.KILN_DATABASE_URL;
    else process.env.KILN_DATABASE_URL = saved;
  }
  const open = await opening;
  const engine = new RunEngine({ store: open.store, project, executors: open.executors, outputs: open.runtime.outputs });
  return {
    open,
    engine,
    async newRun(pipelineUuid) {
      const run = await open.store.createPipelineRun({ pipelineUuid, executionDate: Date.now(), variables: {} });
      if (!run) throw new Error("no run created");
      return run;
    },
  };
}

describe("timeouts kill the block's process tree", () => {
  let root: string;
  let db: string;

  beforeAll(() => {
    root = temp.project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/busy/metadata.yaml": singleBlockPipeline("busy", "    timeout: 2\n"),
      "custom/busy.js": spawningBlock("busy", "for (;;) {}"),
      "pipelines/idle/metadata.yaml": singleBlockPipeline("idle", "    timeout: 2\n"),
      // the interval keeps the event loop alive, so this block hangs rather than ends, and
      // `kiln run-block` handles SIGTERM (it only aborts ctx.signal), so only SIGKILL ends it
      "custom/idle.js": spawningBlock("idle", "setInterval(() => {}, 1000); await new Promise(() => {});"),
    });
    db = join(root, "kiln.db");
  });

  for (const pipeline of ["busy", "idle"]) {
    test(`a ${pipeline === "busy" ? "busy-looping" : "never-returning"} block with timeout: 2 fails as timed out, and its process and grandchild end`, async () => {
      const result = await runKiln(["run", root, pipeline], { KILN_DATABASE_URL: `file:${db}` });
      expect(result.code).toBe(1);
      const runs = (await pipelineRuns(db)).filter((r) => r.execution_partition === printedPartition(result.stdout));
      expect(runs).toHaveLength(1);
      expect(runs[0]!.status).toBe("failed");
      const rows = await blockRuns(db, runs[0]!.id);
      expect(rows.map((r) => [r.block_uuid, r.status])).toEqual([[pipeline, "failed"]]);
      expect(rows[0]!.error).toContain("timed out");

      const pids = readPids(root, pipeline);
      // `kiln run` has exited: nothing may be left of the block
      await waitGone([pids.self, pids.child]);
      expect(isAlive(pids.self)).toBe(false);
      expect(isAlive(pids.child)).toBe(false);
    });
  }

  test("an in_process block with timeout: 2 fails as timed out and kiln run exits", async () => {
    const project = temp.project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/p/metadata.yaml": singleBlockPipeline("stuck", "    timeout: 2\n    executor_config:\n      in_process: true\n"),
      "custom/stuck.js": "export default async function stuck(ctx) { await new Promise(() => {}); }\n",
    });
    const projectDb = join(project, "kiln.db");
    const result = await runKiln(["run", project, "p"], { KILN_DATABASE_URL: `file:${projectDb}` });
    expect(result.code).toBe(1);
    const rows = await blockRuns(projectDb);
    expect(rows.map((r) => r.status)).toEqual(["failed"]);
    expect(rows[0]!.error).toContain("timed out");
    expect((await pipelineRuns(projectDb)).map((r) => r.status)).toEqual(["failed"]);
  });
});

describe("cancel", () => {
  test("cancelling a running run through the engine ends it cancelled and kills the block's process tree", async () => {
    const root = temp.project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: slow\n    type: custom\n  - uuid: next\n    type: custom\n    upstream_blocks: [slow]\n",
      "custom/slow.js": spawningBlock("slow", "await new Promise((r) => setTimeout(r, 300_000));"),
      "custom/next.js": "export default function next(x, ctx) { return x; }\n",
    });
    const db = join(root, "kiln.db");
    const { open, engine, newRun } = await openEngine(root, db);
    try {
      const run = await newRun("p");
      const finished = engine.execute(run.id);
      await waitFor(() => existsSync(join(root, "slow.pids")), "the block to write its pid file");
      const pids = readPids(root, "slow");
      expect(isAlive(pids.self)).toBe(true);
      expect(engine.cancel(run.id)).toBe(true);
      const final = await finished;
      expect(final.status).toBe("cancelled");

      expect((await pipelineRuns(db)).map((r) => r.status)).toEqual(["cancelled"]);
      const rows = await blockRuns(db, run.id);
      expect(Object.fromEntries(rows.map((r) => [r.block_uuid, r.status]))).toEqual({ slow: "cancelled", next: "cancelled" });
      await waitGone([pids.self, pids.child]);
    } finally {
      open.close();
    }
  });
});

describe("crashing block processes", () => {
  let root: string;
  let db: string;

  beforeAll(() => {
    root = temp.project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/exit3/metadata.yaml": singleBlockPipeline("exit3"),
      "custom/exit3.js": "export default function exit3(ctx) { console.error('leaving now'); process.exit(3); }\n",
      "pipelines/sigkill/metadata.yaml": singleBlockPipeline("sigkill"),
      "custom/sigkill.js": "export default function sigkill(ctx) { process.kill(process.pid, 'SIGKILL'); }\n",
      "pipelines/boom/metadata.yaml": singleBlockPipeline("boom"),
      "custom/boom.js": `export default function boom(ctx) {
  console.log("hello from the boom block");
  throw new Error("boom 42");
}
`,
      "pipelines/pending/metadata.yaml": "blocks:\n  - uuid: pending\n    type: custom\n  - uuid: after\n    type: custom\n    upstream_blocks: [pending]\n",
      // nothing keeps the block process's event loop alive, so it would simply exit 0
      "custom/pending.js": "export default async function pending(ctx) { await new Promise(() => {}); }\n",
      "custom/after.js": "export default function after(x, ctx) { return x; }\n",
    });
    db = join(root, "kiln.db");
  });

  async function runPipeline(pipeline: string) {
    const result = await runKiln(["run", root, pipeline], { KILN_DATABASE_URL: `file:${db}` });
    const partition = printedPartition(result.stdout);
    const run = (await pipelineRuns(db)).find((r) => r.execution_partition === partition);
    if (!run) throw new Error(`no run with partition ${partition}`);
    return { result, partition, run, rows: await blockRuns(db, run.id) };
  }

  test("process.exit(3): the block run fails with 'exited with code 3'", async () => {
    const { result, run, rows } = await runPipeline("exit3");
    expect(result.code).toBe(1);
    expect(run.status).toBe("failed");
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe("failed");
    expect(rows[0]!.error).toContain("exited with code 3");
    expect(rows[0]!.error).toContain("leaving now");
  });

  test("SIGKILL: the block run fails naming the signal", async () => {
    const { result, run, rows } = await runPipeline("sigkill");
    expect(result.code).toBe(1);
    expect(run.status).toBe("failed");
    expect(rows[0]!.status).toBe("failed");
    expect(rows[0]!.error).toContain("SIGKILL");
  });

  test("a thrown error becomes the block run's error; its stack and the block's stdout are in the block's log", async () => {
    const { result, run, rows, partition } = await runPipeline("boom");
    expect(result.code).toBe(1);
    expect(run.status).toBe("failed");
    expect(rows[0]!.status).toBe("failed");
    expect(rows[0]!.error).toBe("boom 42");
    const log = readFileSync(logFile(root, "boom", partition, "boom"), "utf8");
    expect(log).toContain("hello from the boom block");
    expect(log).toMatch(/STDOUT hello from the boom block/);
    expect(log).toContain("Error: boom 42");
    // a stack frame in the block's module
    expect(log).toMatch(/at .*boom\.js/);
  });

  test("a block whose promise never settles fails; it is not recorded completed without an output", async () => {
    const { result, run, rows } = await runPipeline("pending");
    expect(result.code).toBe(1);
    expect(run.status).toBe("failed");
    const byUuid = Object.fromEntries(rows.map((r) => [r.block_uuid, r]));
    expect(byUuid.pending!.status).toBe("failed");
    expect(byUuid.pending!.error).toContain("never settled");
    expect(byUuid.after!.status).toBe("upstream_failed");
  });
});

describe("in_process", () => {
  test("in_process: true runs the block in kiln's process; the default runs it in another", async () => {
    const root = temp.project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/p/metadata.yaml": `blocks:
  - uuid: inside
    type: custom
    executor_config:
      in_process: true
  - uuid: outside
    type: custom
`,
      "custom/inside.js": "export default function inside(ctx) { return process.pid; }\n",
      "custom/outside.js": "export default function outside(ctx) { return process.pid; }\n",
    });
    const { open, engine, newRun } = await openEngine(root, join(root, "kiln.db"));
    try {
      const run = await newRun("p");
      const final = await engine.execute(run.id);
      expect(final.status).toBe("completed");
      const inside = await open.runtime.outputs.read("p", run.executionPartition, "inside");
      const outside = await open.runtime.outputs.read("p", run.executionPartition, "outside");
      expect(inside).toBe(process.pid);
      expect(typeof outside).toBe("number");
      expect(outside).not.toBe(process.pid);
    } finally {
      open.close();
    }
  });
});

describe("retries", () => {
  test("a block failing on attempt 1 is retried in a new process and completes on attempt 2", async () => {
    const root = temp.project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/p/metadata.yaml": `blocks:
  - uuid: flaky
    type: custom
    retry_config:
      retries: 1
      delay: 0
`,
      "custom/flaky.js": `export default function flaky(ctx) {
  if (ctx.attempt === 1) throw new Error("first attempt fails");
  return { attempt: ctx.attempt, pid: process.pid };
}
`,
    });
    const db = join(root, "kiln.db");
    const result = await runKiln(["run", root, "p"], { KILN_DATABASE_URL: `file:${db}` });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("flaky running (attempt 2)");
    const rows = await blockRuns(db);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ block_uuid: "flaky", status: "completed", attempt: 2 });
    expect((await pipelineRuns(db)).map((r) => r.status)).toEqual(["completed"]);
    const output = readOutput(root, "p", printedPartition(result.stdout), "flaky") as { attempt: number };
    expect(output.attempt).toBe(2);
  });
});
