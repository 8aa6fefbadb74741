/** Store operations on pipeline schedules (triggers). The scheduler adds more. */
import type { InValue } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";
import type { JsonObject, PipelineSchedule, ScheduleSettings } from "../domain.ts";
import { KilnError } from "../errors.ts";
import { pipelineScheduleFromRow } from "./rows.ts";
import { toJson } from "./json.ts";
import { countRows, listPage, type Page, type PageRequest, type RowFilter } from "./page.ts";
import type { SealedToken } from "../trigger-tokens.ts";

/** The trigger fields a new schedule may give and a patch may change (all but the name, type and pattern). */
type ScheduleFields = Partial<Pick<PipelineSchedule, "scheduleInterval" | "startTime" | "timezone" | "status" | "variables" | "sla" | "description" | "tags">>;

export interface NewPipelineSchedule extends Pick<PipelineSchedule, "name" | "pipelineUuid" | "scheduleType">, ScheduleFields {
  /** The API or event trigger's token, in plaintext: Store.createPipelineSchedule seals it. */
  token?: string | null;
  settings?: ScheduleSettings;
  /** Event triggers only; see events/match.ts. */
  eventPattern?: JsonObject | null;
}

/** A new schedule as it is written: its token sealed (trigger-tokens.ts), never in plaintext. */
export type SealedNewPipelineSchedule = Omit<NewPipelineSchedule, "token"> & { sealedToken?: SealedToken | null };

/** Inserts a schedule; (pipeline_uuid, name) is unique: a taken name is a KilnError (conflict) on `name`. */
export async function createPipelineSchedule(client: SqlClient, s: SealedNewPipelineSchedule, now: number): Promise<PipelineSchedule> {
  const status = s.status ?? "inactive";
  const rs = await client.execute({
    sql: `INSERT INTO pipeline_schedules (name, pipeline_uuid, schedule_type, schedule_interval, start_time, timezone, status,
            variables, sla, token_sealed, token_digest, settings, description, event_pattern, last_enabled_at, tags, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (pipeline_uuid, name) DO NOTHING RETURNING *`,
    args: [
      s.name,
      s.pipelineUuid,
      s.scheduleType,
      s.scheduleInterval ?? null,
      s.startTime ?? null,
      s.timezone ?? "UTC",
      status,
      toJson(s.variables),
      s.sla ?? null,
      s.sealedToken?.sealed ?? null,
      s.sealedToken?.digest ?? null,
      toJson(s.settings),
      s.description ?? null,
      s.eventPattern ? JSON.stringify(s.eventPattern) : null,
      status === "active" ? now : null,
      JSON.stringify(s.tags ?? []),
      now,
      now,
    ] as InValue[],
  });
  const row = rs.rows[0];
  // no row: the name was taken (another unique column, the token, still raises)
  if (!row) throw new KilnError("conflict", `pipeline ${s.pipelineUuid} has a trigger named ${s.name} already`, "name");
  return pipelineScheduleFromRow(row);
}

/** One schedule by id, or null. */
export async function getPipelineSchedule(client: SqlClient, id: number): Promise<PipelineSchedule | null> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE id = ?", args: [id] });
  return rs.rows[0] ? pipelineScheduleFromRow(rs.rows[0]) : null;
}

export interface SchedulePatch extends Partial<Pick<PipelineSchedule, "name" | "scheduleType" | "eventPattern" | "lastEnabledAt">>, ScheduleFields {
  /** A new token, sealed (null: none); the plaintext of an unsealed row goes with it. */
  sealedToken?: SealedToken | null;
  settings?: JsonObject;
  /** Set to make the scheduler look at the schedule again at its next tick. */
  nextRunAt?: number | null;
  /** null re-arms an @once trigger whose start_time changed (it fires again). */
  lastExecutionDate?: number | null;
}

const SCHEDULE_COLUMNS: Record<Exclude<keyof SchedulePatch, "sealedToken">, string> = {
  name: "name",
  scheduleType: "schedule_type",
  scheduleInterval: "schedule_interval",
  startTime: "start_time",
  timezone: "timezone",
  status: "status",
  variables: "variables",
  sla: "sla",
  settings: "settings",
  description: "description",
  eventPattern: "event_pattern",
  lastEnabledAt: "last_enabled_at",
  tags: "tags",
  nextRunAt: "next_run_at",
  lastExecutionDate: "last_execution_date",
};

