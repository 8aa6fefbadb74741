/**
 * The project every chaos replica runs: one pipeline whose first block runs in its own process
 * (so it outlives a killed replica and can be re-attached) and whose second runs inside the
 * replica (so a frozen replica's copy is a zombie until it wakes). Both append start, beat and
 * end records (pid, attempt, an id per execution) to one file, which the checks read.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const PIPELINE = "chaos";
export const TRIGGERS = { cron: "every_minute", alwaysOn: "always_on", api: "hook" } as const;
/** How long each block works, in ms (in slices of BEAT_MS, each leaving a record). */
export const BLOCK_MS = { load: 1500, finish: 1500 } as const;
export const BEAT_MS = 200;
/** The time trigger: every 10 seconds (kiln reads 6-field cron with seconds), so even a short run spans many dates. */
export const CRON_EXPRESSION = "*/10 * * * * *";
export const CRON_STEP_MS = 10_000;

/** One line of the records file, written by a block. */
export interface BlockRecord {
  event: "start" | "beat" | "end" | "aborted";
  /** A fresh id per execution of a block (a re-run gets a new one; a re-attached process keeps its own). */
  x: string;
  block: string;
  blockRunId: number;
  runId: number;
  attempt: number;
  pid: number;
  t: number;
}

/** What each block returns (its stored output), naming the execution that produced it. */
export interface BlockOutput {
  x: string;
  pid: number;
  attempt: number;
}

function blockSource(recordsFile: string, ms: number): string {
  return `import { appendFileSync } from "node:fs";

// chaos suite block: records every step so the checks can see who executed what, and when
// the context comes after the upstream outputs
export default async function work(...args) {
  const ctx = args[args.length - 1];
  const x = crypto.randomUUID();
  const record = (event) =>
    appendFileSync(${JSON.stringify(recordsFile)}, JSON.stringify({ event, x, block: ctx.blockUuid, blockRunId: ctx.blockRunId, runId: ctx.pipelineRunId, attempt: ctx.attempt, pid: process.pid, t: Date.now() }) + "\\n");
  record("start");
  const until = Date.now() + ${ms};
  while (Date.now() < until) {
    if (ctx.signal.aborted) {
      record("aborted");
      throw new Error("aborted by kiln");
    }
    await new Promise((resolve) => setTimeout(resolve, ${BEAT_MS}));
    record("beat");
  }
  record("end");
  return { x, pid: process.pid, attempt: ctx.attempt };
}
`;
}

function triggersYaml(active: boolean, token: string): string {
  const status = active ? "active" : "inactive";
  return `triggers:
  - name: ${TRIGGERS.cron}
    schedule_type: time
    schedule_interval: "${CRON_EXPRESSION}"
    status: ${status}
  - name: ${TRIGGERS.alwaysOn}
    schedule_type: time
    schedule_interval: "@always_on"
    status: ${status}
  - name: ${TRIGGERS.api}
    schedule_type: api
    status: active
    token: ${token}
`;
}

/** Writes the project under `root`; blocks append their records to `recordsFile`. */
export function writeProject(root: string, recordsFile: string, token: string): void {
  const files: Record<string, string> = {
    "kiln.yaml": "executor_type: local\n",
    // retries: a killed block process fails its attempt; the next one must run (blocks never fail on their own)
    [`pipelines/${PIPELINE}/metadata.yaml`]: `retry_config:
  retries: 20
  delay: 0
blocks:
  - uuid: load
    type: custom
  - uuid: finish
    type: custom
    upstream_blocks: [load]
    executor_config:
      in_process: true
`,
    [`pipelines/${PIPELINE}/triggers.yaml`]: triggersYaml(true, token),
    "custom/load.js": blockSource(recordsFile, BLOCK_MS.load),
    "custom/finish.js": blockSource(recordsFile, BLOCK_MS.finish),
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

/** Switches the cron and @always_on triggers off in triggers.yaml (the replicas reload it), so the run can settle. */
export function deactivateTimeTriggers(root: string, token: string): void {
  writeFileSync(join(root, `pipelines/${PIPELINE}/triggers.yaml`), triggersYaml(false, token));
}
