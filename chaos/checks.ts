/**
 * The checks at the end of a chaos run, on what the database holds, what the blocks recorded,
 * and what the run itself saw (acknowledged API calls, freezes, @always_on samples). Each check
 * names what broke it; none is relaxed to pass.
 */
import type { Row } from "./db.ts";
import type { Freeze } from "./faults.ts";
import type { Ack } from "./load.ts";
import { CRON_STEP_MS, type BlockOutput, type BlockRecord } from "./project.ts";

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What broke it (first few cases), or a short figure when it holds. */
  detail: string;
}

/** One execution of a block run, as its records show it. */
export interface Execution {
  x: string;
  blockRunId: number;
  block: string;
  pid: number;
  attempt: number;
  start: number;
  /** Its last record's time. */
  last: number;
  ended: "end" | "aborted" | null;
  /** Its process was frozen (SIGSTOP) at some moment of it. */
  frozen: boolean;
  /** It ran beside another execution of the same block run. */
  overlapped: boolean;
}

export interface CheckInput {
  runs: Row[];
  blockRuns: Row[];
  backfills: Array<{ id: number; dates: number }>;
  backfillRows: Row[];
  scheduleIds: { cron: number; alwaysOn: number; api: number };
  acks: Ack[];
  records: BlockRecord[];
  freezes: Freeze[];
  alwaysOnDoubles: Array<{ at: number; ids: number[] }>;
  /** The stored output of a block of a run, or null when there is none. */
  output: (partition: string, block: string) => BlockOutput | null;
}

export interface CheckReport {
  results: CheckResult[];
  executions: Execution[];
  /** Block runs executed more than once (a retry after a kill, or a re-run after a takeover). */
  reExecutions: number;
  /** Executions by a frozen process that another execution of the same block run overlapped. */
  zombies: Execution[];
}


function shortList(items: string[], max = 8): string {
  return items.length <= max ? items.join("; ") : `${items.slice(0, max).join("; ")}; ... (${items.length} in all)`;
}

function result(name: string, failures: string[], okDetail: string): CheckResult {
  return failures.length === 0 ? { name, ok: true, detail: okDetail } : { name, ok: false, detail: shortList(failures) };
}

/** Groups the records into executions, marking the frozen ones and the ones that overlapped another. */
export function executionsOf(records: BlockRecord[], freezes: Freeze[]): Execution[] {
  const byX = new Map<string, Execution>();
  for (const r of records) {
    let e = byX.get(r.x);
    if (!e) {
      e = { x: r.x, blockRunId: r.blockRunId, block: r.block, pid: r.pid, attempt: r.attempt, start: r.t, last: r.t, ended: null, frozen: false, overlapped: false };
      byX.set(r.x, e);
    }
    e.start = Math.min(e.start, r.t);
    e.last = Math.max(e.last, r.t);
    if (r.event === "end" || r.event === "aborted") e.ended = r.event;
  }
  const executions = [...byX.values()];
  for (const e of executions) e.frozen = freezes.some((f) => f.pid === e.pid && f.from <= e.last && f.to >= e.start);
  return executions;
}

