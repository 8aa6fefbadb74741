/**
 * The store: every SQL statement kiln runs lives under this folder. `Store` bundles a libSQL
 * client, the clock and the group committer; the operation modules take a client so they can be
 * read, tested and replaced (e.g. by a PostgreSQL adapter) one at a time.
 */
import type { PageRequest } from "./page.ts";
import type { PipelineSchedule } from "../domain.ts";
import type { ResultSet } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";
import { systemClock, type Clock } from "../clock.ts";
import { GroupCommitter } from "./group-commit.ts";
import { migrate } from "./migrate.ts";
import { WriteBatch, type Announcement } from "./write-batch.ts";
import * as blockRuns from "./block-runs.ts";
import * as pipelineRuns from "./pipeline-runs.ts";
import * as schedules from "./schedules.ts";
import * as secrets from "./secrets.ts";
import { constantTimeEqual } from "../auth/constant-time.ts";
import { openToken, sealToken, tokenDigest, TokenKeyError, type SealedToken } from "../trigger-tokens.ts";
import { credentialCount } from "./users.ts";
import { RunsCancelledSignal, RunsCreatedSignal, type CreatedRun, type RunsCreated } from "../runs/signal.ts";
import { pipelineRunFromRow } from "./rows.ts";
import { createPipelineRun } from "../runs/create.ts";

/** The signal's event for a committed batch's announcement: the runs it named, read from their statements' returned rows. */
function runsCreatedEvent(announced: Announcement, results: ResultSet[]): RunsCreated {
  if (!announced.created) return { resumed: announced.resumed };
  const runs: CreatedRun[] = [];
  for (const { statement, schedule } of announced.created) {
    const row = results[statement]?.rows[0];
    // no row: the run existed already (its trigger and date), nothing new to start
    if (row) runs.push(schedule === undefined ? { run: pipelineRunFromRow(row) } : { run: pipelineRunFromRow(row), schedule });
  }
  return { resumed: announced.resumed, runs };
}

/** The secret key, or a function that resolves it on first use (a CLI makes its key file only when it needs one). */
export type SecretKeyProvider = CryptoKey | (() => Promise<CryptoKey>);

export class Store {
  readonly #committer: GroupCommitter;
  #secretKey: (() => Promise<CryptoKey>) | null = null;
  #resolvedKey: Promise<CryptoKey> | null = null;
  /** Fired after a commit that made runs ready to start (see WriteBatch.announceRuns); a co-located scheduler listens. */
  readonly runsCreated = new RunsCreatedSignal();
  /** Fired after a commit that cancelled live block runs, with their pipeline runs (see WriteBatch.cancelLiveBlockRuns). */
  readonly runsCancelled = new RunsCancelledSignal();

  private constructor(
    readonly client: SqlClient,
    readonly clock: Clock,
  ) {
    this.#committer = new GroupCommitter(client);
  }

  /** Opens a store over a client, applying pending migrations first; `secretKey` seals trigger tokens (see useSecretKey). */
  static async open(client: SqlClient, clock: Clock = systemClock, options: { secretKey?: SecretKeyProvider; migrate?: boolean } = {}): Promise<Store> {
    // migrate: false when this process already brought the schema up to date (a Worker isolate's later invocations)
    if (options.migrate !== false) await migrate(client, undefined, clock.now());
    const store = new Store(client, clock);
    if (options.secretKey) store.useSecretKey(options.secretKey);
    return store;
  }

  /**
   * Sets the secret key trigger tokens are sealed under. Without one, writing or showing a token
   * fails with TokenKeyError, and only tokens written before they were sealed are accepted.
   */
  useSecretKey(key: SecretKeyProvider): void {
    this.#secretKey = typeof key === "function" ? key : () => Promise.resolve(key);
    this.#resolvedKey = null;
  }

  /** Whether a secret key was given (it may still fail to resolve). */
  get hasSecretKey(): boolean {
    return this.#secretKey !== null;
  }

  #key(purpose: string): Promise<CryptoKey> {
    const provider = this.#secretKey;
    if (!provider) return Promise.reject(new TokenKeyError(`${purpose}: trigger tokens are kept encrypted under KILN_SECRET_KEY (or the key file beside the database), and this process has neither`));
    if (!this.#resolvedKey) {
      const resolving = provider();
      this.#resolvedKey = resolving;
      // a failed resolution (a key file being made by another process, say) is retried next time
      resolving.catch(() => {
        if (this.#resolvedKey === resolving) this.#resolvedKey = null;
      });
    }
    return this.#resolvedKey;
  }