/** Changes a schedule's fields; returns the updated schedule, or null if there is none. */
export async function updatePipelineSchedule(client: SqlClient, id: number, patch: SchedulePatch, now: number): Promise<PipelineSchedule | null> {
  const sets: string[] = ["updated_at = ?"];
  const args: InValue[] = [now];
  for (const [key, value] of Object.entries(patch) as Array<[keyof SchedulePatch, unknown]>) {
    if (value === undefined) continue;
    if (key === "sealedToken") {
      const sealed = value as SealedToken | null;
      sets.push("token = NULL", "token_sealed = ?", "token_digest = ?");
      args.push(sealed?.sealed ?? null, sealed?.digest ?? null);
      continue;
    }
    sets.push(`${SCHEDULE_COLUMNS[key]} = ?`);
    args.push(key === "variables" || key === "settings" ? toJson(value) : key === "tags" ? JSON.stringify(value) : key === "eventPattern" ? (value === null ? null : JSON.stringify(value)) : (value as InValue));
  }
  const rs = await client.execute({ sql: `UPDATE pipeline_schedules SET ${sets.join(", ")} WHERE id = ? RETURNING *`, args: [...args, id] });
  return rs.rows[0] ? pipelineScheduleFromRow(rs.rows[0]) : null;
}

/** Deletes a schedule (its runs stay, detached); true if there was one. */
export async function deletePipelineSchedule(client: SqlClient, id: number): Promise<boolean> {
  const rs = await client.execute({ sql: "DELETE FROM pipeline_schedules WHERE id = ?", args: [id] });
  return rs.rowsAffected > 0;
}

/** Active schedules, optionally of some pipelines only, by id. */
export async function activeSchedules(client: SqlClient, pipelineUuids?: readonly string[]): Promise<PipelineSchedule[]> {
  const filter = pipelineUuids && pipelineUuids.length > 0 ? ` AND pipeline_uuid IN (${pipelineUuids.map(() => "?").join(", ")})` : "";
  const rs = await client.execute({
    sql: `SELECT * FROM pipeline_schedules WHERE status = 'active'${filter} ORDER BY id`,
    args: pipelineUuids ? [...pipelineUuids] : [],
  });
  return rs.rows.map(pipelineScheduleFromRow);
}

export interface PipelineScheduleFilter {
  pipelineUuid?: string;
  status?: string;
  scheduleType?: string;
  /** Any of these tags (Mage's `tag[]`). */
  tags?: readonly string[];
  /** Only triggers with an event pattern (Mage's event matchers). */
  withEventPattern?: boolean;
}

/** The filter as SQL conditions, shared by the page and its total. */
function scheduleConditions(filter: PipelineScheduleFilter): RowFilter {
  const where: string[] = [];
  const args: InValue[] = [];
  if (filter.pipelineUuid !== undefined) (where.push("pipeline_uuid = ?"), args.push(filter.pipelineUuid));
  if (filter.status !== undefined) (where.push("status = ?"), args.push(filter.status));
  if (filter.scheduleType !== undefined) (where.push("schedule_type = ?"), args.push(filter.scheduleType));
  if (filter.tags !== undefined && filter.tags.length > 0) {
    where.push(`EXISTS (SELECT 1 FROM json_each(pipeline_schedules.tags) WHERE json_each.value IN (${filter.tags.map(() => "?").join(", ")}))`);
    args.push(...filter.tags);
  }
  if (filter.withEventPattern) where.push("event_pattern IS NOT NULL");
  return { where, args };
}

/** Newest-first schedules matching the filter, a page at a time (keyset, like every list). */
export function listPipelineSchedules(client: SqlClient, filter: PipelineScheduleFilter = {}, page: PageRequest = {}): Promise<Page<PipelineSchedule>> {
  return listPage(client, "pipeline_schedules", scheduleConditions(filter), page, pipelineScheduleFromRow);
}

/** How many schedules match the filter: counted (a project's triggers are few, written by people). */
export function countPipelineSchedules(client: SqlClient, filter: PipelineScheduleFilter = {}): Promise<number> {
  return countRows(client, "pipeline_schedules", scheduleConditions(filter));
}

/** A schedule with what its token is checked by (its digest; the plaintext of a row not sealed yet), in one read; null if there is no such schedule. */
export async function scheduleWithToken(client: SqlClient, id: number): Promise<{ schedule: PipelineSchedule; digest: string | null; plaintext: string | null } | null> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE id = ?", args: [id] });
  const row = rs.rows[0];
  if (!row) return null;
  return { schedule: pipelineScheduleFromRow(row), digest: row.token_digest === null || row.token_digest === undefined ? null : String(row.token_digest), plaintext: row.token === null ? null : String(row.token) };
}