/** Runs every check. */
export function runChecks(input: CheckInput): CheckReport {
  const results: CheckResult[] = [];
  const runById = new Map(input.runs.map((r) => [Number(r.id), r]));
  const { cron, alwaysOn, api } = input.scheduleIds;

  // 1. every acknowledged API trigger has its run
  results.push(
    result(
      "every acknowledged API trigger has its run",
      input.acks.filter((a) => Number(runById.get(a.runId)?.pipeline_schedule_id) !== api).map((a) => `run ${a.runId} (acknowledged by replica ${a.replica}) is missing`),
      `${input.acks.length} acknowledged, all present`,
    ),
  );

  // 2. no (trigger, execution date) twice; no (backfill, date) twice
  const keys = new Map<string, number[]>();
  for (const r of input.runs) {
    const key = r.pipeline_schedule_id !== null ? `trigger ${r.pipeline_schedule_id}` : r.backfill_id !== null ? `backfill ${r.backfill_id}` : null;
    if (!key) continue;
    const k = `${key} @ ${new Date(Number(r.execution_date)).toISOString()}`;
    keys.set(k, [...(keys.get(k) ?? []), Number(r.id)]);
  }
  results.push(
    result(
      "no (trigger, execution date) twice",
      [...keys].filter(([, ids]) => ids.length > 1).map(([k, ids]) => `${k}: runs ${ids.join(", ")}`),
      `${keys.size} distinct (trigger or backfill, date) pairs`,
    ),
  );

  // 3. no cron date missed between the first and the last
  const cronDates = input.runs.filter((r) => Number(r.pipeline_schedule_id) === cron).map((r) => Number(r.execution_date)).sort((a, b) => a - b);
  const missed: string[] = [];
  for (let i = 1; i < cronDates.length; i++) {
    for (let d = (cronDates[i - 1] as number) + CRON_STEP_MS; d < (cronDates[i] as number); d += CRON_STEP_MS) missed.push(new Date(d).toISOString());
  }
  const badCron = cronDates.filter((d) => d % CRON_STEP_MS !== 0).map((d) => `${new Date(d).toISOString()} is not on the trigger's 10-second grid`);
  results.push(
    result(
      "no cron date missed between the first and the last",
      [...missed.map((d) => `${d} missed`), ...badCron],
      cronDates.length === 0 ? "no cron run at all" : `${cronDates.length} dates, ${new Date(cronDates[0] as number).toISOString()} to ${new Date(cronDates[cronDates.length - 1] as number).toISOString()}`,
    ),
  );
  if (cronDates.length === 0) results[results.length - 1] = { name: "no cron date missed between the first and the last", ok: false, detail: "the cron trigger made no run" };

  // 4. every run terminal and completed; every block run completed; every backfill completed with all its dates
  const notCompleted = input.runs.filter((r) => r.status !== "completed").map((r) => `run ${r.id} ${r.status}${r.metrics && r.metrics !== "{}" ? ` (${String(r.metrics).slice(0, 300)})` : ""}`);
  const blocksNotCompleted = input.blockRuns
    .filter((b) => b.status !== "completed")
    .map((b) => `block run ${b.id} (${b.block_uuid} of run ${b.pipeline_run_id}) ${b.status}, attempt ${b.attempt}${b.error ? `: ${String(b.error).slice(0, 300)}` : ""}`);
  const runsWithoutBlocks = input.runs.filter((r) => !input.blockRuns.some((b) => Number(b.pipeline_run_id) === Number(r.id))).map((r) => `run ${r.id} has no block runs`);
  const backfillProblems: string[] = [];
  for (const b of input.backfills) {
    const row = input.backfillRows.find((r) => Number(r.id) === b.id);
    if (row?.status !== "completed") backfillProblems.push(`backfill ${b.id} is ${row?.status ?? "missing"}`);
    const count = new Set(input.runs.filter((r) => Number(r.backfill_id) === b.id).map((r) => Number(r.execution_date))).size;
    if (count !== b.dates) backfillProblems.push(`backfill ${b.id} has runs for ${count} of its ${b.dates} dates`);
  }
  results.push(
    result(
      "every run terminal and completed",
      [...notCompleted, ...blocksNotCompleted, ...runsWithoutBlocks, ...backfillProblems],
      `${input.runs.length} runs, ${input.blockRuns.length} block runs, ${input.backfills.length} backfills completed`,
    ),
  );

  // 5. no block run executing twice at once, except in a frozen process
  const executions = executionsOf(input.records, input.freezes);
  const byBlockRun = new Map<number, Execution[]>();
  for (const e of executions) byBlockRun.set(e.blockRunId, [...(byBlockRun.get(e.blockRunId) ?? []), e]);
  const doubles: string[] = [];
  for (const [id, list] of byBlockRun) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i] as Execution;
        const b = list[j] as Execution;
        if (a.start < b.last && b.start < a.last) {
          a.overlapped = b.overlapped = true;
          if (!a.frozen && !b.frozen) {
            doubles.push(`block run ${id} (${a.block}): attempt ${a.attempt} in pid ${a.pid} and attempt ${b.attempt} in pid ${b.pid} ran together for ${Math.min(a.last, b.last) - Math.max(a.start, b.start)} ms`);
          }
        }
      }
    }
  }
  const zombies = executions.filter((e) => e.frozen && e.overlapped);
  results.push(result("no block run executing twice at once except in a frozen process", doubles, `${executions.length} executions, ${zombies.length} of them frozen beside another`));

  // 6. a frozen process's execution is never the one recorded (the block run's output and attempt)
  const zombieX = new Set(zombies.map((z) => z.x));
  const runsById = runById;
  const recorded: string[] = [];
  for (const b of input.blockRuns) {
    if (b.status !== "completed") continue;
    const run = runsById.get(Number(b.pipeline_run_id));
    if (!run) continue;
    const out = input.output(String(run.execution_partition), String(b.block_uuid));
    const list = byBlockRun.get(Number(b.id)) ?? [];
    if (!out) {
      recorded.push(`block run ${b.id} is completed but has no output`);
      continue;
    }
    if (zombieX.has(out.x)) recorded.push(`block run ${b.id} (${b.block_uuid}): the output is the frozen pid ${out.pid}'s attempt ${out.attempt}`);
    else if (!list.some((e) => e.x === out.x)) recorded.push(`block run ${b.id} (${b.block_uuid}): the output comes from no execution of this block run (pid ${out.pid}, attempt ${out.attempt})`);
    if (out.attempt !== Number(b.attempt)) recorded.push(`block run ${b.id} (${b.block_uuid}) records attempt ${b.attempt} but its output is attempt ${out.attempt}'s (pid ${out.pid})`);
  }
  results.push(result("a frozen process's attempt is never the one recorded", recorded, `${zombies.length} frozen executions, none recorded`));

  // 7. the @always_on trigger never has two live runs: sampled while the run went on, and from
  // the runs' own times (a run started before the one before it completed). created_at is not
  // compared: it is the creating tick's clock, taken before the conditional insert commits.
  const always = input.runs.filter((r) => Number(r.pipeline_schedule_id) === alwaysOn).sort((a, b) => Number(a.id) - Number(b.id));
  const together: string[] = input.alwaysOnDoubles.slice(0, 5).map((d) => `${new Date(d.at).toISOString()}: runs ${d.ids.join(", ")} live at once`);
  for (let i = 1; i < always.length; i++) {
    const prev = always[i - 1] as Row;
    const next = always[i] as Row;
    const prevEnd = prev.completed_at === null ? Infinity : Number(prev.completed_at);
    if (next.started_at !== null && Number(next.started_at) < prevEnd) {
      together.push(`run ${next.id} started at ${new Date(Number(next.started_at)).toISOString()}, before run ${prev.id} ended (${Number.isFinite(prevEnd) ? new Date(prevEnd).toISOString() : "never"})`);
    }
  }
  results.push(result("the @always_on trigger never has two live runs", together, `${always.length} runs, one after another`));
  if (always.length === 0) results[results.length - 1] = { name: "the @always_on trigger never has two live runs", ok: false, detail: "the @always_on trigger made no run" };

  const reExecutions = [...byBlockRun.values()].filter((list) => list.length > 1).length;
  return { results, executions, reExecutions, zombies };
}
