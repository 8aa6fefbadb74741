/** Store operations on pipeline schedules (triggers). The scheduler adds more. */
import type { InValue } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";
import type { JsonObject, PipelineSchedule, ScheduleSettings, ScheduleStatus, ScheduleType } from "../domain.ts";
import { KilnError } from "../errors.ts";
import { pipelineScheduleFromRow } from "./rows.ts";
import { toJson } from "./json.ts";
import { listPage, type Page, type PageRequest } from "./page.ts";

export interface NewPipelineSchedule {
  name: string;
  pipelineUuid: string;
  scheduleType: ScheduleType;
  scheduleInterval?: string | null;
  startTime?: number | null;
  timezone?: string;
  status?: ScheduleStatus;
  variables?: JsonObject;
  sla?: number | null;
  token?: string | null;
  settings?: ScheduleSettings;
  description?: string | null;
  /** Event triggers only; see events/match.ts. */
  eventPattern?: JsonObject | null;
}

/** Inserts a schedule; (pipeline_uuid, name) is unique: a taken name is a KilnError (conflict) on `name`. */
export async function createPipelineSchedule(client: SqlClient, s: NewPipelineSchedule, now: number): Promise<PipelineSchedule> {
  const status = s.status ?? "inactive";
  const rs = await client.execute({
    sql: `INSERT INTO pipeline_schedules (name, pipeline_uuid, schedule_type, schedule_interval, start_time, timezone, status,
            variables, sla, token, settings, description, event_pattern, last_enabled_at, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
      s.token ?? null,
      toJson(s.settings),
      s.description ?? null,
      s.eventPattern ? JSON.stringify(s.eventPattern) : null,
      status === "active" ? now : null,
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

export interface SchedulePatch {
  name?: string;
  scheduleType?: ScheduleType;
  scheduleInterval?: string | null;
  startTime?: number | null;
  timezone?: string;
  status?: ScheduleStatus;
  variables?: JsonObject;
  sla?: number | null;
  token?: string | null;
  settings?: JsonObject;
  description?: string | null;
  eventPattern?: JsonObject | null;
  lastEnabledAt?: number | null;
  /** Set to make the scheduler look at the schedule again at its next tick. */
  nextRunAt?: number | null;
  /** null re-arms an @once trigger whose start_time changed (it fires again). */
  lastExecutionDate?: number | null;
}

const SCHEDULE_COLUMNS: Record<keyof SchedulePatch, string> = {
  name: "name",
  scheduleType: "schedule_type",
  scheduleInterval: "schedule_interval",
  startTime: "start_time",
  timezone: "timezone",
  status: "status",
  variables: "variables",
  sla: "sla",
  token: "token",
  settings: "settings",
  description: "description",
  eventPattern: "event_pattern",
  lastEnabledAt: "last_enabled_at",
  nextRunAt: "next_run_at",
  lastExecutionDate: "last_execution_date",
};

/** Changes a schedule's fields; returns the updated schedule, or null if there is none. */
export async function updatePipelineSchedule(client: SqlClient, id: number, patch: SchedulePatch, now: number): Promise<PipelineSchedule | null> {
  const sets: string[] = ["updated_at = ?"];
  const args: InValue[] = [now];
  for (const [key, value] of Object.entries(patch) as Array<[keyof SchedulePatch, unknown]>) {
    if (value === undefined) continue;
    sets.push(`${SCHEDULE_COLUMNS[key]} = ?`);
    args.push(key === "variables" || key === "settings" ? toJson(value) : key === "eventPattern" ? (value === null ? null : JSON.stringify(value)) : (value as InValue));
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
}

/** Newest-first schedules matching the filter, a page at a time (keyset, like every list). */
export function listPipelineSchedules(client: SqlClient, filter: PipelineScheduleFilter = {}, page: PageRequest = {}): Promise<Page<PipelineSchedule>> {
  const where: string[] = [];
  const args: InValue[] = [];
  if (filter.pipelineUuid !== undefined) (where.push("pipeline_uuid = ?"), args.push(filter.pipelineUuid));
  if (filter.status !== undefined) (where.push("status = ?"), args.push(filter.status));
  if (filter.scheduleType !== undefined) (where.push("schedule_type = ?"), args.push(filter.scheduleType));
  return listPage(client, "pipeline_schedules", { where, args }, page, pipelineScheduleFromRow);
}
