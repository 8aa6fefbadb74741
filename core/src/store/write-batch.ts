/**
 * A set of state changes to commit in one transaction. Each status change is a conditional
 * write followed by a guard: if the write matched no row (someone else moved the record first),
 * the guard raises an SQL error, which aborts and rolls back the whole batch. This keeps the
 * batch a single `client.batch` call: one round trip to a remote libSQL server, and no
 * interactive transaction holding a connection while JavaScript runs.
 */
import type { InStatement, InValue } from "@libsql/client";
import type { BackfillStatus, BlockRunStatus, JsonObject, PipelineRunStatus } from "../domain.ts";
import { BLOCK_RUN_STATUSES } from "../domain.ts";
import { assertTransition, canTransition, type Entity } from "../state-machine.ts";
import { toJson } from "./json.ts";
import { insertNotificationsStatement, type NewNotification } from "./notifications.ts";

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
  /** Builds the error for a refused write when it is not an illegal transition. */
  explain?: (actual: string) => Error;
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

function setClause(patch: object): { sql: string; args: InValue[] } {
  const parts: string[] = [];
  const args: InValue[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const column = COLUMNS[key];
    if (!column) throw new Error(`unknown column for patch key ${key}`);
    parts.push(`${column} = ?`);
    if (key === "metrics" || key === "executorHandle") args.push(value === null ? null : toJson(value));
    else if (typeof value === "boolean") args.push(value ? 1 : 0);
    else args.push(value as InValue);
  }
  return { sql: parts.map((p) => `, ${p}`).join(""), args };
}

/** Describes a block run in messages: `block run load of pipeline run 12`. */
export function blockRunSubject(ref: BlockRunRef): string {
  return `block run ${ref.blockUuid} of pipeline run ${ref.pipelineRunId}`;
}

export class WriteBatch {
  readonly statements: InStatement[] = [];
  readonly guards: Guard[] = [];

  constructor(readonly now: number) {}

  get size(): number {
    return this.statements.length;
  }

  /** A new batch with the same time, statements and guards (to be extended and committed instead). */
  copy(): WriteBatch {
    const copy = new WriteBatch(this.now);
    copy.statements.push(...this.statements);
    copy.guards.push(...this.guards);
    return copy;
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
    this.statements.push({
      sql: `UPDATE pipeline_runs SET status = ?, updated_at = ?${set.sql} WHERE id = ? AND status = ?`,
      args: [to, this.now, ...set.args, id, from],
    });
    this.#guard("pipeline_run", subject, from, to, { sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [id] });
    return this;
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
    return this.failIf(
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

  #requireStatus(table: string, entity: Entity, subject: string, id: number, status: string): this {
    this.statements.push({ sql: `UPDATE ${table} SET updated_at = updated_at WHERE id = ? AND status = ?`, args: [id, status] });
    this.#guard(entity, subject, status, status, { sql: `SELECT status FROM ${table} WHERE id = ?`, args: [id] });
    return this;
  }

  /**
   * Fails the batch if `condition` (an SQL boolean expression) holds at commit time; the guard
   * explains the refusal as an illegal transition, as the other guards do.
   */
  failIf(condition: { sql: string; args: InValue[] }, guard: Omit<Guard, "index">): this {
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

  /** Cancels every block run of a pipeline run that the state machine lets move to cancelled. */
  cancelLiveBlockRuns(pipelineRunId: number, error: string | null = null): this {
    const from = BLOCK_RUN_STATUSES.filter((s) => canTransition("block_run", s, "cancelled"));
    this.statements.push({
      sql: `UPDATE block_runs SET status = 'cancelled', error = coalesce(?, error), completed_at = ?, updated_at = ?
            WHERE pipeline_run_id = ? AND status IN (${from.map(() => "?").join(", ")})`,
      args: [error, this.now, this.now, pipelineRunId, ...from],
    });
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
    // stay far below SQLite's bound-parameter limit
    for (let start = 0; start < blockUuids.length; start += 400) {
      const chunk = blockUuids.slice(start, start + 400);
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

  /** Queues notifications of one event kind, due now: they commit, or roll back, with the batch. */
  insertNotifications(kind: string, entries: readonly NewNotification[]): this {
    const statement = insertNotificationsStatement(kind, entries, this.now);
    if (statement) this.statements.push(statement);
    return this;
  }

  /** Adds a statement of the caller's own. */
  raw(statement: InStatement): number {
    this.statements.push(statement);
    return this.statements.length - 1;
  }
}
