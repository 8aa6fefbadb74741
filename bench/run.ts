/**
 * `bun run bench`: kiln's throughput and latency next to the raw write ceiling of its database
 * connection, printed as a markdown table. See bench/README.md.
 */
import { cpus, platform, release } from "node:os";
import { latency, rawWrites, throughput } from "./benchmarks.ts";
import { removeTempFolders } from "./project.ts";
import { details, markdownTable, type Results } from "./report.ts";

// each benchmark uses the fresh database of its own temp project, never one named in the environment
delete process.env.KILN_DATABASE_URL;

const log = (text: string) => process.stderr.write(`${text}\n`);

async function main(): Promise<void> {
  const started = performance.now();
  const sync = process.env.KILN_DB_SYNC === "full" ? "FULL" : "NORMAL";

  log("(c) raw write ceiling...");
  const raw = await rawWrites();
  log("(a) throughput: 1,000 runs x 3 blocks, in-process (3 rounds)...");
  const tp = await throughput();
  log("(b) latency: 40-block chain, in-process (1 warm-up + 5)...");
  const inProcess = await latency(true, 5, 1);
  log("(b) latency: 40-block chain, process per block (2 runs)...");
  const process_ = await latency(false, 2, 0);

  const results: Results = { raw, throughput: tp, inProcess, process: process_, sync };
  const cpu = cpus();
  const out = [
    "",
    `Machine: ${cpu[0]?.model ?? "unknown CPU"}, ${cpu.length} CPUs, ${platform()} ${release()}`,
    `Runtime: Bun ${Bun.version}`,
    `Date: ${new Date().toISOString()}`,
    "",
    markdownTable(results),
    "",
    details(results),
    `whole benchmark: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    "",
  ];
  process.stdout.write(out.join("\n"));
}

// an interrupted run still removes its temp projects
process.once("SIGINT", () => {
  removeTempFolders();
  process.exit(130);
});

try {
  await main();
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  removeTempFolders();
}
