/**
 * Actions on pipeline runs, for the server, the CLI and the UI: cancel a live run, and retry an
 * ended run's failed blocks (Mage's `retry_blocks`, optionally from a block down).
 *
 * ```ts
 * await cancelPipelineRun(store, 12, { engine });            // the run as stored, cancelled
 * await retryPipelineRun(store, project, 12);               // failed blocks go back to initial
 * await retryPipelineRun(store, project, 12, { fromBlockUuid: "transform" });
 * ```
 *
 * A retried run goes back to `running` with no owner: a scheduler takes it over through the
 * engine's resume path (the one that re-attaches orphaned runs), which keeps the completed
 * block runs and drives the reset ones from `initial`. Every status change is a guarded write.
 */
import { parseBlockRunUuid, type BlockRun, type BlockRunStatus, type PipelineRun } from "../domain.ts";
import { executorTypeOf } from "../engine/plan.ts";
import type { RunEngine } from "../engine/run-engine.ts";
import type { Pipeline, Project } from "../project/types.ts";
import { KilnError } from "../errors.ts";
import { IllegalTransitionError, isTerminal } from "../state-machine.ts";
import type { Store } from "../store/index.ts";
import * as backfills from "../store/backfills.ts";

export interface CancelOptions {
  /** The engine of this process: a run it executes is stopped there, so its block processes stop now. */
  engine?: RunEngine;
  /** Recorded as the run's error (metrics.error). */
  reason?: string;
  /** How long to wait for a local engine to record the cancel before answering with the run as it is (ms). */
  waitMs?: number;
}

/** Block-run statuses a retry without from_block_uuid runs again (Mage: the non-completed ones; a false condition is a result, not a failure). */
const RETRIED: ReadonlySet<BlockRunStatus> = new Set(["failed", "cancelled", "upstream_failed"]);

async function load(store: Store, id: number): Promise<PipelineRun> {
  const run = await store.getPipelineRun(id);
  if (!run) throw new KilnError("not_found", `pipeline run ${id} does not exist`, "id");
  return run;
}

/**
 * Cancels an initial or running run. A run the given engine executes is stopped by that engine
 * (it cancels the live block runs and stops their processes); any other is moved to cancelled
 * with its live block runs in one guarded batch, which the executing engine's watcher notices.
 * An ended run is an IllegalTransitionError. Returns the run as stored afterwards.
 */
export async function cancelPipelineRun(store: Store, id: number, options: CancelOptions = {}): Promise<PipelineRun> {
  const reason = options.reason ?? "cancelled";
  // the scheduler may start the run between our read and our write: read again and take the other path
  for (let attempt = 1; ; attempt++) {
    const run = await load(store, id);
    if (isTerminal("pipeline_run", run.status)) throw new IllegalTransitionError("pipeline_run", `pipeline run ${id}`, run.status, "cancelled");
    const engine = options.engine;
    if (engine?.cancel(id, reason)) {
      const ended = engine.ended(id);
      if (ended) await waitAtMost(ended, options.waitMs ?? 10_000);
      return load(store, id);
    }
    const batch = store.batch();
    batch.transitionPipelineRun(id, run.status, "cancelled", { completedAt: batch.now, metrics: { ...run.metrics, error: reason } });
    batch.cancelLiveBlockRuns(id, reason);
    try {
      await store.commit(batch);
      return load(store, id);
    } catch (error) {
      const raced = error instanceof IllegalTransitionError && error.actual !== undefined && !isTerminal("pipeline_run", error.actual as PipelineRun["status"]);
      if (!raced || attempt >= 3) throw error;
    }
  }
}

export interface RetryOptions {
  /** Re-run this block and everything downstream of it, whatever their status. */
  fromBlockUuid?: string | null;
}

export interface RetryResult {
  run: PipelineRun;
  /** Block runs put back to initial (or created, for a run cancelled before it started). */
  blockRunsReset: number;
}

/**
 * Retries a failed or cancelled run: its failed, cancelled and upstream_failed block runs (or,
 * with fromBlockUuid, that block and all its descendants) go back to initial, with a fresh
 * attempt count, and the run goes back to running with no owner, so a scheduler resumes it;
 * completed block runs keep their outputs. The per-item runs of a reset fan-out block are
 * removed, to be created again from the new output. One guarded batch: a concurrent change
 * makes it fail whole with IllegalTransitionError. A run of a failed backfill moves the backfill
 * back to running too, so the backfill is settled again (completed, if every date now is).
 */
