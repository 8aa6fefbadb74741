/**
 * Where a status changes: every move of a pipeline run, block run or backfill is a WriteBatch
 * operation in this file, checked against the state machines (state-machine.ts); no other file
 * writes one of their statuses (store modules only build the inserts and checks it adds).
 *
 * A set of state changes to commit in one transaction. Each status change is a conditional
 * write followed by a guard: if the write matched no row (someone else moved the record first),
 * the guard raises an SQL error, which aborts and rolls back the whole batch. This keeps the
 * batch a single `client.batch` call: one round trip to a remote libSQL server, and no
 * interactive transaction holding a connection while JavaScript runs.
 */
import type { InStatement, InValue } from "@libsql/client";
import type { Backfill, BackfillStatus, BlockRunStatus, JsonObject, PipelineRunStatus, PipelineSchedule } from "../domain.ts";
import { BLOCK_RUN_STATUSES } from "../domain.ts";
import { assertTransition, canTransition, IllegalTransitionError, type Entity } from "../state-machine.ts";
import { MAX_BOUND_PARAMETERS } from "./sql-client.ts";
import { toJson } from "./json.ts";
import { insertNotificationsStatement, type NewNotification } from "./notifications.ts";
import { deleteBlockOutputStatement, putBlockOutputStatement, type BlockOutputKey } from "./block-outputs.ts";
import {
  flagPassedSlaStatement,
  insertAlwaysOnRunStatement,
  insertPipelineRunStatements,
  insertScheduledRunStatement,
  insertSkippedRunStatement,
  type PipelineRunRow,
} from "./pipeline-runs.ts";
import {
  deleteBackfillStatements,
  insertBackfillRunsStatements,
  LIVE_IN,
  liveBackfillRunsCheck,
  runCountCheck,
  unchangedInitialCheck,
  type NewBackfillRun,
} from "./backfills.ts";
import { deactivateScheduleStatement, scheduleProgressStatement, upsertCodeTriggerStatement, type CodeTrigger } from "./scheduling.ts";

/** A run a batch creates and announces: the statement whose returned row is the run, and its trigger as read (null: none). */
export interface AnnouncedRun {
  statement: number;
  schedule?: PipelineSchedule | null;
}

/** What a batch announces once it commits (the store turns it into a RunsCreated). */
export interface Announcement {
  resumed: boolean;
  /** Every run the batch makes ready, when each announcement named its run; null when one did not. */
  created: AnnouncedRun[] | null;
}

/** A block run addressed by its natural key, so a batch can create and move it in one go. */
export interface BlockRunRef {
  pipelineRunId: number;
  blockUuid: string;
}

export interface BlockRunPatch {
  attempt?: number;
  executorType?: string | null;
  executorHandle?: JsonObject | null;
  owner?: string | null;
  error?: string | null;
  metrics?: JsonObject;
  retryAt?: number | null;
  startedAt?: number | null;
  completedAt?: number | null;
}

/** One block run's move in transitionBlockRuns: from `from` to `to`, through `via`. */
export interface BlockRunMove {
  blockUuid: string;
  from: BlockRunStatus;
  to: BlockRunStatus;
  patch?: BlockRunPatch;
  via?: readonly BlockRunStatus[];
}

/** What transitionBlockRuns also requires of the pipeline run at commit: its status, its owner, or both. */
export interface PipelineRunCondition {
  status?: PipelineRunStatus;
  owner?: string;
}

/** A block run to create, in the status (reached through `via`) the batch's moves left it in. */
export interface NewBlockRun {
  blockUuid: string;
  executorType: string | null;
  status: BlockRunStatus;
  via?: readonly BlockRunStatus[];
  patch?: BlockRunPatch;
}

export interface PipelineRunPatch {
  /** The scheduler process executing the run. */
  owner?: string | null;
  metrics?: JsonObject;
  passedSla?: boolean;
  startedAt?: number | null;
  completedAt?: number | null;
}

export interface BackfillPatch {
  startedAt?: number | null;
  completedAt?: number | null;
}

/** What a guard protects, to explain a refused write. */
export interface Guard {
  index: number;
  entity: Entity;
  subject: string;
  from: string;
  to: string;
  /** Reads the record's current status. */
  lookup: InStatement;
  /** Builds the error for a refused write when it is not an illegal transition (`row`: what the lookup read). */
  explain?: (actual: string, row: Readonly<Record<string, unknown>> | undefined) => Error;
}

