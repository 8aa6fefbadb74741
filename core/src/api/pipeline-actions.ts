/**
 * Mage's pipeline bulk actions (`PUT /api/pipelines/:uuid` with a `status`): turn all of a
 * pipeline's triggers on or off, cancel its live runs (or the ones named), retry the runs named,
 * and retry the incomplete block runs of every failed run. Each run is acted on through the same
 * service as its own route (cancelPipelineRun, retryPipelineRun), so the rules are one; a run that
 * another writer ended or retried meanwhile is counted as skipped, never an error (that race is
 * expected between replicas and users).
 */
import type { PipelineRun, PipelineRunStatus, ScheduleStatus } from "../domain.ts";
import { IllegalTransitionError } from "../state-machine.ts";
import type { Project } from "../project/types.ts";
import type { Store } from "../store/index.ts";
import type { RunEngine } from "../engine/run-engine.ts";
import { KilnError } from "../errors.ts";
import { cancelPipelineRun, retryPipelineRun } from "./runs.ts";
import { updateSchedule } from "./schedules.ts";
import { triggersFile, type CodeTriggerAccess } from "./code-triggers.ts";
import * as scheduling from "../store/scheduling.ts";

/** The statuses Mage's pipeline PUT acts on. */
export const PIPELINE_BULK_ACTIONS = ["active", "inactive", "cancelled", "retry", "retry_incomplete_block_runs"] as const;
export type PipelineBulkAction = (typeof PIPELINE_BULK_ACTIONS)[number];

export interface PipelineBulkActionInput {
  action: PipelineBulkAction;
  /** For cancelled (optional: default every initial or running run) and retry (required): the runs to act on. */
  pipelineRunIds?: readonly number[];
  /** For cancelled: only this trigger's live runs (Mage's `pipeline_schedule_id`). */
  pipelineScheduleId?: number;
  /** The engine of this process, so runs it executes stop their block processes at once. */
  engine?: RunEngine;
  /** Recorded as a cancelled run's error. */
  reason?: string;
  /** For active/inactive: triggers defined in triggers.yaml are switched there (see updateSchedule). */
  code?: CodeTriggerAccess;
}

export interface PipelineBulkActionResult {
  action: PipelineBulkAction;
  /** Runs acted on (cancelled or retried). */
  pipelineRunIds: number[];
  /** Triggers whose status was set. */
  pipelineScheduleIds: number[];
  /** Runs left alone because another writer changed them first (ended, or retried already). */
  skippedPipelineRunIds: number[];
}

/** Page size when walking a pipeline's runs or triggers. */
const PAGE = 500;

async function allRuns(store: Store, pipelineUuid: string, statuses: readonly PipelineRunStatus[], pipelineScheduleId?: number): Promise<PipelineRun[]> {
  const runs: PipelineRun[] = [];
  let after: string | null = null;
  do {
    const page = await store.listPipelineRuns({ pipelineUuid, statuses, ...(pipelineScheduleId !== undefined ? { pipelineScheduleId } : {}) }, { limit: PAGE, after });
    runs.push(...page.items);
    after = page.next;
  } while (after !== null);
  return runs;
}

/** The named runs, each checked to be one of this pipeline's; a missing or foreign id is an error naming it, before anything changes. */
async function namedRuns(store: Store, pipelineUuid: string, ids: readonly number[]): Promise<PipelineRun[]> {
  const runs: PipelineRun[] = [];
  for (const [i, id] of ids.entries()) {
    const run = await store.getPipelineRun(id);
    if (!run || run.pipelineUuid !== pipelineUuid) {
      throw new KilnError("not_found", `pipeline_runs[${i}].id: pipeline run ${id} is not a run of pipeline ${pipelineUuid}`, `pipeline_runs[${i}].id`);
    }
    runs.push(run);
  }
  return runs;
}

/** Whether an error is a race another writer won (the run ended or moved first). */
function lostRace(error: unknown): boolean {
  return error instanceof IllegalTransitionError || (error instanceof KilnError && (error.code === "conflict" || error.code === "illegal_transition"));
}

/** Carries out one of Mage's pipeline bulk actions; see the module comment. */
export async function runPipelineBulkAction(store: Store, project: Project, pipelineUuid: string, input: PipelineBulkActionInput): Promise<PipelineBulkActionResult> {
  if (!project.pipelines.has(pipelineUuid)) throw new KilnError("not_found", `pipeline ${pipelineUuid} does not exist`);
  const result: PipelineBulkActionResult = { action: input.action, pipelineRunIds: [], pipelineScheduleIds: [], skippedPipelineRunIds: [] };
  const act = async (run: PipelineRun, action: () => Promise<unknown>) => {
    try {
      await action();
      result.pipelineRunIds.push(run.id);
    } catch (error) {
      if (!lostRace(error)) throw error;
      result.skippedPipelineRunIds.push(run.id);
    }
  };

  switch (input.action) {
    case "active":
    case "inactive": {
      const status: ScheduleStatus = input.action;
      // refused before anything changes, not after the API-made triggers were switched
      if (input.code && !input.code.files) {
        const inCode = (await scheduling.codeSchedules(store.client)).filter((s) => s.pipelineUuid === pipelineUuid && s.status !== status);
        if (inCode.length > 0) {
          throw new KilnError("conflict", `pipeline ${pipelineUuid}: triggers ${inCode.map((s) => s.name).join(", ")} are defined in ${triggersFile(pipelineUuid)}: change their status there (this server cannot write project files)`);
        }
      }
      let after: string | null = null;
      do {
        const page = await store.listPipelineSchedules({ pipelineUuid }, { limit: PAGE, after });
        for (const schedule of page.items) {
          if (schedule.status !== status) await updateSchedule(store, schedule.id, { status }, input.code);
          result.pipelineScheduleIds.push(schedule.id);
        }
        after = page.next;
      } while (after !== null);
      return result;
    }
    case "cancelled": {
      const runs = input.pipelineRunIds
        ? await namedRuns(store, pipelineUuid, input.pipelineRunIds)
        : await allRuns(store, pipelineUuid, ["running", "initial"], input.pipelineScheduleId);
      const options = { ...(input.engine ? { engine: input.engine } : {}), ...(input.reason ? { reason: input.reason } : {}), waitMs: 2000 };
      for (const run of runs) await act(run, () => cancelPipelineRun(store, run.id, options));
      return result;
    }
    case "retry": {
      if (!input.pipelineRunIds || input.pipelineRunIds.length === 0) {
        throw new KilnError("invalid_input", 'pipeline_runs: status "retry" needs the runs to retry, as pipeline_runs: [{"id": ...}]', "pipeline_runs");
      }
      const runs = await namedRuns(store, pipelineUuid, input.pipelineRunIds);
      for (const run of runs) await act(run, () => retryPipelineRun(store, project, run.id));
      return result;
    }
    case "retry_incomplete_block_runs": {
      // Mage: every failed run's block runs that did not complete (nor end condition_failed) run again
      for (const run of await allRuns(store, pipelineUuid, ["failed"])) await act(run, () => retryPipelineRun(store, project, run.id));
      return result;
    }
  }
}
