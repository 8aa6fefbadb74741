/**
 * `bun bench/cold-start.ts [--runs N]`: how long a fresh process takes, as the wall time of the
 * whole child from spawn to exit: a bare `bun -e 0`, `kiln --version`, and `kiln run-block` of
 * one recorded block run of a `kiln init` project (what executors start for every block). Then
 * the path to a block's first line: from process start in a `kiln run-block` started for the run
 * (the block prints Bun's performance.now(), which counts from process start), and from the
 * block run being handed on stdin to a warm worker (`kiln run-block --warm`, booted beforehand)
 * to that line and to its exit, the local executor's default.
 * Prints a markdown table (median and p90 of N runs each, default 20).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildBlockJob } from "@kiln/core/engine";
import { blockCallSpec } from "@kiln/core";
import { thinWorkerArgs, warmWorkerArgs, type WarmBlockRun } from "@kiln/executor-local";
import { loadUserProject, openProject } from "../cli/src/project.ts";
import { thinBlockProcessCommand, thinBundleSettled } from "../cli/src/thin-bundle.ts";

const MAIN = resolve(import.meta.dirname, "../cli/src/main.ts");
const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns >= 0 ? Number(process.argv[argRuns + 1]) : 20;

function timeOf(args: string[], env: Record<string, string | undefined> = process.env): number {
  const startedAt = performance.now();
  const result = spawnSync(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  const elapsed = performance.now() - startedAt;
  if (result.status !== 0) throw new Error(`bun ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return elapsed;
}

/** The ms since process start the block printed as its first stdout line (`first-line <ms>`). */
function firstLineOf(args: string[], env: Record<string, string | undefined>): number {
  const result = spawnSync(process.execPath, args, { env, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`bun ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  const match = /first-line (\d+(?:\.\d+)?)/.exec(result.stdout);
  if (!match) throw new Error(`no first-line in the block's output: ${result.stdout}`);
  return Number(match[1]);
}

/** A warm worker, booted (given `bootMs`), handed `run`: ms from the hand-over to the block's first line, and to the exit. */
async function warmTimes(project: string, run: WarmBlockRun, env: Record<string, string | undefined>, bootMs: number, command = [process.execPath, MAIN, ...warmWorkerArgs(project)]): Promise<[number, number]> {
  const child = spawn(command[0]!, command.slice(1), { cwd: project, env, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  await new Promise((r) => setTimeout(r, bootMs));
  const handedAt = performance.now();
  let firstLine = -1;
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (firstLine < 0 && stdout.includes("first-line")) firstLine = performance.now() - handedAt;
  });
  child.stdin.end(`${JSON.stringify(run)}\n`);
  const code = await new Promise<number | null>((r) => child.once("close", r));
  const exited = performance.now() - handedAt;
  if (code !== 0 || firstLine < 0) throw new Error(`the warm worker exited ${code} (first line ${firstLine}): ${stderr}`);
  return [firstLine, exited];
}

/** CPU ms a live process has used so far, all its threads (Linux: /proc/<pid>/task/<tid>/schedstat, ns on CPU). */
function cpuMsOf(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
  return ns / 1e6;
}

/**
 * A process that waits on stdin after printing `marker` (a thin warm process, or a bare Bun
 * script doing only that): ms from spawn to the marker, and the CPU ms it used to get there. It
 * is then ended (its stdin closed).
 */
async function bootTime(command: string[], marker: string, cwd: string, env: Record<string, string | undefined>): Promise<[number, number]> {
  const startedAt = performance.now();
  const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
  const ready = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      if (out.includes(marker)) resolve(performance.now() - startedAt);
    });
    child.once("close", (code) => reject(new Error(`${command.join(" ")} exited ${code} before it was ready`)));
  });
  const cpu = cpuMsOf(child.pid!);
  child.stdin.end();
  await new Promise((r) => child.once("close", r));
  return [ready, cpu];
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const row = (name: string, values: number[], digits = 0) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `| ${name} | ${quantile(sorted, 0.5).toFixed(digits)} ms | ${quantile(sorted, 0.9).toFixed(digits)} ms |`;
};