/** A schedule's sealed token, and its plaintext when it was written before tokens were sealed. */
export async function scheduleSealedToken(client: SqlClient, id: number): Promise<{ sealed: string | null; plaintext: string | null } | null> {
  const rs = await client.execute({ sql: "SELECT token_sealed, token FROM pipeline_schedules WHERE id = ?", args: [id] });
  const row = rs.rows[0];
  if (!row) return null;
  return { sealed: row.token_sealed === null ? null : String(row.token_sealed), plaintext: row.token === null ? null : String(row.token) };
}

/** Ids of the event triggers whose token digest is `digest` (an indexed lookup: digests are of random tokens). */
export async function eventTriggerIdsByDigest(client: SqlClient, digest: string): Promise<number[]> {
  const rs = await client.execute({ sql: "SELECT id FROM pipeline_schedules WHERE schedule_type = 'event' AND token_digest = ? ORDER BY id", args: [digest] });
  return rs.rows.map((row) => Number(row.id));
}

/** Event triggers whose token is still in plaintext (written before tokens were sealed, not sealed yet). */
export async function plaintextEventTokens(client: SqlClient): Promise<Array<{ id: number; token: string }>> {
  const rs = await client.execute("SELECT id, token FROM pipeline_schedules WHERE schedule_type = 'event' AND token IS NOT NULL");
  return rs.rows.map((row) => ({ id: Number(row.id), token: String(row.token) }));
}

/** Every schedule whose token is still in plaintext. */
export async function plaintextTokens(client: SqlClient): Promise<Array<{ id: number; token: string }>> {
  const rs = await client.execute("SELECT id, token FROM pipeline_schedules WHERE token IS NOT NULL ORDER BY id");
  return rs.rows.map((row) => ({ id: Number(row.id), token: String(row.token) }));
}

/**
 * Replaces plaintext tokens by their sealed form, in one transaction; a row whose token changed
 * meanwhile is left to that change. Returns how many rows were sealed.
 */
export async function sealPlaintextTokenRows(client: SqlClient, rows: ReadonlyArray<{ id: number; token: string; sealed: SealedToken }>): Promise<number> {
  if (rows.length === 0) return 0;
  // SQLite leaves a replaced value's bytes in the page and the WAL unless told otherwise:
  // secure_delete overwrites them, the checkpoint moves the pages into the file and empties the
  // WAL. A server that refuses these pragmas (sqld may) still gets the rows sealed.
  await pragma(client, "PRAGMA secure_delete = ON");
  let results;
  try {
    results = await client.batch(
      rows.map((r) => ({
        sql: "UPDATE pipeline_schedules SET token = NULL, token_sealed = ?, token_digest = ? WHERE id = ? AND token = ?",
        args: [r.sealed.sealed, r.sealed.digest, r.id, r.token],
      })),
      "write",
    );
  } finally {
    await pragma(client, "PRAGMA secure_delete = OFF");
  }
  await pragma(client, "PRAGMA wal_checkpoint(TRUNCATE)");
  return results.reduce((n, rs) => n + rs.rowsAffected, 0);
}

async function pragma(client: SqlClient, sql: string): Promise<void> {
  try {
    await client.execute(sql);
  } catch {
    // best effort, see above
  }
}

/** How many schedules hold a sealed token (a process without the key must not make a new one). */
export async function sealedTokenCount(client: SqlClient): Promise<number> {
  const rs = await client.execute("SELECT count(*) AS n FROM pipeline_schedules WHERE token_sealed IS NOT NULL");
  return Number(rs.rows[0]?.n ?? 0);
}

/** A pipeline's schedule by name ((pipeline_uuid, name) is unique), or null. */
export async function scheduleByName(client: SqlClient, pipelineUuid: string, name: string): Promise<PipelineSchedule | null> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE pipeline_uuid = ? AND name = ?", args: [pipelineUuid, name] });
  return rs.rows[0] ? pipelineScheduleFromRow(rs.rows[0]) : null;
}

/** The active event triggers (of the given ids only, when given), by id. */
export async function activeEventTriggers(client: SqlClient, ids?: readonly number[]): Promise<PipelineSchedule[]> {
  if (ids && ids.length === 0) return [];
  const filter = ids ? ` AND id IN (${ids.map(() => "?").join(", ")})` : "";
  const rs = await client.execute({
    sql: `SELECT * FROM pipeline_schedules WHERE schedule_type = 'event' AND status = 'active'${filter} ORDER BY id`,
    args: ids ? [...ids] : [],
  });
  return rs.rows.map(pipelineScheduleFromRow);
}
