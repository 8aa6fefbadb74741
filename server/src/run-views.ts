/**
 * Runs and block runs as Mage's presenters show them, beside kiln's own fields: a run's trigger
 * (`pipeline_schedule_name`, `_type`, and `_token` for principals who may write: a token starts
 * runs, so viewers never see it), its pipeline's `pipeline_tags` and `executor_type`, its event as
 * `event_variables`, and its block run counts; a block run's trigger id and name. A page costs
 * a fixed number of reads (one grouped count, one read per distinct trigger), whatever its size.
 */
import { type BlockRun, type PipelineRun, type PipelineSchedule } from "@kiln/core";
import { hasRole } from "@kiln/core/auth";
import type { Principal } from "./auth.ts";
import type { ServerDeps } from "./deps.ts";
import { blockRunJson, pipelineRunJson } from "./serialize.ts";

type Json = Record<string, unknown>;

async function schedulesOf(deps: ServerDeps, ids: Iterable<number | null>): Promise<Map<number, PipelineSchedule>> {
  const distinct = [...new Set([...ids].filter((id): id is number => id !== null))];
  const found = await Promise.all(distinct.map((id) => deps.store.getPipelineSchedule(id)));
  return new Map(found.filter((s): s is PipelineSchedule => s !== null).map((s) => [s.id, s]));
}

function mayWrite(principal: Principal | null): boolean {
  return principal !== null && hasRole(principal.role, "editor");
}

/** Each trigger's token, revealed (tokens are sealed at rest) only for a principal who may write. */
async function tokensOf(deps: ServerDeps, schedules: Iterable<PipelineSchedule>, principal: Principal | null): Promise<Map<number, string | null>> {
  const tokens = new Map<number, string | null>();
  if (!mayWrite(principal)) return tokens;
  for (const schedule of schedules) tokens.set(schedule.id, schedule.hasToken ? await deps.store.revealTriggerToken(schedule.id) : null);
  return tokens;
}

/** Mage's run fields that come from the run's trigger and pipeline; `tokens` holds what this principal may see. */
function mageRunFields(deps: ServerDeps, run: PipelineRun, schedule: PipelineSchedule | undefined, principal: Principal | null, tokens: Map<number, string | null>): Json {
  const project = deps.project();
  const pipeline = project.pipelines.get(run.pipelineUuid);
  const fields: Json = {
    pipeline_schedule_name: schedule?.name ?? null,
    pipeline_schedule_type: schedule?.scheduleType ?? null,
    pipeline_tags: pipeline?.tags ?? [],
    // the pipeline's executor (Mage's run executor_type); blocks may override it, see each block run's executor_type
    executor_type: pipeline ? (pipeline.executorType ?? project.settings.executorType) : null,
    event_variables: run.event,
  };
  if (mayWrite(principal)) fields.pipeline_schedule_token = schedule ? (tokens.get(schedule.id) ?? null) : null;
  return fields;
}

/** A page of runs as the run lists show them: kiln's fields, Mage's, and block run counts. */
export async function pipelineRunListViews(deps: ServerDeps, runs: readonly PipelineRun[], principal: Principal | null): Promise<Json[]> {
  const [counts, schedules] = await Promise.all([deps.store.blockRunCounts(runs.map((r) => r.id)), schedulesOf(deps, runs.map((r) => r.pipelineScheduleId))]);
  const tokens = await tokensOf(deps, schedules.values(), principal);
  return runs.map((run) => {
    const count = counts.get(run.id);
    return {
      ...pipelineRunJson(run),
      ...mageRunFields(deps, run, run.pipelineScheduleId === null ? undefined : schedules.get(run.pipelineScheduleId), principal, tokens),
      block_runs_count: count?.total ?? 0,
      completed_block_runs_count: count?.completed ?? 0,
    };
  });
}

/** One run with its block runs (each with its trigger's id and name, as Mage's detail shows them). */
export async function pipelineRunDetailView(deps: ServerDeps, run: PipelineRun, principal: Principal | null): Promise<Json> {
  const [blockRuns, schedules] = await Promise.all([deps.store.getBlockRuns(run.id), schedulesOf(deps, [run.pipelineScheduleId])]);
  const schedule = run.pipelineScheduleId === null ? undefined : schedules.get(run.pipelineScheduleId);
  const tokens = await tokensOf(deps, schedules.values(), principal);
  return {
    ...pipelineRunJson(run),
    ...mageRunFields(deps, run, schedule, principal, tokens),
    block_runs: blockRuns.map((b) => blockRunView(b, run, schedule)),
    block_runs_count: blockRuns.length,
    completed_block_runs_count: blockRuns.filter((b) => b.status === "completed").length,
  };
}

function blockRunView(blockRun: BlockRun, run: PipelineRun | undefined, schedule: PipelineSchedule | undefined): Json {
  return { ...blockRunJson(blockRun), pipeline_schedule_id: run?.pipelineScheduleId ?? null, pipeline_schedule_name: schedule?.name ?? null };
}

/** Block runs (of any runs) with their run's trigger id and name. */
export async function blockRunViews(deps: ServerDeps, blockRuns: readonly BlockRun[]): Promise<Json[]> {
  const runIds = [...new Set(blockRuns.map((b) => b.pipelineRunId))];
  const runs = new Map((await Promise.all(runIds.map((id) => deps.store.getPipelineRun(id)))).filter((r): r is PipelineRun => r !== null).map((r) => [r.id, r]));
  const schedules = await schedulesOf(deps, [...runs.values()].map((r) => r.pipelineScheduleId));
  return blockRuns.map((b) => {
    const run = runs.get(b.pipelineRunId);
    return blockRunView(b, run, run?.pipelineScheduleId == null ? undefined : schedules.get(run.pipelineScheduleId));
  });
}