/** A condition that fails a batch when it holds at commit time, and the guard that explains the refusal. */
export interface FailCheck {
  condition: { sql: string; args: InValue[] };
  guard: Omit<Guard, "index">;
}

/** A write refused because the scheduler no longer holds the lease it was made under. */
/** The pipeline run was taken over by another scheduler: this one must stop driving it. */
export class RunTakenOverError extends Error {
  constructor(
    readonly pipelineRunId: number,
    readonly owner: string,
  ) {
    super(`pipeline run ${pipelineRunId} was taken over by ${owner}`);
    this.name = "RunTakenOverError";
  }
}

export class LeaseLostError extends Error {
  constructor(
    readonly lease: string,
    readonly token: number,
    actual: string,
  ) {
    super(`lease ${lease}: token ${token} is no longer current (${actual}); the write was not made`);
    this.name = "LeaseLostError";
  }
}

// json('...') of a non-JSON string is an SQL error; SQLite has no RAISE outside triggers.
const FAIL_SQL = "json('kiln: conditional write matched no row')";
const GUARD_SQL = `SELECT CASE WHEN changes() = 1 THEN 1 ELSE ${FAIL_SQL} END`;

const COLUMNS: Record<string, string> = {
  attempt: "attempt",
  executorType: "executor_type",
  executorHandle: "executor_handle",
  owner: "owner",
  error: "error",
  metrics: "metrics",
  retryAt: "retry_at",
  startedAt: "started_at",
  completedAt: "completed_at",
  passedSla: "passed_sla",
};

/** A patch value as its column stores it (JSON for metrics and handles, 0/1 for flags). */
function columnValue(key: string, value: unknown): InValue {
  if (value === undefined || value === null) return null;
  if (key === "metrics" || key === "executorHandle") return toJson(value as JsonObject);
  if (typeof value === "boolean") return value ? 1 : 0;
  return value as InValue;
}

function setClause(patch: object): { sql: string; args: InValue[] } {
  const parts: string[] = [];
  const args: InValue[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const column = COLUMNS[key];
    if (!column) throw new Error(`unknown column for patch key ${key}`);
    parts.push(`${column} = ?`);
    args.push(columnValue(key, value));
  }
  return { sql: parts.map((p) => `, ${p}`).join(""), args };
}

/** The block-run columns a created row can carry from its patch (insertBlockRunsAs). */
const INSERTED_PATCH_KEYS: ReadonlyArray<keyof BlockRunPatch> = [
  "attempt",
  "executorType",
  "executorHandle",
  "owner",
  "error",
  "metrics",
  "retryAt",
  "startedAt",
  "completedAt",
];

/** Describes a block run in messages: `block run load of pipeline run 12`. */
export function blockRunSubject(ref: BlockRunRef): string {
  return `block run ${ref.blockUuid} of pipeline run ${ref.pipelineRunId}`;
}


export class WriteBatch {
  readonly statements: InStatement[] = [];
  readonly guards: Guard[] = [];
  #announced: Announcement | null = null;
  readonly #cancelledRuns = new Set<number>();

  constructor(readonly now: number) {}

  get size(): number {
    return this.statements.length;
  }

