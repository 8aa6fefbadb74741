/**
 * `bun bench/cold-start.ts [--runs N]`: how long a fresh process takes, as the wall time of the
 * whole child from spawn to exit: a bare `bun -e 0`, `kiln --version`, and `kiln run-block` of
 * one recorded block run of a `kiln init` project (what executors start for every block).
 * Prints a markdown table (median and p90 of N runs each, default 20).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";

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

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const root = mkdtempSync(join(tmpdir(), "kiln-cold-start-"));
try {
  const project = join(root, "proj");
  const env = { ...process.env, KILN_DATABASE_URL: `file:${join(root, "kiln.db")}` };
  for (const args of [["init", project], ["run", project, "example"]]) {
    const result = spawnSync(process.execPath, [MAIN, ...args], { env, encoding: "utf8" });
    if (result.status !== 0) throw new Error(`kiln ${args.join(" ")}: ${result.stderr}`);
  }
  // run 1's first block run is load_numbers (block run 1): run again, it reads and writes as any block run does
  const cases: Array<[string, string[]]> = [
    ["`bun -e 0` (bare runtime)", ["-e", "0"]],
    ["`kiln --version`", [MAIN, "--version"]],
    ["`kiln run-block` (one data_loader of a `kiln init` project)", [MAIN, "run-block", project, "example", "load_numbers", "--pipeline-run-id", "1", "--block-run-id", "1"]],
  ];
  const rows: string[] = [];
  for (const [name, args] of cases) {
    timeOf(args, env); // warm the file cache: the figures are a cold process, not a cold disk
    const times = Array.from({ length: RUNS }, () => timeOf(args, env)).sort((a, b) => a - b);
    rows.push(`| ${name} | ${quantile(times, 0.5).toFixed(0)} ms | ${quantile(times, 0.9).toFixed(0)} ms |`);
  }
  process.stdout.write(
    `Cold start, ${RUNS} runs each, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Bun ${process.versions.bun}\n\n` +
      `| Process | median | p90 |\n| --- | ---: | ---: |\n${rows.join("\n")}\n`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
