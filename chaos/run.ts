/**
 * `bun run chaos [-- options]`: the chaos suite from the command line.
 *
 *   --minutes M          minutes of faults (default 10)
 *   --seed S             seed of the faults and the load (default: random, printed)
 *   --db file|sqld|both  the database: a libSQL file, a sqld server, or both one after the other (default both)
 *   --no-redis           replicas without Redis (default: with a Redis that is itself killed now and then)
 *   --replicas N         kiln start processes (default 3)
 *   --fault-every A-B    seconds between faults (default 2-4)
 *   --orphan-after S     the replicas' --orphan-after (default 5)
 *   --keep               keep the work folder even when every check holds
 *   --fuzz               instead: the OpenAPI fuzz of the server at 10,000 requests (KILN_FUZZ_RUNS to change)
 *
 * Exits 1 when a check fails, 2 on a bad option.
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { killEverythingStarted, REPO_ROOT } from "./processes.ts";
import { activeRoots, formatReport, runChaos, type ChaosOptions } from "./scenario.ts";
import { messageOf } from "@kiln/core";

function fail(message: string): never {
  console.error(`chaos: ${message}`);
  process.exit(2);
}

function range(flag: string, text: string): [number, number] {
  const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(text);
  if (!m) fail(`${flag}: expected seconds as A-B (e.g. 2-4), got ${JSON.stringify(text)}`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (!(a > 0) || b < a) fail(`${flag}: expected 0 < A <= B, got ${JSON.stringify(text)}`);
  return [a, b];
}

function positive(flag: string, text: string | undefined, fallback: number, integer = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) fail(`${flag}: expected a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(text)}`);
  return n;
}

let parsed;
try {
  parsed = parseArgs({
    args: process.argv.slice(2),
    options: {
      minutes: { type: "string" },
      seed: { type: "string" },
      db: { type: "string" },
      "no-redis": { type: "boolean" },
      replicas: { type: "string" },
      "fault-every": { type: "string" },
      "orphan-after": { type: "string" },
      keep: { type: "boolean" },
      fuzz: { type: "boolean" },
    },
    strict: true,
    allowPositionals: false,
  });
} catch (error) {
  fail(messageOf(error));
}
const v = parsed.values;

if (v.fuzz) {
  const runs = process.env.KILN_FUZZ_RUNS ?? "10000";
  const seed = v.seed ?? process.env.KILN_FUZZ_SEED ?? "20240415";
  console.log(`fuzz: ${runs} requests, seed ${seed}`);
  const result = spawnSync(process.execPath, ["test", "--timeout", "1800000", "test/server/fuzz.test.ts"], {
    cwd: REPO_ROOT,
    stdio: "inherit",
    env: { ...process.env, KILN_FUZZ_RUNS: runs, KILN_FUZZ_SEED: seed },
  });
  process.exit(result.status ?? 1);
}

const dbOption = v.db ?? "both";
if (!["file", "sqld", "both"].includes(dbOption)) fail(`--db: expected file, sqld or both, got ${JSON.stringify(v.db)}`);
const dbs: Array<ChaosOptions["database"]> = dbOption === "both" ? ["file", "sqld"] : [dbOption as ChaosOptions["database"]];
const seed = v.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positive("--seed", v.seed, 1, true);
const base: Omit<ChaosOptions, "database"> = {
  minutes: positive("--minutes", v.minutes, 10),
  seed,
  redis: v["no-redis"] !== true,
  replicas: positive("--replicas", v.replicas, 3, true),
  faultEverySeconds: range("--fault-every", v["fault-every"] ?? "2-4"),
  apiEverySeconds: [0.5, 1.5],
  orphanAfterSeconds: positive("--orphan-after", v["orphan-after"], 5),
  settleSeconds: 180,
  keep: v.keep === true,
};
if (base.replicas < 2) fail("--replicas: expected at least 2 (one always stays up while another is faulted)");

// an interrupted run stops what it started (replicas, redis, sqld, block processes) before exiting
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(sig, () => {
    console.error(`chaos: ${sig}: stopping every process this run started`);
    killEverythingStarted([...activeRoots]);
    process.exit(130);
  });
}

let allOk = true;
const reports: string[] = [];
for (const database of dbs) {
  const report = await runChaos({ ...base, database });
  const text = formatReport(report);
  reports.push(text);
  console.log(text);
  allOk &&= report.ok;
}
if (reports.length > 1) console.log(`\n${reports.join("\n\n")}`);
process.exit(allOk ? 0 : 1);