const root = mkdtempSync(join(tmpdir(), "kiln-cold-start-"));
try {
  const project = join(root, "proj");
  const databaseUrl = `file:${join(root, "kiln.db")}`;
  const env = { ...process.env, KILN_DATABASE_URL: databaseUrl };
  spawnSync(process.execPath, [MAIN, "init", project], { env });
  // a block whose first line says how long after process start it ran
  mkdirSync(join(project, "pipelines/first_line"), { recursive: true });
  writeFileSync(join(project, "pipelines/first_line/metadata.yaml"), "blocks:\n  - uuid: print_first_line\n    type: custom\n");
  mkdirSync(join(project, "custom"), { recursive: true });
  writeFileSync(join(project, "custom/print_first_line.ts"), 'export default () => { console.log(`first-line ${performance.now()}`); return null; };\n');
  for (const args of [["run", project, "example"], ["run", project, "first_line"]]) {
    const result = spawnSync(process.execPath, [MAIN, ...args], { env, encoding: "utf8" });
    if (result.status !== 0) throw new Error(`kiln ${args.join(" ")}: ${result.stderr}`);
  }
  // run 1's first block run is load_numbers (block run 1), run 2's is print_first_line (block run 4): run again, they read and write as any block run does
  const cases: Array<[string, string[]]> = [
    ["`bun -e 0` (bare runtime)", ["-e", "0"]],
    ["`kiln --version`", [MAIN, "--version"]],
    ["`kiln run-block` (one data_loader of a `kiln init` project), spawn to exit", [MAIN, "run-block", project, "example", "load_numbers", "--pipeline-run-id", "1", "--block-run-id", "1"]],
  ];
  const rows: string[] = [];
  for (const [name, args] of cases) {
    timeOf(args, env); // warm the file cache: the figures are a cold process, not a cold disk
    rows.push(row(name, Array.from({ length: RUNS }, () => timeOf(args, env))));
  }
  const firstLineArgs = [MAIN, "run-block", project, "first_line", "print_first_line", "--pipeline-run-id", "2", "--block-run-id", "4"];
  firstLineOf(firstLineArgs, env);
  rows.push(row("`kiln run-block`: process start → the block's first line", Array.from({ length: RUNS }, () => firstLineOf(firstLineArgs, env))));

  // the same block run as the engine hands it to a warm worker
  process.env.KILN_DATABASE_URL = databaseUrl;
  const open = await openProject(await loadUserProject(project), { executors: false });
  delete process.env.KILN_DATABASE_URL;
  let run: WarmBlockRun;
  try {
    const pipelineRun = (await open.store.getPipelineRun(2))!;
    const pipeline = open.project.pipelines.get("first_line")!;
    const job = buildBlockJob({ project: open.project, pipeline, run: pipelineRun, blockRunUuid: "print_first_line", blockRunId: 4, attempt: 1, variables: {}, partitionOf: () => pipelineRun.executionPartition });
    run = { job, resultFile: join(root, "result.json"), handoff: { KILN_DATABASE_URL: databaseUrl } };
  } finally {
    open.close();
  }
  const workerEnv = { ...process.env };
  delete workerEnv.KILN_DATABASE_URL;
  const warm: Array<[number, number]> = [];
  await warmTimes(project, run, workerEnv, 2000);
  for (let i = 0; i < RUNS; i++) warm.push(await warmTimes(project, run, workerEnv, 1500));
  rows.push(row("warm worker (`kiln run-block --warm`, booted): block run handed on stdin → the block's first line", warm.map(([first]) => first)));
  rows.push(row("warm worker: block run handed on stdin → exit", warm.map(([, exit]) => exit)));

  // the local executor's default for a TypeScript block: a thin process, handed the block's call
  const pipeline = (await loadUserProject(project, { checkRemote: false, executors: false })).pipelines.get("first_line")!;
  const block = pipeline.blocksByUuid.get("print_first_line")!;
  const thinRun: WarmBlockRun = { job: run.job, resultFile: run.resultFile, call: { modulePath: block.modulePath, spec: blockCallSpec(block), inputs: [], variables: {} } };
  // how far a spare is from a bare runtime: spawn to ready, and the CPU that costs (what a
  // spare started for every block run takes from the block runs on a busy machine)
  const bare = join(root, "bare-ready.js");
  writeFileSync(bare, 'console.log("bare:ready"); await Bun.stdin.stream().getReader().read();\n');
  if (!(await thinBundleSettled())) throw new Error("the thin block process could not be bundled (see the warning above)");
  const bundled = thinBlockProcessCommand(project)!;
  const bootCases: Array<[string, string[], string]> = [
    ["bare Bun, printing a line and waiting on stdin", [process.execPath, bare], "bare:ready"],
    ["thin warm process from kiln's sources (`kiln run-block --warm --thin`; Node, Deno, KILN_THIN_BUNDLE=0)", [process.execPath, MAIN, ...thinWorkerArgs(project)], "kiln:ready"],
    ["thin warm process from kiln's bundle (the default on Bun)", bundled, "kiln:ready"],
  ];
  for (const [name, command, marker] of bootCases) {
    await bootTime(command, marker, project, workerEnv);
    const boots: Array<[number, number]> = [];
    for (let i = 0; i < RUNS; i++) boots.push(await bootTime(command, marker, project, workerEnv));
    rows.push(row(`${name}: spawn → booted (its ready line)`, boots.map(([ms]) => ms)));
    rows.push(row(`${name}: CPU used to boot`, boots.map(([, cpu]) => cpu), 1));
  }
  const thin: Array<[number, number]> = [];
  await warmTimes(project, thinRun, workerEnv, 1000, bundled);
  for (let i = 0; i < RUNS; i++) thin.push(await warmTimes(project, thinRun, workerEnv, 700, bundled));
  rows.push(row("thin warm process from the bundle, booted: block run handed on stdin → the block's first line", thin.map(([first]) => first)));
  rows.push(row("thin warm process from the bundle: block run handed on stdin → exit", thin.map(([, exit]) => exit)));
  const load = loadavg().map((n) => n.toFixed(2)).join(" ");
  process.stdout.write(
    `Cold start, ${RUNS} runs each, ${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Bun ${process.versions.bun}, load average at the end ${load}\n\n` +
      `| Process | median | p90 |\n| --- | ---: | ---: |\n${rows.join("\n")}\n`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
process.exit(0);
