/**
 * `kiln backfill create|start|cancel|retry|status`: thin wrappers over core's backfill service.
 * They only record state in the database; the runs a backfill creates are executed by the
 * scheduler (`kiln start <project>`), which also settles the backfill when they are done.
 */
import { existsSync } from "node:fs";
import { KilnError, INTERVAL_TYPES, PIPELINE_RUN_STATUSES, type IntervalType } from "@kiln/core";
import { backfillStatus, cancelBackfill, countBackfillExecutionDates, createBackfill, MAX_BACKFILL_DATES, retryFailedBackfillRuns, startBackfill, type BackfillStatusReport } from "@kiln/core/backfill";
import { nameProblem } from "@kiln/core/bounds";
import { IllegalTransitionError } from "@kiln/core/engine";
import { type BackfillRecord } from "@kiln/core/store";
import { databaseUrl } from "@kiln/node";
import { parseCommand, parseId, runSubcommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE, SUBCOMMAND_USAGE } from "../usage.ts";
import { loadUserProject, openProject, type OpenProject } from "../project.ts";
import { parseInstant, parseJsonObject } from "./trigger.ts";
import { kilnEnv } from "../kiln-env.ts";

const USAGE = SUBCOMMAND_USAGE["backfill"];

export const usage = COMMAND_USAGE["backfill"];

export function backfill(args: string[]): Promise<number> {
  const action = (name: "start" | "cancel" | "retry" | "status") => (rest: string[]) => act(name, rest);
  return runSubcommand("backfill", { create, start: action("start"), cancel: action("cancel"), retry: action("retry"), status: action("status") }, args);
}

async function create(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("backfill create", args, {
    name: { type: "string" },
    start: { type: "string" },
    end: { type: "string" },
    "interval-type": { type: "string" },
    "interval-units": { type: "string" },
    variables: { type: "string" },
    "block-uuid": { type: "string" },
    "max-concurrent-runs": { type: "string" },
    "start-now": { type: "boolean" },
    json: { type: "boolean" },
  });
  const [projectPath, pipelineUuid, ...extra] = positionals;
  if (!projectPath || !pipelineUuid || extra.length > 0) throw new UsageError(`usage: ${USAGE.create}`);
  // everything the user could get wrong is checked before the database is opened (and maybe created);
  // core checks the same again for its other callers
  const name = values.name?.trim();
  if (!name) throw new UsageError("--name: required (a non-empty name for the backfill)");
  const nameIssue = nameProblem(name);
  if (nameIssue) throw new UsageError(`--name: ${nameIssue}`);
  if (values.start === undefined) throw new UsageError("--start: required (an ISO 8601 date or instant, e.g. 2024-01-01)");
  if (values.end === undefined) throw new UsageError("--end: required (an ISO 8601 date or instant; a date landing exactly on it gets a run)");
  const startDatetime = parseInstant("--start", values.start);
  const endDatetime = parseInstant("--end", values.end);
  if (endDatetime < startDatetime) {
    throw new UsageError(`--end: ${new Date(endDatetime).toISOString()} is before --start ${new Date(startDatetime).toISOString()}`);
  }
  const intervalType = values["interval-type"];
  if (intervalType === undefined) throw new UsageError(`--interval-type: required (one of ${INTERVAL_TYPES.join(", ")})`);
  if (!INTERVAL_TYPES.includes(intervalType as IntervalType)) {
    throw new UsageError(`--interval-type: expected one of ${INTERVAL_TYPES.join(", ")}, got ${JSON.stringify(intervalType)}`);
  }
  const intervalUnits = values["interval-units"] === undefined ? 1 : parseId("--interval-units", values["interval-units"]);
  const range = { startDatetime, endDatetime, intervalType: intervalType as IntervalType, intervalUnits };
  const count = countBackfillExecutionDates(range);
  if (count > MAX_BACKFILL_DATES) {
    throw new UsageError(`--end: the backfill would have ${count} execution dates, more than the limit of ${MAX_BACKFILL_DATES}; narrow the range or raise --interval-units`);
  }
  const maxConcurrentRuns = values["max-concurrent-runs"] === undefined ? null : parseId("--max-concurrent-runs", values["max-concurrent-runs"]);
  const variables = values.variables === undefined ? {} : parseJsonObject("--variables", values.variables);
  const project = await loadUserProject(projectPath);
  const pipeline = project.pipelines.get(pipelineUuid);
  if (!pipeline) {
    const known = [...project.pipelines.keys()].join(", ") || "none";
    throw new UsageError(`no pipeline ${pipelineUuid} in ${projectPath} (pipelines: ${known})`);
  }
  const blockUuid = values["block-uuid"] ?? null;
  if (blockUuid !== null && !pipeline.blocksByUuid.has(blockUuid)) {
    throw new UsageError(`--block-uuid: pipeline ${pipelineUuid} has no block ${blockUuid} (blocks: ${[...pipeline.blocksByUuid.keys()].join(", ")})`);
  }

  const open = await openProject(project);
  try {
    const record = await service(() => createBackfill(open.store, project, { name, pipelineUuid, ...range, variables, blockUuid, maxConcurrentRuns }));
    let shown = record;
    let runsCreated: number | null = null;
    if (values["start-now"]) {
      const started = await service(() => startBackfill(open.store, record.id), record.id, "start");
      shown = started.backfill;
      runsCreated = started.runsCreated;
    }
    if (values.json) {
      write({ backfill: jsonRecord(shown), totalDates: count, ...(runsCreated === null ? {} : { runsCreated }) });
      return 0;
    }
    process.stdout.write(`backfill ${record.id} created: ${describe(record, count)}\n`);
    if (runsCreated === null) {
      process.stdout.write(`start it with: kiln backfill start ${projectPath} ${record.id} (its runs are then executed by the scheduler, kiln start ${projectPath})\n`);
    } else {
      process.stdout.write(`backfill ${record.id} started: ${plural(runsCreated, "run")} created; the scheduler (kiln start ${projectPath}) executes them\n`);
    }
    return 0;
  } finally {
    open.close();
  }
}