export async function retryPipelineRun(store: Store, project: Project, id: number, options: RetryOptions = {}): Promise<RetryResult> {
  const run = await load(store, id);
  if (run.status !== "failed" && run.status !== "cancelled") {
    throw new KilnError("conflict", `pipeline run ${id} is ${run.status}: only a failed or cancelled run can be retried`, "status");
  }
  const pipeline = project.pipelines.get(run.pipelineUuid);
  if (!pipeline) throw new KilnError("invalid_input", `pipeline run ${id}: the project has no pipeline ${run.pipelineUuid} any more`, "pipeline_uuid");
  const rows = await store.getBlockRuns(id);
  const from = options.fromBlockUuid ?? null;
  const reset = blocksToReset(pipeline, run, rows, from);

  // back to running with no owner: a co-located scheduler resumes it now, not at its next tick
  const batch = store.batch().announceRuns({ resumed: true });
  const { error: _error, ...metrics } = run.metrics;
  batch.transitionPipelineRun(id, run.status, "running", { owner: null, startedAt: batch.now, completedAt: null, metrics });
  // a failed backfill runs again while one of its runs does, and is settled anew when it ends
  const backfill = run.backfillId === null ? null : await backfills.getBackfill(store.client, run.backfillId);
  if (backfill?.status === "failed") batch.transitionBackfill(backfill.id, "failed", "running", { completedAt: null });
  let count = 0;
  if (rows.length === 0) {
    // cancelled before it started: no block runs yet, so create them as the engine's start would
    const types = new Map<string, string>();
    for (const uuid of reset) {
      const block = pipeline.blocksByUuid.get(uuid);
      if (block) types.set(uuid, executorTypeOf(project, pipeline, block));
    }
    batch.insertBlockRuns(id, [...types.keys()], types);
    count = types.size;
  }
  for (const row of rows) {
    const { block, index } = parseBlockRunUuid(row.blockUuid);
    if (!reset.has(block)) continue;
    if (index !== null) {
      batch.deleteBlockRun(row.id, row.status);
      continue;
    }
    count++;
    if (row.status === "initial") continue;
    batch.transitionBlockRun({ pipelineRunId: id, blockUuid: row.blockUuid }, row.status, "initial", {
      attempt: 1,
      error: null,
      metrics: {},
      retryAt: null,
      startedAt: null,
      completedAt: null,
      executorHandle: null,
    });
  }
  await store.commit(batch);
  return { run: await load(store, id), blockRunsReset: count };
}

/** The blocks (by uuid, without item index) whose block runs a retry resets. */
function blocksToReset(pipeline: Pipeline, run: PipelineRun, rows: readonly BlockRun[], from: string | null): Set<string> {
  const present = new Set(rows.map((r) => parseBlockRunUuid(r.blockUuid).block));
  if (rows.length === 0) {
    // a single-block run (a backfill of one block) names its block in metrics
    const only = typeof run.metrics.block_uuid === "string" ? run.metrics.block_uuid : null;
    for (const block of pipeline.blocks) if (only === null || block.uuid === only) present.add(block.uuid);
  }
  if (from !== null) {
    if (!pipeline.blocksByUuid.has(from)) {
      throw new KilnError("invalid_input", `from_block_uuid: pipeline ${pipeline.uuid} has no block ${from}`, "from_block_uuid");
    }
    if (!present.has(from)) {
      throw new KilnError("invalid_input", `from_block_uuid: pipeline run ${run.id} does not run block ${from}`, "from_block_uuid");
    }
    // a run cancelled before it started has no block runs: all of them are created, as at a start
    if (rows.length === 0) return present;
    const reset = new Set<string>();
    const pending = [from];
    for (let uuid = pending.pop(); uuid !== undefined; uuid = pending.pop()) {
      if (reset.has(uuid)) continue;
      reset.add(uuid);
      pending.push(...(pipeline.blocksByUuid.get(uuid)?.downstreamBlocks ?? []));
    }
    return new Set([...reset].filter((uuid) => present.has(uuid)));
  }
  if (rows.length === 0) return present;
  const reset = new Set(rows.filter((r) => RETRIED.has(r.status)).map((r) => parseBlockRunUuid(r.blockUuid).block));
  if (reset.size === 0) {
    throw new KilnError("conflict", `pipeline run ${run.id} has no failed, cancelled or upstream_failed block run to retry; pass from_block_uuid to re-run completed blocks`);
  }
  return reset;
}

/** Waits for `promise`, or `ms`, whichever comes first; never rejects. */
async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([promise.then(() => undefined, () => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
