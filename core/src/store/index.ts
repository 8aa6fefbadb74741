/**
 * The store: every SQL statement kiln runs lives under this folder. `Store` bundles a libSQL
 * client, the clock and the group committer; the operation modules take a client so they can be
 * read, tested and replaced (e.g. by a PostgreSQL adapter) one at a time.
 */
import type { ResultSet } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";
import { systemClock, type Clock } from "../clock.ts";
import { GroupCommitter } from "./group-commit.ts";
import { migrate } from "./migrate.ts";
import { WriteBatch } from "./write-batch.ts";
import * as blockRuns from "./block-runs.ts";
import * as pipelineRuns from "./pipeline-runs.ts";
import * as schedules from "./schedules.ts";
import * as secrets from "./secrets.ts";

export class Store {
  readonly #committer: GroupCommitter;

  private constructor(
    readonly client: SqlClient,
    readonly clock: Clock,
  ) {
    this.#committer = new GroupCommitter(client);
  }

  /** Opens a store over a client, applying pending migrations first. */
  static async open(client: SqlClient, clock: Clock = systemClock): Promise<Store> {
    await migrate(client, undefined, clock.now());
    return new Store(client, clock);
  }

  /** A new empty batch stamped with the current time. */
  batch(): WriteBatch {
    return new WriteBatch(this.clock.now());
  }

  /** Commits a batch atomically (group-committed with concurrent ones). */
  commit(batch: WriteBatch): Promise<ResultSet[]> {
    return this.#committer.commit(batch);
  }

  createPipelineRun(run: pipelineRuns.NewPipelineRun) {
    return pipelineRuns.createPipelineRun(this.client, run, this.clock.now());
  }
  getPipelineRun(id: number) {
    return pipelineRuns.getPipelineRun(this.client, id);
  }
  listPipelineRuns(filter?: pipelineRuns.PipelineRunFilter, page?: { limit?: number; after?: string | null }) {
    return pipelineRuns.listPipelineRuns(this.client, filter, page);
  }

  /** How many runs match the filter (Mage's metadata.count), O(1) from the run counters where the filter allows. */
  totalPipelineRuns(filter?: pipelineRuns.PipelineRunFilter) {
    return pipelineRuns.totalPipelineRuns(this.client, filter);
  }
  getBlockRuns(pipelineRunId: number) {
    return blockRuns.getBlockRuns(this.client, pipelineRunId);
  }
  listBlockRuns(pipelineRunId: number, page?: { limit?: number; after?: string | null }) {
    return blockRuns.listBlockRuns(this.client, pipelineRunId, page);
  }
  getBlockRun(id: number) {
    return blockRuns.getBlockRun(this.client, id);
  }
  latestCompletedPartitions(pipelineUuid: string, blockUuids: readonly string[]) {
    return blockRuns.latestCompletedPartitions(this.client, pipelineUuid, blockUuids);
  }
  createPipelineSchedule(schedule: schedules.NewPipelineSchedule) {
    return schedules.createPipelineSchedule(this.client, schedule, this.clock.now());
  }
  listPipelineSchedules(filter?: schedules.PipelineScheduleFilter, page?: { limit?: number; after?: string | null }) {
    return schedules.listPipelineSchedules(this.client, filter, page);
  }
  getPipelineSchedule(id: number) {
    return schedules.getPipelineSchedule(this.client, id);
  }
  putSecret(key: CryptoKey, name: string, value: string) {
    return secrets.putSecret(this.client, key, name, value, this.clock.now());
  }
  getSecret(key: CryptoKey, name: string) {
    return secrets.getSecret(this.client, key, name);
  }
  listSecretNames() {
    return secrets.listSecretNames(this.client);
  }
  deleteSecret(name: string) {
    return secrets.deleteSecret(this.client, name);
  }
}

export type { SqlClient } from "./sql-client.ts";
export { migrate } from "./migrate.ts";
export { MIGRATIONS, type Migration } from "./migrations/index.ts";
export { WriteBatch, LeaseLostError, RunTakenOverError, blockRunSubject, type BlockRunRef, type BlockRunPatch, type PipelineRunPatch } from "./write-batch.ts";
export type { NewPipelineRun, PipelineRunFilter, Page } from "./pipeline-runs.ts";
export { insertScheduledRunStatement, insertSkippedRunStatement } from "./pipeline-runs.ts";
export type { NewPipelineSchedule } from "./schedules.ts";
export * as scheduling from "./scheduling.ts";
export { countedPipelineRuns, scheduleRunCounts, type CountedRunFilter } from "./counters.ts";
export * as backfills from "./backfills.ts";
export { systemStats, type SystemStats, type SchedulerHeartbeat } from "./stats.ts";
export { runOverview, pipelineRunStatuses, OVERVIEW_RECENT_WINDOW, OVERVIEW_CHART_CAP, type RunOverview, type OverviewBucket, type OverviewOptions } from "./overview.ts";
export { currentLeaseToken, recordLease } from "./leases.ts";
export { isDatabaseUnavailable } from "./unavailable.ts";
export type { BackfillRecord, NewBackfill, BackfillFilter, NewBackfillRun } from "./backfills.ts";
export type { ScheduleState, CodeTrigger, RunningCounts } from "./scheduling.ts";
export * as signInAttempts from "./sign-in-attempts.ts";
export { STORE_CONFORMANCE_CASES, runStoreConformance, StoreConformanceError, type StoreConformanceCase, type StoreConformanceHarness, type DefineStoreTest } from "./conformance.ts";
export { appendBlockLogStatement, blockLogPieces, type BlockLogKey, type BlockLogPiece } from "./block-logs.ts";