type Action = "start" | "cancel" | "retry" | "status";

async function act(action: Action, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(`backfill ${action}`, args, { json: { type: "boolean" } });
  const [projectPath, idText, ...extra] = positionals;
  if (!projectPath || !idText || extra.length > 0) throw new UsageError(`usage: kiln backfill ${action} <project> <backfill_id> [--json]`);
  const id = parseId("<backfill_id>", idText);
  const project = await loadUserProject(projectPath);
  // a project that never ran has no database: say so rather than create an empty one to look in
  const url = databaseUrl(project.root, project.settings.databaseUrl, kilnEnv());
  if (url.startsWith("file:") && url !== "file::memory:" && !existsSync(url.slice("file:".length))) {
    throw new UsageError(`backfill ${id} does not exist (the project has no database yet at ${url.slice("file:".length)})`);
  }
  const open = await openProject(project);
  try {
    return await ACTIONS[action](open, id, projectPath, values.json ?? false);
  } finally {
    open.close();
  }
}

const ACTIONS: Record<Action, (open: OpenProject, id: number, projectPath: string, json: boolean) => Promise<number>> = {
  async start(open, id, projectPath, json) {
    const { backfill, runsCreated } = await service(() => startBackfill(open.store, id), id, "start");
    if (json) write({ backfill: jsonRecord(backfill), runsCreated });
    else process.stdout.write(`backfill ${id} started: ${plural(runsCreated, "run")} created; the scheduler (kiln start ${projectPath}) executes them\n`);
    return 0;
  },
  async cancel(open, id, _projectPath, json) {
    const { backfill, cancelledRunIds } = await service(() => cancelBackfill(open.store, id), id, "cancel");
    if (json) write({ backfill: jsonRecord(backfill), cancelledRunIds });
    else process.stdout.write(`backfill ${id} cancelled: ${plural(cancelledRunIds.length, "run")} cancelled (a scheduler running one stops it at its next step)\n`);
    return 0;
  },
  async retry(open, id, projectPath, json) {
    const runsCreated = await service(() => retryFailedBackfillRuns(open.store, id), id, "retry");
    if (json) write({ id, runsCreated });
    else if (runsCreated === 0) process.stdout.write(`backfill ${id}: nothing to retry (no date's latest run failed or was cancelled)\n`);
    else process.stdout.write(`backfill ${id}: ${plural(runsCreated, "run")} created again for failed or cancelled dates; the scheduler (kiln start ${projectPath}) executes them\n`);
    return 0;
  },
  async status(open, id, _projectPath, json) {
    const report = await service(() => backfillStatus(open.store, id));
    if (json) write({ backfill: jsonRecord(report.backfill), totalDates: report.totalDates, counts: report.counts });
    else process.stdout.write(statusText(report));
    return 0;
  },
};