  /** A new batch with the same time, statements and guards (to be extended and committed instead). */
  copy(): WriteBatch {
    const copy = new WriteBatch(this.now);
    copy.statements.push(...this.statements);
    copy.guards.push(...this.guards);
    if (this.#announced) copy.#announced = { resumed: this.#announced.resumed, created: this.#announced.created && [...this.#announced.created] };
    for (const id of this.#cancelledRuns) copy.#cancelledRuns.add(id);
    return copy;
  }

  /**
   * Marks the batch as making runs ready to start: once it commits, the store fires its "runs
   * created" signal (a co-located scheduler starts them now). `resumed`: runs were put back to
   * running with no owner, which the scheduler resumes too. `created`: the statement whose
   * returned row is a run this batch creates, with its trigger as read (see RunsCreated.runs);
   * a batch that announces runs without naming them all names none.
   */
  announceRuns(options: { resumed?: boolean; created?: AnnouncedRun } = {}): this {
    const before = this.#announced;
    const created = options.created && (!before || before.created) ? [...(before?.created ?? []), options.created] : null;
    this.#announced = { resumed: Boolean(options.resumed) || (before?.resumed ?? false), created };
    return this;
  }

  /** What the store's signal tells its listeners after this batch commits; null when it made no run ready. */
  get announced(): Announcement | null {
    return this.#announced;
  }

  /** The pipeline runs whose live block runs this batch cancels (the store's "runs cancelled" signal names them once it commits). */
  get cancelledRuns(): number[] {
    return [...this.#cancelledRuns];
  }

  #guard(entity: Entity, subject: string, from: string, to: string, lookup: InStatement, explain?: Guard["explain"]): void {
    this.statements.push(GUARD_SQL);
    this.guards.push({ index: this.statements.length - 1, entity, subject, from, to, lookup, ...(explain ? { explain } : {}) });
  }

  /** Moves a pipeline run from `from` to `to`, failing the batch if it is not in `from`. */
  transitionPipelineRun(id: number, from: PipelineRunStatus, to: PipelineRunStatus, patch: PipelineRunPatch = {}): this {
    const subject = `pipeline run ${id}`;
    assertTransition("pipeline_run", subject, from, to);
    const set = setClause(patch);
    const lookup = { sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [id] };
    if (from === "initial") {
      // an initial run may be gone (a backfill's reset deletes its initial runs): a guard after
      // the write fails the batch when it matched no row
      this.statements.push({
        sql: `UPDATE pipeline_runs SET status = ?, updated_at = ?${set.sql} WHERE id = ? AND status = ?`,
        args: [to, this.now, ...set.args, id, from],
      });
      this.#guard("pipeline_run", subject, from, to, lookup);
      return this;
    }
    // a run past initial is never deleted: the status check folds into the write, as a block
    // run's does (one statement instead of two on every run's end)
    this.statements.push({
      sql: `UPDATE pipeline_runs SET status = CASE WHEN status = ? THEN ? ELSE ${FAIL_SQL} END, updated_at = ?${set.sql} WHERE id = ?`,
      args: [from, to, this.now, ...set.args, id],
    });
    this.guards.push({ index: this.statements.length - 1, entity: "pipeline_run", subject, from, to, lookup });
    return this;
  }

  /**
   * Ends a pipeline run as transitionPipelineRun moves it (from a status past initial), the write
   * returning the row as it leaves it: the caller has the ended run without reading it again.
   * Returns the index of that statement among the batch's (its result's first row is the run).
   */
  endPipelineRun(id: number, from: Exclude<PipelineRunStatus, "initial">, to: PipelineRunStatus, patch: PipelineRunPatch = {}): number {
    this.transitionPipelineRun(id, from, to, patch);
    const index = this.statements.length - 1;
    const statement = this.statements[index] as { sql: string; args: InValue[] };
    this.statements[index] = { sql: `${statement.sql} RETURNING *`, args: statement.args };
    return index;
  }

  /** Fails the batch unless the pipeline run is still in `status` (e.g. not cancelled meanwhile). */
  requirePipelineRunStatus(id: number, status: PipelineRunStatus): this {
    return this.#requireStatus("pipeline_runs", "pipeline_run", `pipeline run ${id}`, id, status);
  }

  /**
   * Fails the batch unless the pipeline run is still owned by `owner`: a scheduler whose run
   * was taken over (it was presumed dead) cannot launch or end anything in it any more.
   */
  requirePipelineRunOwner(id: number, owner: string): this {
    return this.#failIf(
      { sql: "(SELECT owner FROM pipeline_runs WHERE id = ?) IS NOT ?", args: [id, owner] },
      {
        entity: "pipeline_run",
        subject: `pipeline run ${id}`,
        from: "running",
        to: "running",
        lookup: { sql: "SELECT coalesce(owner, 'no owner') AS status FROM pipeline_runs WHERE id = ?", args: [id] },
        explain: (actual) => new RunTakenOverError(id, actual),
      },
    );
  }

  /** Fails the batch unless the backfill is still in `status`. */
  requireBackfillStatus(id: number, status: BackfillStatus): this {
    return this.#requireStatus("backfills", "backfill", `backfill ${id}`, id, status);
  }

  /**
   * Fails the batch unless the pipeline run is still in `status` and owned by `owner`, in one
   * read: the two guards a step that launches block runs needs (a refusal names the status
   * first, as requirePipelineRunStatus would, then the owner, as requirePipelineRunOwner would).
   */
  requirePipelineRunStatusAndOwner(id: number, status: PipelineRunStatus, owner: string): this {
    return this.#failIf(
      { sql: "NOT EXISTS (SELECT 1 FROM pipeline_runs WHERE id = ? AND status = ? AND owner IS ?)", args: [id, status, owner] },
      {
        entity: "pipeline_run",
        subject: `pipeline run ${id}`,
        from: status,
        to: status,
        lookup: { sql: "SELECT status, coalesce(owner, 'no owner') AS owner FROM pipeline_runs WHERE id = ?", args: [id] },
        explain: (actual, row) =>
          row === undefined || actual !== status
            ? new IllegalTransitionError("pipeline_run", `pipeline run ${id}`, status, status, actual)
            : new RunTakenOverError(id, String(row.owner)),
      },
    );
  }

