/** Store operations on pipeline schedules (triggers). The scheduler adds more. */
import type { InValue } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";
import type { JsonObject, PipelineSchedule, ScheduleSettings, ScheduleStatus, ScheduleType } from "../domain.ts";
import { pipelineScheduleFromRow } from "./rows.ts";
import { toJson } from "./json.ts";

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
}

/** Inserts a schedule; (pipeline_uuid, name) is unique. */
export async function createPipelineSchedule(client: SqlClient, s: NewPipelineSchedule, now: number): Promise<PipelineSchedule> {
  const status = s.status ?? "inactive";
  const rs = await client.execute({
    sql: `INSERT INTO pipeline_schedules (name, pipeline_uuid, schedule_type, schedule_interval, start_time, timezone, status,
            variables, sla, token, settings, description, last_enabled_at, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
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
      status === "active" ? now : null,
      now,
      now,
    ] as InValue[],
  });
  const row = rs.rows[0];
  if (!row) throw new Error(`pipeline schedule ${s.name} was not created`);
  return pipelineScheduleFromRow(row);
}

/** One schedule by id, or null. */
export async function getPipelineSchedule(client: SqlClient, id: number): Promise<PipelineSchedule | null> {
  const rs = await client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE id = ?", args: [id] });
  return rs.rows[0] ? pipelineScheduleFromRow(rs.rows[0]) : null;
}