/** What each action needs the backfill's status to be, for an IllegalTransitionError's message. */
const ALLOWED: Record<Exclude<Action, "status">, string> = {
  start: "only an initial backfill can be started",
  cancel: "only an initial or running backfill can be cancelled",
  retry: "only a failed or running backfill can be retried",
};

/** Runs a service call, turning the errors a user can cause into one-line UsageErrors. */
async function service<T>(call: () => Promise<T>, id?: number, action?: Exclude<Action, "status">): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof IllegalTransitionError && error.entity === "backfill" && action !== undefined) {
      throw new UsageError(`backfill ${id} is ${error.actual ?? error.from}: ${ALLOWED[action]}`);
    }
    if (error instanceof KilnError) throw new UsageError(error.message);
    throw error;
  }
}

function statusText({ backfill: b, counts, totalDates }: BackfillStatusReport): string {
  const iso = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());
  const lines = [
    `backfill ${b.id}: ${b.name} (pipeline ${b.pipelineUuid})`,
    `status: ${b.status} (created ${iso(b.createdAt)}, started ${iso(b.startedAt)}, completed ${iso(b.completedAt)})`,
    `dates: ${totalDates}, from ${iso(b.startDatetime)} to ${iso(b.endDatetime)}, every ${interval(b)}`,
  ];
  if (b.blockUuid !== null) lines.push(`block: ${b.blockUuid}`);
  if (b.maxConcurrentRuns !== null) lines.push(`max concurrent runs: ${b.maxConcurrentRuns}`);
  if (Object.keys(b.variables).length > 0) lines.push(`variables: ${JSON.stringify(b.variables)}`);
  // counts are per date (its latest run); dates of an initial backfill have no run yet
  const withRun = PIPELINE_RUN_STATUSES.reduce((n, s) => n + counts[s], 0);
  const parts = PIPELINE_RUN_STATUSES.map((s) => `${s} ${counts[s]}`);
  if (totalDates > withRun) parts.push(`no run yet ${totalDates - withRun}`);
  lines.push(`runs: ${parts.join(", ")}`);
  return `${lines.join("\n")}\n`;
}

function describe(b: BackfillRecord, count: number): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  return `${b.name}, pipeline ${b.pipelineUuid}, ${plural(count, "execution date")} from ${iso(b.startDatetime)} to ${iso(b.endDatetime)} every ${interval(b)} (status ${b.status})`;
}

function interval(b: BackfillRecord): string {
  return b.intervalUnits === 1 ? b.intervalType : `${b.intervalUnits} ${b.intervalType}s`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** The record with its times as UTC ISO 8601 (null stays null), for --json. */
function jsonRecord(b: BackfillRecord): Record<string, unknown> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    ...b,
    startDatetime: iso(b.startDatetime),
    endDatetime: iso(b.endDatetime),
    startedAt: iso(b.startedAt),
    completedAt: iso(b.completedAt),
    createdAt: iso(b.createdAt),
    updatedAt: iso(b.updatedAt),
  };
}

function write(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
