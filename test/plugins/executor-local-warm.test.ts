/**
 * Warm block processes (the local executor's default): a block run handed to a process started
 * before it was claimed behaves exactly as in a process started for it (`warm: false`) when it
 * crashes, throws, hangs past its timeout or is cancelled: the same status, error and log, and
 * nothing of its process tree left. With `reuse`, one process runs several block runs in
 * sequence and none of them sees another's module state.
 *
 * Runs go through a RunEngine in this test process, wired as `kiln run` wires it, so the
 * executor (and its spares) lives across runs. Each case runs twice: with the thin block process
 * started from kiln's bundle (the default on Bun, cli/src/thin-bundle.ts) and from its sources
 * (KILN_THIN_BUNDLE=0, as on Node and Deno, or before the bundle is built), each in a project of its own.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type PipelineRun } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { loadUserProject, openProject, type OpenProject } from "../../cli/src/project.ts";
import { thinBundleSettled } from "../../cli/src/thin-bundle.ts";
import { blockRuns, isAlive, killQuietly, logFile, TempDirs, waitFor, waitGone } from "../helpers/cli.ts";

const temp = new TempDirs();
const seenPids: number[] = [];

/** The warm workers this process started and that wait or run now: `kiln run-block --warm` children. */
function warmWorkers(): Set<number> {
  const pids = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (ppid === process.pid && cmdline.includes("run-block") && cmdline.includes("--warm") && isAlive(Number(entry))) pids.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A block that writes `{self, child, argv}` (its pid, a `sleep 300` it started, its process's arguments) to `<project>/<name>.pids`, then does `body`. */
function spawningBlock(name: string, body: string): string {
  return `import { spawn } from "node:child_process";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
export default async function block(ctx) {
  const child = spawn("sleep", ["300"], { stdio: "ignore" });
  const file = join(import.meta.dirname, "..", ctx.pipelineUuid + ".pids");
  writeFileSync(file + ".tmp", JSON.stringify({ self: process.pid, child: child.pid, argv: process.argv }));
  renameSync(file + ".tmp", file);
  console.log("block ${name} started");
  ${body}
}
`;
}

/** How a scenario's block is run: a process started for it, a warm one, a warm one that may be reused. */
const MODES = {
  fresh: "      warm: false\n",
  warm: "      warm: true\n",
  reused: "      reuse: 3\n",
} as const;
type Mode = keyof typeof MODES;

/** The scenarios: each a block (in custom/<name>.js) and what is done to its run. */
const SCENARIOS = {
  crash: { code: spawningBlock("crash", "console.error('leaving now'); process.exit(3);"), extra: "", cancel: false },
  throws: { code: spawningBlock("throws", "throw new Error('boom 42');"), extra: "", cancel: false },
  // the interval keeps the event loop alive and SIGTERM only aborts ctx.signal: only SIGKILL ends it
  hangs: { code: spawningBlock("hangs", "setInterval(() => {}, 1000); await new Promise(() => {});"), extra: "    timeout: 2\n", cancel: false },
  cancelled: { code: spawningBlock("cancelled", "await new Promise((r) => setTimeout(r, 300_000));"), extra: "", cancel: true },
} as const;
type Scenario = keyof typeof SCENARIOS;

/** Where the thin block processes start from: kiln's bundle, or its sources. */
type Origin = "bundle" | "sources";

/** A thin process's arguments (process.argv, as its block saw them) say which: the bundle's entry, or main.ts. */
function startedFrom(argv: string[]): Origin | "other" {
  if (argv.some((arg) => arg.endsWith("/thin-entry.js"))) return "bundle";
  return argv.some((arg) => arg.endsWith("/main.ts")) ? "sources" : "other";
}

function suite(origin: Origin): void {
  let root: string;
  let open: OpenProject;
  let engine: RunEngine;
  
  async function newRun(pipelineUuid: string): Promise<PipelineRun> {
    const run = await open.store.createPipelineRun({ pipelineUuid, executionDate: Date.now(), variables: {} });
    if (!run) throw new Error("no run created");
    return run;
  }
  
  beforeAll(async () => {
    // the bundle is built before the first spare starts, so every spare of the bundle's suite is one
    expect(await thinBundleSettled()).toBe(true);
    const files: Record<string, string> = {
      "kiln.yaml": "executor_type: local\n",
      "pipelines/warmup/metadata.yaml": "blocks:\n  - uuid: warmup\n    type: custom\n",
      "custom/warmup.js": "export default function warmup(ctx) { return process.pid; }\n",
      // reuse: a block with module state, and a project module (imported by it) with state of its own
      "pipelines/counter/metadata.yaml": "blocks:\n  - uuid: counter\n    type: custom\n    executor_config:\n      reuse: 5\n",
      "utils/shared.js": "export const state = { imports: 0 };\nstate.imports++;\n",
      "custom/counter.js": `import { state } from "../utils/shared.js";
  let calls = 0;
  export default function counter(ctx) {
    calls++;
    globalThis.kilnTestRuns = (globalThis.kilnTestRuns ?? 0) + 1;
    return { calls, imports: state.imports, pid: process.pid, argv: process.argv };
  }
  `,
      // a block of @kiln/core's helpers: the @kiln/core it imports and the block process's own
      // are separate copies in the bundle, and an error of one must be an instance of the other's class
      "pipelines/uses_core/metadata.yaml": "blocks:\n  - uuid: uses_core\n    type: custom\n",
      "custom/uses_core.ts": `import { custom, TriggerPipelineError } from "@kiln/core";
  export default custom(async (ctx) => {
    try {
      await ctx.triggerPipeline("no_such_pipeline");
      return { thrown: false };
    } catch (error) {
      return { thrown: true, instance: error instanceof TriggerPipelineError, name: (error as Error).name, message: (error as Error).message, argv: process.argv };
    }
  });
  `,
      // stdout that ends without a newline, the first thing the process writes after its block run came in
      "custom/quiet.js": "export default function quiet(ctx) { process.stdout.write('no newline at the end'); return 1; }\n",
      "pipelines/quiet_fresh/metadata.yaml": "blocks:\n  - uuid: quiet\n    type: custom\n    executor_config:\n      warm: false\n",
      "pipelines/quiet_warm/metadata.yaml": "blocks:\n  - uuid: quiet\n    type: custom\n",
      // a block whose log folder goes while it runs: its last line, without a newline, cannot be written
      "custom/logless.js": `import { existsSync, rmSync } from "node:fs";
  import { join } from "node:path";
  export default async function logless(ctx) {
    console.log("first line");
    const log = join(import.meta.dirname, "..", ".logs", "pipelines", ctx.pipelineUuid, ctx.executionPartition, ctx.blockUuid + ".log");
    while (!existsSync(log)) await new Promise((r) => setTimeout(r, 5));
    rmSync(join(import.meta.dirname, "..", ".logs", "pipelines", ctx.pipelineUuid), { recursive: true, force: true });
    process.stdout.write("last words, no newline");
    return 7;
  }
  `,
      "pipelines/logless/metadata.yaml": "blocks:\n  - uuid: logless\n    type: custom\n",
    };
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      files[`custom/${name}.js`] = scenario.code;
      for (const [mode, config] of Object.entries(MODES)) {
        files[`pipelines/${name}_${mode}/metadata.yaml`] = `blocks:\n  - uuid: ${name}\n    type: custom\n${scenario.extra}    executor_config:\n${config}`;
      }
    }
    root = temp.project(files);
    const project = await loadUserProject(root);
    const saved = process.env.KILN_DATABASE_URL;
    process.env.KILN_DATABASE_URL = `file:${join(root, "kiln.db")}`;
    let opening: Promise<OpenProject>;
    try {
      opening = openProject(project, { thinBundle: origin === "bundle" });
    } finally {
      if (saved === undefined) delete process.env.KILN_DATABASE_URL;
      else process.env.KILN_DATABASE_URL = saved;
    }
    open = await opening;
    engine = new RunEngine({ store: open.store, project, executors: open.executors, outputs: open.runtime.outputs });
    // a first block run starts the spares
    const warm = await newRun("warmup");
    expect((await engine.execute(warm.id)).status).toBe("completed");
  });
  
  afterAll(() => {
    open?.close();
    killQuietly(seenPids);
    temp.removeAll();
  });
  
  /** The files in `.kiln/results` of a block run (`<id>-<attempt>.json`, its `.cancelled` mark). */
  function resultFilesOf(blockRunId: number): string[] {
    const folder = join(root, ".kiln", "results");
    return existsSync(folder) ? readdirSync(folder).filter((name) => name.startsWith(`${blockRunId}-`)) : [];
  }

  /** A block's log with the timestamps and the partition's date taken out, for comparing two runs. */
  function normalisedLog(pipelineUuid: string, partition: string, blockUuid: string): string {
    const path = logFile(root, pipelineUuid, partition, blockUuid);
    const text = existsSync(path) ? readFileSync(path, "utf8") : "";
    return text
      .split("\n")
      .map((line) => line.replace(/^\S+Z /, ""))
      // the frames below the block's are kiln's own, and name what called the block (executeBlock
      // and runJob in a fresh process, the thin block process's runCall in a warm one)
      .filter((line) => !/^STDERR\s+at .*\/(cli\/src\/commands|core\/src)\//.test(line))
      .join("\n");
  }
  
  interface Outcome {
    runStatus: string;
    blockStatus: string;
    error: string | null;
    log: string;
    ranInSpare: boolean;
  }
  
  /** Runs a scenario's pipeline in `mode`; checks its block's process and grandchild are gone after. */
  async function runScenario(scenario: Scenario, mode: Mode): Promise<Outcome> {
    const pipelineUuid = `${scenario}_${mode}`;
    rmSync(join(root, `${pipelineUuid}.pids`), { force: true });
    // a reused worker waiting between runs of another pipeline is no spare for this one
    const before = warmWorkers();
    const run = await newRun(pipelineUuid);
    const finished = engine.execute(run.id);
    await waitFor(() => existsSync(join(root, `${pipelineUuid}.pids`)), `${pipelineUuid}'s block to write its pid file`, 30_000);
    const pids = JSON.parse(readFileSync(join(root, `${pipelineUuid}.pids`), "utf8")) as { self: number; child: number; argv: string[] };
    seenPids.push(pids.self, pids.child);
    if (mode !== "fresh") expect(startedFrom(pids.argv)).toBe(origin);
    if (SCENARIOS[scenario].cancel) {
      const log = logFile(root, pipelineUuid, run.executionPartition, scenario);
      await waitFor(() => existsSync(log) && readFileSync(log, "utf8").includes("started"), "the block's first log line", 30_000);
      expect(engine.cancel(run.id)).toBe(true);
    }
    const final = await finished;
    const [row] = await blockRuns(join(root, "kiln.db"), run.id);
    // its end committed, the block run's result file (and a cancel's mark) goes, once its process is gone
    await waitFor(() => resultFilesOf(Number(row?.id)).length === 0, `${pipelineUuid}'s result file to be removed`, 30_000);
    // nothing of the block is left: what it started, and its process, unless a reused one waits for the next run
    await waitGone([pids.child]);
    if (mode === "reused" && isAlive(pids.self)) expect(warmWorkers().has(pids.self)).toBe(true);
    else await waitGone([pids.self]);
    return {
      runStatus: final.status,
      blockStatus: String(row?.status),
      error: row?.error ?? null,
      log: normalisedLog(pipelineUuid, run.executionPartition, scenario),
      ranInSpare: before.has(pids.self),
    };
  }
  
  describe(`a warm process (from kiln's ${origin}) behaves as a fresh one`, () => {
    for (const scenario of Object.keys(SCENARIOS) as Scenario[]) {
      test(`${scenario}: the same status, error and log, warm (and reused) as fresh; its process tree is gone`, async () => {
        const fresh = await runScenario(scenario, "fresh");
        const warm = await runScenario(scenario, "warm");
        const reused = await runScenario(scenario, "reused");
        expect(fresh.ranInSpare).toBe(false);
        // handed to a process that was waiting before the run was created
        expect(warm.ranInSpare).toBe(true);
        expect(reused.ranInSpare).toBe(true);
        for (const other of [warm, reused]) {
          expect(other.runStatus).toBe(fresh.runStatus);
          expect(other.blockStatus).toBe(fresh.blockStatus);
          expect(other.error).toBe(fresh.error);
          expect(other.log).toBe(fresh.log);
        }
        const expected: Record<Scenario, [string, RegExp | null]> = {
          crash: ["failed", /exited with code 3: .*leaving now/s],
          throws: ["failed", /^boom 42$/],
          hangs: ["failed", /timed out after 2 s/],
          cancelled: ["cancelled", null],
        };
        const [status, error] = expected[scenario];
        expect(fresh.blockStatus).toBe(status);
        if (error) expect(fresh.error ?? "").toMatch(error);
        expect(fresh.log).toContain(`block ${scenario} started`);
      }, 120_000);
    }
  });
  
  describe(`a warm process's own lines (from kiln's ${origin})`, () => {
    test("never reach the block run's log: the log of a block that writes no newline is as in a fresh process", async () => {
      const logs: string[] = [];
      for (const pipelineUuid of ["quiet_fresh", "quiet_warm"]) {
        const run = await newRun(pipelineUuid);
        expect((await engine.execute(run.id)).status).toBe("completed");
        logs.push(normalisedLog(pipelineUuid, run.executionPartition, "quiet"));
      }
      expect(logs[0]).toContain("no newline at the end");
      // and nothing of theirs is left in .kiln/results: not a file per block run, forever
      expect(existsSync(join(root, ".kiln", "results")) ? readdirSync(join(root, ".kiln", "results")).filter((name) => !name.endsWith(".tmp")) : []).toEqual([]);
      expect(logs[1]).toBe(logs[0]!);
      expect(logs[1]).not.toContain("kiln:");
    }, 60_000);
  });

  describe(`a block run whose log cannot be written (from kiln's ${origin})`, () => {
    test("completes with its output; the lost lines are no error of kiln's", async () => {
      const run = await newRun("logless");
      expect((await engine.execute(run.id)).status).toBe("completed");
      expect(await open.runtime.outputs.read("logless", run.executionPartition, "logless")).toBe(7);
      // the pipe's end, where the last line is written, comes after the run's end
      await new Promise((r) => setTimeout(r, 200));
    }, 60_000);
  });

  describe(`executor_config.reuse (from kiln's ${origin})`, () => {
    test("one process runs the block runs in sequence, and no run sees another's module state", async () => {
      const outputs: Array<{ calls: number; imports: number; pid: number; argv: string[] }> = [];
      for (let i = 0; i < 3; i++) {
        const run = await newRun("counter");
        expect((await engine.execute(run.id)).status).toBe("completed");
        outputs.push((await open.runtime.outputs.read("counter", run.executionPartition, "counter")) as (typeof outputs)[number]);
      }
      // isolated from kiln: another process, a warm worker
      for (const output of outputs) {
        expect(output.pid).not.toBe(process.pid);
        expect(output.argv).toContain("--warm");
        expect(startedFrom(output.argv)).toBe(origin);
        seenPids.push(output.pid);
      }
      // the same worker ran all three
      expect(new Set(outputs.map((o) => o.pid)).size).toBe(1);
      // and each saw its block module, and the project module it imports, fresh
      expect(outputs.map((o) => [o.calls, o.imports])).toEqual([
        [1, 1],
        [1, 1],
        [1, 1],
      ]);
    }, 120_000);
  });

  describe(`a block that imports @kiln/core (from kiln's ${origin})`, () => {
    test("gets kiln's helpers, and ctx.triggerPipeline's error is an instance of the TriggerPipelineError it imports", async () => {
      const run = await newRun("uses_core");
      expect((await engine.execute(run.id)).status).toBe("completed");
      const output = (await open.runtime.outputs.read("uses_core", run.executionPartition, "uses_core")) as { thrown: boolean; instance: boolean; name: string; message: string; argv: string[] };
      expect(startedFrom(output.argv)).toBe(origin);
      expect(output.thrown).toBe(true);
      expect(output.name).toBe("TriggerPipelineError");
      expect(output.message).toContain("no_such_pipeline");
      expect(output.instance).toBe(true);
    }, 60_000);
  });
}

suite("bundle");
suite("sources");