  /** How many values are stored encrypted under the secret key: secrets and sealed trigger tokens. */
  async encryptedValueCounts(): Promise<{ secrets: number; tokens: number }> {
    const [secretsStored, tokens] = await Promise.all([secrets.secretCount(this.client), schedules.sealedTokenCount(this.client)]);
    return { secrets: secretsStored, tokens };
  }

  /** A token's sealed form, to be written in place of the token. */
  async sealTriggerToken(token: string): Promise<SealedToken> {
    return sealToken(await this.#key("sealing a trigger token"), token);
  }

  /** The digest a token is looked up by. */
  async triggerTokenDigest(token: string): Promise<string> {
    return tokenDigest(await this.#key("checking a trigger token"), token);
  }

  /** A schedule's token in plaintext, to show to an editor; null if it has none. */
  async revealTriggerToken(id: number): Promise<string | null> {
    const row = await schedules.scheduleSealedToken(this.client, id);
    if (!row) return null;
    if (row.sealed !== null) return openToken(await this.#key("showing a trigger token"), row.sealed);
    return row.plaintext;
  }

  /**
   * API trigger `id`, if `token` is its token, in one read: the token's digest is compared in
   * constant time (a row not sealed yet: its plaintext). Null for a wrong token, an unknown id
   * or another type of trigger.
   */
  async apiTriggerByToken(id: number, token: string): Promise<PipelineSchedule | null> {
    const found = await schedules.scheduleWithToken(this.client, id);
    if (!found || found.schedule.scheduleType !== "api") return null;
    const matches =
      found.digest !== null ? constantTimeEqual(await this.triggerTokenDigest(token), found.digest) : found.plaintext !== null && constantTimeEqual(token, found.plaintext);
    return matches ? found.schedule : null;
  }

  /**
   * Ids of the event triggers whose token is `token`: by the digest's index, plus the rows not
   * sealed yet, each compared in constant time.
   */
  async eventTriggerIdsWithToken(token: string): Promise<number[]> {
    const sealed = this.#secretKey ? await schedules.eventTriggerIdsByDigest(this.client, await this.triggerTokenDigest(token)) : [];
    const plaintext = (await schedules.plaintextEventTokens(this.client)).filter((row) => constantTimeEqual(token, row.token)).map((row) => row.id);
    return [...new Set([...sealed, ...plaintext])].sort((a, b) => a - b);
  }

  /**
   * Seals the tokens written in plaintext before tokens were sealed (migration 10 could not: it
   * has no key). Called at start by every process that has the key; returns how many it sealed.
   */
  async sealPlaintextTokens(): Promise<number> {
    const rows = await schedules.plaintextTokens(this.client);
    if (rows.length === 0) return 0;
    const key = await this.#key("sealing the trigger tokens stored in plaintext");
    const sealed = await Promise.all(rows.map(async (r) => ({ ...r, sealed: await sealToken(key, r.token) })));
    return schedules.sealPlaintextTokenRows(this.client, sealed);
  }

  /** A new empty batch stamped with the current time. */
  batch(): WriteBatch {
    return new WriteBatch(this.clock.now());
  }

  /** Commits a batch atomically (group-committed with concurrent ones); then fires runsCreated if the batch made runs ready, runsCancelled if it cancelled some. */
  commit(batch: WriteBatch): Promise<ResultSet[]> {
    const committed = this.#committer.commit(batch);
    const announced = batch.announced;
    const cancelled = batch.cancelledRuns;
    // the engine's many commits announce nothing: they pay for no extra promise
    if (!announced && cancelled.length === 0) return committed;
    return committed.then((results) => {
      if (announced) this.runsCreated.fire(runsCreatedEvent(announced, results));
      if (cancelled.length > 0) this.runsCancelled.fire({ pipelineRunIds: cancelled });
      return results;
    });
  }

  /** Creates a pipeline run the way every origin does (runs/create.ts); null if its (trigger or backfill, date) has one. */
  createPipelineRun(run: pipelineRuns.NewPipelineRun) {
    return createPipelineRun(this, run);
  }
  getPipelineRun(id: number) {
    return pipelineRuns.getPipelineRun(this.client, id);
  }
  listPipelineRuns(filter?: pipelineRuns.PipelineRunFilter, page?: PageRequest) {
    return pipelineRuns.listPipelineRuns(this.client, filter, page);
  }

  /** How many runs match the filter (Mage's metadata.count), O(1) from the run counters where the filter allows. */
  totalPipelineRuns(filter?: pipelineRuns.PipelineRunFilter) {
    return pipelineRuns.totalPipelineRuns(this.client, filter);
  }
  getBlockRuns(pipelineRunId: number) {
    return blockRuns.getBlockRuns(this.client, pipelineRunId);
  }
  /** Block runs per pipeline run, total and completed, for a page of runs. */
  blockRunCounts(pipelineRunIds: readonly number[]) {
    return blockRuns.blockRunCounts(this.client, pipelineRunIds);
  }
  listBlockRuns(pipelineRunId: number, page?: PageRequest) {
    return blockRuns.listBlockRuns(this.client, pipelineRunId, page);
  }
  /** How many block runs the pipeline run has (metadata.count of its block-run list). */
  countBlockRuns(pipelineRunId: number) {
    return blockRuns.countBlockRuns(this.client, pipelineRunId);
  }
  getBlockRun(id: number) {
    return blockRuns.getBlockRun(this.client, id);
  }
  latestCompletedPartitions(pipelineUuid: string, blockUuids: readonly string[]) {
    return blockRuns.latestCompletedPartitions(this.client, pipelineUuid, blockUuids);
  }
  /** Inserts a schedule, its token (if any) sealed. */
  async createPipelineSchedule(schedule: schedules.NewPipelineSchedule) {
    const { token, ...rest } = schedule;
    const sealedToken = token ? await this.sealTriggerToken(token) : null;
    return schedules.createPipelineSchedule(this.client, { ...rest, sealedToken }, this.clock.now());
  }
  listPipelineSchedules(filter?: schedules.PipelineScheduleFilter, page?: PageRequest) {
    return schedules.listPipelineSchedules(this.client, filter, page);
  }
  /** How many schedules match the filter (metadata.count of the trigger lists). */
  countPipelineSchedules(filter?: schedules.PipelineScheduleFilter) {
    return schedules.countPipelineSchedules(this.client, filter);
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
  /** How many users and API keys exist (zero: nobody can sign in yet). */
  credentialCount() {
    return credentialCount(this.client);
  }
}

export { resultSetOf, type SqlClient } from "./sql-client.ts";
export { migrate } from "./migrate.ts";
export { MIGRATIONS, type Migration } from "./migrations/index.ts";
export { pipelineRunFromRow } from "./rows.ts";
export { WriteBatch, LeaseLostError, RunTakenOverError, blockRunSubject, type BlockRunRef, type BlockRunMove, type PipelineRunCondition, type BlockRunPatch, type NewBlockRun, type PipelineRunPatch } from "./write-batch.ts";
export type { NewPipelineRun, PipelineRunFilter, Page } from "./pipeline-runs.ts";
export type { NewPipelineSchedule, PipelineScheduleFilter } from "./schedules.ts";
export * as scheduling from "./scheduling.ts";
export { countedPipelineRuns, scheduleRunCounts, type CountedRunFilter } from "./counters.ts";
export * as backfills from "./backfills.ts";
export { systemStats, type SystemStats, type SchedulerHeartbeat } from "./stats.ts";
export { runOverview, pipelineRunStatuses, OVERVIEW_RECENT_WINDOW, OVERVIEW_CHART_CAP, type RunOverview, type OverviewBucket, type OverviewOptions } from "./overview.ts";
export { currentLeaseToken, recordLease } from "./leases.ts";
export { MAX_PAGE_OFFSET, type PageRequest } from "./page.ts";
export { isDatabaseUnavailable } from "./unavailable.ts";
export type { BackfillRecord, NewBackfill, BackfillFilter, NewBackfillRun } from "./backfills.ts";
export type { ScheduleState, CodeTrigger, RunningCounts } from "./scheduling.ts";
export * as signInAttempts from "./sign-in-attempts.ts";
export { STORE_CONFORMANCE_CASES, runStoreConformance, StoreConformanceError, type StoreConformanceCase, type StoreConformanceHarness, type DefineStoreTest } from "./conformance.ts";
export { NEXT_API_KEY_ID_SQL, apiKeyInsertSql, apiKeyRevokeSql } from "./api-keys.ts";
export { appendBlockLogStatement, blockLogPieces, type BlockLogKey, type BlockLogPiece } from "./block-logs.ts";
export { configureFileConnection, setAutoCheckpoint, PASSIVE_CHECKPOINT_SQL } from "./connection.ts";
