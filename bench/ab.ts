/**
 * Same-run A/B of two commits on bench (a), (b) in-process and (f):
 * `bun bench/ab.ts <A> <B> [--pairs N] [--only a,b,f] [--tmp DIR]` (--tmp: the children's TMPDIR,
 * e.g. /dev/shm to take a busy shared disk out of the comparison).
 *
 * Each commit is checked out as a detached git worktree under the OS temp folder (bun install
 * there), and a small driver written into its bench/ folder calls that commit's own
 * benchmarks.ts / server.ts, one workload per child process. The children alternate A, B, B, A,
 * A, B... so a machine that gets busier or quieter during the run weighs on both sides alike; each
 * child reports its wall figure and the CPU time (user + system) its measured part took, which
 * moves less than wall time when other work shares the cores. The worktrees are removed at the end
 * (nothing of the old code is committed). Prints a markdown table: medians per side and B ÷ A.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir, cpus } from "node:os";
import { join, resolve } from "node:path";

const DRIVER = `// written by bench/ab.ts; not part of the commit under test
import { withProject, removeTempFolders } from "./project.ts";
import { apiTriggerLatency } from "./server.ts";
delete process.env.KILN_DATABASE_URL;
const which = process.argv[2];
const cpuMs = (since) => { const c = process.cpuUsage(since); return (c.user + c.system) / 1000; };
let out;
try {
  if (which === "a") {
    // bench (a)'s workload: 1,000 runs x 3 blocks created, then executed at once; only the execution counted
    out = await withProject("ab-a", { inProcess: true, pipelines: [{ uuid: "chain3", blocks: 3 }] }, async (p) => {
      const create = async (n) => { const ids = []; for (let i = 0; i < n; i++) ids.push((await p.store.createPipelineRun({ pipelineUuid: "chain3", executionDate: Date.now() })).id); return ids; };
      await Promise.all((await create(20)).map((id) => p.engine.execute(id)));
      const ids = await create(1000);
      const client = p.store.client;
      const batch = client.batch;
      let statements = 0;
      client.batch = (stmts, mode) => { statements += stmts.length; return batch.call(client, stmts, mode); };
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      const finals = await Promise.all(ids.map((id) => p.engine.execute(id)));
      const wall = performance.now() - t0;
      const used = cpuMs(cpu);
      client.batch = batch;
      if (finals.some((r) => r.status !== "completed")) throw new Error("a run did not complete");
      return { figure: 3000 / (wall / 1000), cpuMs: used, statements };
    });
  } else if (which === "b") {
    // bench (b) in-process: a 40-block chain, 1 warm-up then the median of 5; CPU over the 5
    out = await withProject("ab-b", { inProcess: true, pipelines: [{ uuid: "chain", blocks: 40 }] }, async (p) => {
      const times = [];
      let used = 0;
      for (let i = 0; i < 6; i++) {
        const run = await p.store.createPipelineRun({ pipelineUuid: "chain", executionDate: Date.now() });
        const cpu = process.cpuUsage();
        const t0 = performance.now();
        const final = await p.engine.execute(run.id);
        if (i > 0) { times.push(performance.now() - t0); used += cpuMs(cpu); }
        if (final.status !== "completed") throw new Error("the chain did not complete");
      }
      times.sort((x, y) => x - y);
      return { figure: times[2], cpuMs: used / 5 };
    });
  } else if (which === "f") {
    const cpu = process.cpuUsage();
    const f = await apiTriggerLatency(300, 50);
    out = { figure: f.p50, p99: f.p99, cpuMs: cpuMs(cpu) / 350 };
  } else throw new Error("unknown workload " + which);
} finally {
  removeTempFolders();
}
console.log(JSON.stringify(out));
`;

const UNITS: Record<string, string> = {
  a: "block runs/s (1,000 × 3, in-process); CPU of the execution",
  b: "ms (40-block chain, in-process, median of 5); CPU per chain",
  f: "ms p50 (API trigger → first block); CPU per trigger (whole child ÷ 350)",
};

interface Sample {
  figure: number;
  cpuMs: number;
  wallMs: number;
  p99?: number;
  statements?: number;
  transactions?: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const repo = resolve(import.meta.dir, "..");
const [refA, refB] = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"));
if (!refA || !refB) {
  console.error("usage: bun bench/ab.ts <commit A> <commit B> [--pairs N] [--only a,b,f]");
  process.exit(2);
}
const pairs = Number(arg("--pairs", "4"));
const only = arg("--only", "a,b,f").split(",");
const tmp = arg("--tmp", "");
const env = tmp ? { ...process.env, TMPDIR: tmp } : process.env;

function checkout(ref: string): { sha: string; dir: string } {
  const sha = execFileSync("git", ["-C", repo, "rev-parse", "--short", ref], { encoding: "utf8" }).trim();
  const dir = mkdtempSync(join(tmpdir(), `kiln-ab-${sha}-`));
  rmSync(dir, { recursive: true });
  execFileSync("git", ["-C", repo, "worktree", "add", "--detach", dir, sha], { stdio: "ignore" });
  execFileSync("bun", ["install", "--frozen-lockfile"], { cwd: dir, stdio: "ignore" });
  writeFileSync(join(dir, "bench/.ab-driver.ts"), DRIVER);
  return { sha, dir };
}

const sides = [checkout(refA), checkout(refB)];
const samples: Sample[][][] = only.map(() => [[], []]);
const loads: number[] = [loadavg()[0]!];
try {
  for (let pair = 0; pair < pairs; pair++) {
    // A B, then B A: each side runs first as often as the other
    const order = pair % 2 === 0 ? [0, 1] : [1, 0];
    for (const [w, workload] of only.entries()) {
      for (const side of order) {
        const { dir, sha } = sides[side]!;
        const r = spawnSync("bun", ["bench/.ab-driver.ts", workload], { cwd: dir, encoding: "utf8", env });
        const line = r.stdout.trim().split("\n").at(-1) ?? "";
        if (r.status !== 0 || !line.startsWith("{")) throw new Error(`${sha} ${workload} failed (${r.status}): ${r.stderr.slice(-2000)}`);
        const s = JSON.parse(line) as Sample;
        samples[w]![side]!.push(s);
        process.stderr.write(`pair ${pair + 1}/${pairs} ${workload} ${sha}: ${s.figure.toFixed(2)} (cpu ${s.cpuMs.toFixed(0)} ms) load ${loadavg()[0]!.toFixed(2)}\n`);
      }
    }
    loads.push(loadavg()[0]!);
  }
} finally {
  for (const { dir } of sides) {
    if (existsSync(dir)) execFileSync("git", ["-C", repo, "worktree", "remove", "--force", dir], { stdio: "ignore" });
  }
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
const [a, b] = sides;
console.log(`\nA = ${a!.sha}, B = ${b!.sha}; ${pairs} alternating pairs; ${cpus()[0]?.model}, ${cpus().length} CPUs; Bun ${Bun.version}; ${new Date().toISOString()}${tmp ? `; TMPDIR=${tmp}` : ""}`);
console.log(`load average (1 min) during the run: ${loads.map((l) => l.toFixed(1)).join(" → ")}\n`);
console.log(`| workload | A median | B median | B ÷ A | A CPU ms (median, min) | B CPU ms (median, min) | B ÷ A (CPU, median) | extra (A / B) |`);
console.log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |`);
for (const [w, workload] of only.entries()) {
  const [sa, sb] = samples[w]!;
  const fa = median(sa!.map((s) => s.figure));
  const fb = median(sb!.map((s) => s.figure));
  const ca = median(sa!.map((s) => s.cpuMs));
  const cb = median(sb!.map((s) => s.cpuMs));
  const mina = Math.min(...sa!.map((s) => s.cpuMs));
  const minb = Math.min(...sb!.map((s) => s.cpuMs));
  const extra =
    workload === "a"
      ? `statements per block run ${fmt(median(sa!.map((s) => s.statements! / 3000)))} / ${fmt(median(sb!.map((s) => s.statements! / 3000)))}`
      : workload === "f"
        ? `p99 ${fmt(median(sa!.map((s) => s.p99!)))} / ${fmt(median(sb!.map((s) => s.p99!)))} ms`
        : "";
  console.log(`| (${workload}) ${UNITS[workload]} | ${fmt(fa)} | ${fmt(fb)} | ${(fb / fa).toFixed(2)} | ${fmt(ca)}, ${fmt(mina)} | ${fmt(cb)}, ${fmt(minb)} | ${(cb / ca).toFixed(2)} | ${extra} |`);
}