  // a read, not a no-op UPDATE: a guard that writes nothing dirties no page (and no WAL frame)
  #requireStatus(table: string, entity: Entity, subject: string, id: number, status: string): this {
    return this.#failIf(
      { sql: `(SELECT status FROM ${table} WHERE id = ?) IS NOT ?`, args: [id, status] },
      { entity, subject, from: status, to: status, lookup: { sql: `SELECT status FROM ${table} WHERE id = ?`, args: [id] } },
    );
  }

  /**
   * Fails the batch if `condition` (an SQL boolean expression) holds at commit time; the guard
   * explains the refusal as an illegal transition, as the other guards do.
   */
  #failIf(condition: { sql: string; args: InValue[] }, guard: Omit<Guard, "index">): this {
    this.statements.push({ sql: `SELECT CASE WHEN ${condition.sql} THEN ${FAIL_SQL} ELSE 1 END`, args: condition.args });
    this.guards.push({ index: this.statements.length - 1, ...guard });
    return this;
  }

  /**
   * Fails the batch unless `token` is still the newest fencing token recorded for lease `name`:
   * a scheduler that lost its lease (paused, partitioned) cannot write over its successor.
   */
  requireLease(name: string, token: number): this {
    this.statements.push({ sql: "UPDATE leases SET expires_at = expires_at WHERE name = ? AND token = ?", args: [name, token] });
    this.#guard(
      "pipeline_run",
      `lease ${name}`,
      String(token),
      String(token),
      { sql: "SELECT 'token ' || token || ' is current' AS status FROM leases WHERE name = ?", args: [name] },
      (actual) => new LeaseLostError(name, token, actual),
    );
    return this;
  }

  /**
   * Takes over a running pipeline run from `fromOwner` (a scheduler that stopped), failing the
   * batch if another process took it first.
   */
  takeOverPipelineRun(id: number, fromOwner: string | null, toOwner: string): this {
    this.statements.push({
      sql: "UPDATE pipeline_runs SET owner = ?, updated_at = ? WHERE id = ? AND status = 'running' AND owner IS ?",
      args: [toOwner, this.now, id, fromOwner],
    });
    this.#guard("pipeline_run", `pipeline run ${id}`, "running", "running", {
      sql: "SELECT status FROM pipeline_runs WHERE id = ?",
      args: [id],
    });
    return this;
  }

  /**
   * Moves a block run from `from` to `to` (through the statuses in `via`, each hop checked, in
   * one write), failing the batch if it is not in `from`. The guard is folded into the update:
   * block runs are the bulk of all writes, and half the statements is the difference that shows.
   * (The row must exist: the engine creates block runs before it moves them.)
   */
  transitionBlockRun(ref: BlockRunRef, from: BlockRunStatus, to: BlockRunStatus, patch: BlockRunPatch = {}, via: readonly BlockRunStatus[] = []): this {
    const subject = blockRunSubject(ref);
    let at = from;
    for (const next of [...via, to]) {
      assertTransition("block_run", subject, at, next);
      at = next;
    }
    const set = setClause(patch);
    this.statements.push({
      sql: `UPDATE block_runs SET status = CASE WHEN status = ? THEN ? ELSE ${FAIL_SQL} END, updated_at = ?${set.sql}
            WHERE pipeline_run_id = ? AND block_uuid = ?`,
      args: [from, to, this.now, ...set.args, ref.pipelineRunId, ref.blockUuid],
    });
    this.guards.push({
      index: this.statements.length - 1,
      entity: "block_run",
      subject,
      from,
      to,
      lookup: { sql: "SELECT status FROM block_runs WHERE pipeline_run_id = ? AND block_uuid = ?", args: [ref.pipelineRunId, ref.blockUuid] },
    });
    return this;
  }

  /**
   * Moves several block runs of one pipeline run (each from its `from`, through its `via`, each
   * hop checked) in one write, failing the batch if any is not in its `from`: a run engine step
   * that completes a block run and claims the next makes one statement, not two. `run`: the
   * write also fails unless the pipeline run is in `run.status` and owned by `run.owner` at
   * commit (the guards a step that launches block runs needs, folded in: no statement of their
   * own). A refusal names the pipeline run when it is the run that moved, else the first block
   * run found out of its `from`. (The rows must exist, as for transitionBlockRun.)
   */
  transitionBlockRuns(pipelineRunId: number, moves: readonly BlockRunMove[], run: PipelineRunCondition = {}): this {
    const first = moves[0];
    if (!first) return this;
    const conditioned = run.status !== undefined || run.owner !== undefined;
    if (moves.length === 1 && !conditioned) return this.transitionBlockRun({ pipelineRunId, blockUuid: first.blockUuid }, first.from, first.to, first.patch, first.via);
    for (const move of moves) {
      const subject = blockRunSubject({ pipelineRunId, blockUuid: move.blockUuid });
      let at = move.from;
      for (const next of [...(move.via ?? []), move.to]) {
        assertTransition("block_run", subject, at, next);
        at = next;
      }
    }
    const args: InValue[] = [];
    // the pipeline run's condition, checked in the write of the status
    let runCheck = "";
    if (conditioned) {
      const parts = ["id = ?"];
      args.push(pipelineRunId);
      if (run.status !== undefined) {
        parts.push("status = ?");
        args.push(run.status);
      }
      if (run.owner !== undefined) {
        parts.push("owner IS ?");
        args.push(run.owner);
      }
      runCheck = `WHEN NOT EXISTS (SELECT 1 FROM pipeline_runs WHERE ${parts.join(" AND ")}) THEN ${FAIL_SQL} `;
    }
    const statusCases = moves.map((move) => {
      args.push(move.blockUuid, move.from, move.to);
      return `WHEN block_uuid = ? AND status = ? THEN ?`;
    });
    let sql = `UPDATE block_runs SET status = CASE ${runCheck}${statusCases.join(" ")} ELSE ${FAIL_SQL} END, updated_at = ?`;
    args.push(this.now);
    // each column a move sets, per row; the others keep their value
    const keys = new Set<string>();
    for (const move of moves) for (const [key, value] of Object.entries(move.patch ?? {})) if (value !== undefined) keys.add(key);
    for (const key of keys) {
      const column = COLUMNS[key];
      if (!column) throw new Error(`unknown column for patch key ${key}`);
      const cases: string[] = [];
      for (const move of moves) {
        const value = (move.patch as Record<string, unknown> | undefined)?.[key];
        if (value === undefined) continue;
        cases.push("WHEN ? THEN ?");
        args.push(move.blockUuid, columnValue(key, value));
      }
      sql += `, ${column} = CASE block_uuid ${cases.join(" ")} ELSE ${column} END`;
    }
    sql += ` WHERE pipeline_run_id = ? AND block_uuid IN (${moves.map(() => "?").join(", ")})`;
    args.push(pipelineRunId, ...moves.map((m) => m.blockUuid));
    this.statements.push({ sql, args });
    const uuids = moves.map((m) => m.blockUuid);
    this.guards.push({
      index: this.statements.length - 1,
      entity: "block_run",
      subject: blockRunSubject({ pipelineRunId, blockUuid: first.blockUuid }),
      from: first.from,
      to: first.to,
      lookup: {
        sql: `SELECT (SELECT json_group_object(block_uuid, status) FROM block_runs WHERE pipeline_run_id = ? AND block_uuid IN (${uuids.map(() => "?").join(", ")})) AS status,
                     (SELECT status FROM pipeline_runs WHERE id = ?) AS run_status,
                     (SELECT coalesce(owner, 'no owner') FROM pipeline_runs WHERE id = ?) AS owner`,
        args: [pipelineRunId, ...uuids, pipelineRunId, pipelineRunId],
      },
      explain: (actual, row) => {
        const runStatus = row?.run_status === null || row?.run_status === undefined ? "missing" : String(row.run_status);
        const runSubject = `pipeline run ${pipelineRunId}`;
        if (run.status !== undefined && runStatus !== run.status) return new IllegalTransitionError("pipeline_run", runSubject, run.status, run.status, runStatus);
        if (run.owner !== undefined && runStatus === "missing") return new IllegalTransitionError("pipeline_run", runSubject, "running", "running", runStatus);
        if (run.owner !== undefined && String(row?.owner) !== run.owner) return new RunTakenOverError(pipelineRunId, String(row?.owner));
        let stored: Record<string, string> = {};
        try {
          stored = JSON.parse(actual) as Record<string, string>;
        } catch {
          // no block run rows at all: each is missing
        }
        const moved = moves.find((m) => (stored[m.blockUuid] ?? "missing") !== m.from) ?? first;
        return new IllegalTransitionError("block_run", blockRunSubject({ pipelineRunId, blockUuid: moved.blockUuid }), moved.from, moved.to, stored[moved.blockUuid] ?? "missing");
      },
    });
    return this;
  }

  /** Cancels every block run of a pipeline run that the state machine lets move to cancelled. */
  cancelLiveBlockRuns(pipelineRunId: number, error: string | null = null): this {
    const from = BLOCK_RUN_STATUSES.filter((s) => canTransition("block_run", s, "cancelled"));
    this.statements.push({
      sql: `UPDATE block_runs SET status = 'cancelled', error = coalesce(?, error), completed_at = ?, updated_at = ?
            WHERE pipeline_run_id = ? AND status IN (${from.map(() => "?").join(", ")})`,
      args: [error, this.now, this.now, pipelineRunId, ...from],
    });
    this.#cancelledRuns.add(pipelineRunId);
    return this;
  }

  /** Deletes a block run if it is still in `status` (a retry removes a fan-out's per-item runs, to be made again). */
  deleteBlockRun(id: number, status: BlockRunStatus): this {
    this.statements.push({ sql: "DELETE FROM block_runs WHERE id = ? AND status = ?", args: [id, status] });
    return this;
  }

  /** Changes a block run's fields other than its status. */
  patchBlockRun(ref: BlockRunRef, patch: BlockRunPatch): this {
    const set = setClause(patch);
    this.statements.push({
      sql: `UPDATE block_runs SET updated_at = ?${set.sql} WHERE pipeline_run_id = ? AND block_uuid = ?`,
      args: [this.now, ...set.args, ref.pipelineRunId, ref.blockUuid],
    });
    return this;
  }

  /** Moves a backfill from `from` to `to`, failing the batch if it is not in `from`. */
  transitionBackfill(id: number, from: BackfillStatus, to: BackfillStatus, patch: BackfillPatch = {}): this {
    const subject = `backfill ${id}`;
    assertTransition("backfill", subject, from, to);
    const set = setClause(patch);
    this.statements.push({
      sql: `UPDATE backfills SET status = ?, updated_at = ?${set.sql} WHERE id = ? AND status = ?`,
      args: [to, this.now, ...set.args, id, from],
    });
    this.#guard("backfill", subject, from, to, { sql: "SELECT status FROM backfills WHERE id = ?", args: [id] });
    return this;
  }

  /**
   * Creates block runs in `initial` (an existing one is left as it is, so a resumed run can ask
   * again). Returns the index of the statement whose rows are the new runs' ids.
   */
  insertBlockRuns(pipelineRunId: number, blockUuids: readonly string[], executorTypes?: ReadonlyMap<string, string>): number[] {
    const indexes: number[] = [];
    const chunkSize = Math.floor(MAX_BOUND_PARAMETERS / 5);
    for (let start = 0; start < blockUuids.length; start += chunkSize) {
      const chunk = blockUuids.slice(start, start + chunkSize);
      const args: InValue[] = [];
      for (const uuid of chunk) args.push(pipelineRunId, uuid, executorTypes?.get(uuid) ?? null, this.now, this.now);
      this.statements.push({
        sql:
          "INSERT INTO block_runs (pipeline_run_id, block_uuid, executor_type, created_at, updated_at) VALUES " +
          chunk.map(() => "(?, ?, ?, ?, ?)").join(", ") +
          " ON CONFLICT (pipeline_run_id, block_uuid) DO NOTHING RETURNING id, block_uuid",
        args,
      });
      indexes.push(this.statements.length - 1);
    }
    return indexes;
  }

  /**
   * Creates block runs already in the status this batch's moves take them to (a run's first
   * block initial -> queued -> running as the run starts): one insert, instead of an insert and
   * then a conditional write per moved row. Each row's path from initial (`via`, then `status`)
   * is checked against the state machine as transitionBlockRun checks it. A row that exists
   * already fails the batch, unless it was to be created initial: that one is left as it is, as
   * insertBlockRuns leaves it. Returns the indexes of the statements whose rows are the new ids.
   */
  insertBlockRunsAs(pipelineRunId: number, rows: ReadonlyArray<NewBlockRun>): number[] {
    const indexes: number[] = [];
    const perRow = 5 + INSERTED_PATCH_KEYS.length;
    const chunkSize = Math.max(1, Math.floor(MAX_BOUND_PARAMETERS / perRow));
    const columns = ["pipeline_run_id", "block_uuid", "status", "created_at", "updated_at", ...INSERTED_PATCH_KEYS.map((key) => COLUMNS[key]!)];
    const placeholders = `(${columns.map(() => "?").join(", ")})`;
    for (let start = 0; start < rows.length; start += chunkSize) {
      const chunk = rows.slice(start, start + chunkSize);
      const args: InValue[] = [];
      for (const row of chunk) {
        let at: BlockRunStatus = "initial";
        for (const next of [...(row.via ?? []), row.status]) {
          if (next === "initial" && at === "initial") continue;
          assertTransition("block_run", blockRunSubject({ pipelineRunId, blockUuid: row.blockUuid }), at, next);
          at = next;
        }
        args.push(pipelineRunId, row.blockUuid, row.status, this.now, this.now);
        // the columns' defaults, under what the moves set (a key set to undefined sets nothing, as in setClause)
        const patch: BlockRunPatch = { attempt: 1, metrics: {}, executorType: row.executorType };
        for (const [key, value] of Object.entries(row.patch ?? {})) if (value !== undefined) Object.assign(patch, { [key]: value });
        for (const key of INSERTED_PATCH_KEYS) args.push(columnValue(key, patch[key]));
      }
      this.statements.push({
        sql:
          `INSERT INTO block_runs (${columns.join(", ")}) VALUES ${chunk.map(() => placeholders).join(", ")}` +
          ` ON CONFLICT (pipeline_run_id, block_uuid) DO UPDATE SET status = CASE WHEN excluded.status = 'initial' THEN block_runs.status ELSE ${FAIL_SQL} END` +
          " RETURNING id, block_uuid",
        args,
      });
      indexes.push(this.statements.length - 1);
    }
    return indexes;
  }

  /** Inserts a pipeline run in `initial`; returns the index of the statement whose rows are the new run (none if it existed). */
  insertPipelineRun(run: PipelineRunRow): number {
    this.statements.push(...insertPipelineRunStatements(run, this.now));
    return this.statements.length - 1;
  }

  /**
   * Inserts a backfill's runs (a date whose run was superseded by a newer one is skipped);
   * returns the indexes of the statements whose returned rows add up to the runs created.
   */
  insertBackfillRuns(backfill: Pick<Backfill, "id" | "pipelineUuid" | "variables" | "blockUuid">, runs: readonly NewBackfillRun[]): number[] {
    const indexes: number[] = [];
    for (const statement of insertBackfillRunsStatements(backfill, runs, this.now)) {
      this.statements.push(statement);
      indexes.push(this.statements.length - 1);
    }
    return indexes;
  }

  /** Inserts a time trigger's run for a date (a no-op if the date has one); returns the statement whose rows are the run created. */
  insertScheduledRun(run: { pipelineUuid: string; pipelineScheduleId: number; executionDate: number; executionPartition: string }): number {
    this.statements.push(insertScheduledRunStatement(run, this.now));
    return this.statements.length - 1;
  }

  /** Records a date a policy passed over as a cancelled run saying why (a no-op if the date has a run). */
  insertSkippedRun(run: { pipelineUuid: string; pipelineScheduleId: number; executionDate: number; executionPartition: string; reason: string }): this {
    this.statements.push(insertSkippedRunStatement(run, this.now));
    return this;
  }

  /** Inserts an @always_on trigger's next run unless it has a live one at commit time; returns the statement whose rows are the run created. */
  insertAlwaysOnRun(run: { pipelineUuid: string; pipelineScheduleId: number; executionDate: number; executionPartition: string }): number {
    this.statements.push(insertAlwaysOnRunStatement(run, this.now));
    return this.statements.length - 1;
  }

  /**
   * Inserts or updates a trigger from triggers.yaml; `nextRunAt` set means "evaluate it now";
   * `rearm` forgets how far it got (an @once whose start_time changed fires again).
   */
  upsertCodeTrigger(trigger: CodeTrigger, options: { lastEnabledAt: number | null; nextRunAt: number | null; rearm?: boolean }): this {
    this.statements.push(upsertCodeTriggerStatement(trigger, this.now, options.lastEnabledAt, options.nextRunAt, options.rearm ?? false));
    return this;
  }

  /** Switches a trigger off (a code trigger whose entry left triggers.yaml). */
  deactivateSchedule(id: number): this {
    this.statements.push(deactivateScheduleStatement(id, this.now));
    return this;
  }

  /** Records what a tick decided for a trigger: when to look again, how far it has got (null: no new date), or why it cannot run. */
  recordScheduleProgress(scheduleId: number, progress: { nextRunAt: number | null; lastExecutionDate: number | null; invalidReason?: string | null }): this {
    this.statements.push(scheduleProgressStatement(scheduleId, progress.nextRunAt, progress.lastExecutionDate, progress.invalidReason ?? null, this.now));
    return this;
  }

  /**
   * Flags a live run as past its SLA, failing the batch if it was flagged already: when several
   * schedulers see one breach, only the batch that set the flag commits (with its notification).
   */
  flagPassedSla(id: number): this {
    this.statements.push(flagPassedSlaStatement(id, this.now));
    this.#guard("pipeline_run", `pipeline run ${id}`, "running", "running", {
      sql: "SELECT CASE WHEN passed_sla = 1 THEN 'flagged past its SLA by another scheduler' ELSE status END AS status FROM pipeline_runs WHERE id = ?",
      args: [id],
    });
    return this;
  }

  /**
   * Stores a block's output (its JSON text) as a row, committed with the rest of the batch: an
   * in-process block run's small output rides on the write that records its completion.
   */
  putBlockOutput(key: BlockOutputKey, json: string, sizeBytes: number): this {
    this.statements.push(putBlockOutputStatement(key, json, sizeBytes, this.now));
    return this;
  }

  /** Deletes a block's output row (its newer output is a file, which the row would shadow). */
  deleteBlockOutput(key: BlockOutputKey): this {
    this.statements.push(deleteBlockOutputStatement(key));
    return this;
  }

  /** Queues notifications of one event kind, due now: they commit, or roll back, with the batch. */
  insertNotifications(kind: string, entries: readonly NewNotification[]): this {
    const statement = insertNotificationsStatement(kind, entries, this.now);
    if (statement) this.statements.push(statement);
    return this;
  }

  /**
   * Deletes a backfill still in `status` (never a running one), detaching its runs (they stay,
   * with no backfill) and deleting the ones a start that never finished staged; fails the batch
   * if the backfill moved meanwhile.
   */
  deleteBackfill(id: number, status: BackfillStatus): this {
    const { statements, check } = deleteBackfillStatements(id, status);
    this.statements.push(...statements);
    return this.#failIf(check.condition, check.guard);
  }

  /** Fails the batch unless the backfill is still initial and unchanged since it was read (its updated_at). */
  requireBackfillUnchangedInitial(id: number, updatedAt: number): this {
    const check = unchangedInitialCheck(id, updatedAt);
    return this.#failIf(check.condition, check.guard);
  }

  /** Fails the batch unless the backfill has exactly `count` runs (every date staged, none twice). */
  requireBackfillRunCount(id: number, count: number): this {
    const check = runCountCheck(id, count);
    return this.#failIf(check.condition, check.guard);
  }

  /** Fails the batch if the backfill has an initial or running run (it is never settled while a retry's runs wait). */
  requireNoLiveBackfillRuns(id: number, from: BackfillStatus, to: BackfillStatus): this {
    const check = liveBackfillRunsCheck(id, from, to);
    return this.#failIf(check.condition, check.guard);
  }

  /**
   * Cancels every initial or running run of the backfill, whatever they are at commit time;
   * returns the index of the statement whose rows are the ids of the runs it cancelled.
   */
  cancelBackfillRuns(backfillId: number): number {
    // one statement for all: the statuses the state machine lets move to cancelled (LIVE_IN)
    this.statements.push({
      sql: `UPDATE pipeline_runs SET status = 'cancelled', completed_at = ?, updated_at = ?
            WHERE backfill_id = ? AND status IN (${LIVE_IN}) RETURNING id`,
      args: [this.now, this.now, backfillId],
    });
    return this.statements.length - 1;
  }
}
