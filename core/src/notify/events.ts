/**
 * Notification events: what happened, as the JSON payload POSTed to generic webhooks and as the
 * one-line message Slack shows. Builders are pure: the caller builds the event next to the state
 * change that causes it and enqueues both in one WriteBatch.
 */
import { isoOrNull } from "../bounds.ts";
import type { PipelineRun, PipelineSchedule } from "../domain.ts";
import type { AlertOn } from "./config.ts";

export const NOTIFICATION_EVENTS = ["run_failed", "run_succeeded", "sla_passed", "drift"] as const;
/** Stored as the outbox row's `kind` and sent as the payload's `event`. */
export type NotificationEventKind = (typeof NOTIFICATION_EVENTS)[number];

/** The alert_on value that selects each event. */
export const ALERT_ON_FOR: Record<NotificationEventKind, AlertOn> = {
  run_failed: "trigger_failure",
  run_succeeded: "trigger_success",
  sla_passed: "trigger_passed_sla",
  drift: "drift",
};

/** The JSON body POSTed to a generic webhook (snake_case, like kiln's API). */
export interface NotificationPayload {
  event: NotificationEventKind;
  pipeline_uuid: string;
  pipeline_run_id: number | null;
  pipeline_schedule_id: number | null;
  /** ISO 8601, UTC; null for an event that concerns no single run date. */
  execution_date: string | null;
  /** The run's status as of the event (for drift, the trigger's status). */
  status: string;
  /** The same one-line message Slack gets. */
  message: string;
  [extra: string]: unknown;
}

export interface NotificationEvent {
  kind: NotificationEventKind;
  payload: NotificationPayload;
  message: string;
}

/** What the builders need of a pipeline; a loaded Pipeline will do. */
export interface PipelineRef {
  uuid: string;
  name?: string | null;
}

// A failure detail can be a whole stack trace; the row and the POST stay bounded.
const MAX_DETAIL = 10_000;
const MAX_MESSAGE_DETAIL = 300;

const iso = isoOrNull;

/** The text on one line, shortened to `max` characters. */
function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s*[\r\n]+\s*/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

function pipelineLabel(uuid: string, name: string | null | undefined): string {
  return name && name !== uuid ? `${name} (${uuid})` : uuid;
}

function runFields(run: PipelineRun) {
  return {
    pipeline_uuid: run.pipelineUuid,
    pipeline_run_id: run.id,
    pipeline_schedule_id: run.pipelineScheduleId,
    execution_date: iso(run.executionDate),
  };
}

/**
 * A pipeline run failed. Status is "failed" whatever `run` says, since the event is built
 * before the transition that fails the run commits.
 */
export function runFailed(run: PipelineRun, pipeline: PipelineRef, detail: string | null = null): NotificationEvent {
  const reason = detail ? `: ${oneLine(detail, MAX_MESSAGE_DETAIL)}` : "";
  return runEnded("run_failed", "failed", run, pipeline, reason, { error: detail === null ? null : detail.slice(0, MAX_DETAIL) });
}

/** A pipeline run completed (only sent to targets that opt in with trigger_success). Status is "completed". */
export function runSucceeded(run: PipelineRun, pipeline: PipelineRef): NotificationEvent {
  return runEnded("run_succeeded", "completed", run, pipeline, "", {});
}

/** The event of a run that ended with `status`; `extra` adds fields to the payload (a failure's error). */
function runEnded(
  kind: "run_failed" | "run_succeeded",
  status: "failed" | "completed",
  run: PipelineRun,
  pipeline: PipelineRef,
  reason: string,
  extra: Partial<NotificationPayload>,
): NotificationEvent {
  const message = `Pipeline ${pipelineLabel(pipeline.uuid, pipeline.name)} run ${run.id} ${status} (execution date ${iso(run.executionDate)})${reason}`;
  return {
    kind,
    message,
    payload: {
      event: kind,
      ...runFields(run),
      status,
      message,
      pipeline_name: pipeline.name ?? pipeline.uuid,
      ...extra,
      started_at: iso(run.startedAt),
      completed_at: iso(run.completedAt),
    },
  };
}

/**
 * A run is still going past its trigger's SLA (`sla`, in seconds as in Mage); the deadline is
 * measured from the execution date, as Mage's check_sla does. The run is not stopped.
 */
export function slaPassed(run: PipelineRun, sla: number, pipeline?: PipelineRef): NotificationEvent {
  const deadline = run.executionDate + sla * 1000;
  const label = pipelineLabel(run.pipelineUuid, pipeline?.name);
  const message = `Pipeline ${label} run ${run.id} passed its SLA of ${sla} s (execution date ${iso(run.executionDate)}, deadline ${iso(deadline)}; status ${run.status})`;
  return {
    kind: "sla_passed",
    message,
    payload: {
      event: "sla_passed",
      ...runFields(run),
      status: run.status,
      message,
      pipeline_name: pipeline?.name ?? run.pipelineUuid,
      sla_seconds: sla,
      deadline: iso(deadline),
      started_at: iso(run.startedAt),
    },
  };
}

/**
 * The scheduler fell behind a trigger: a run started `lateByMs` after it was due (a slow or
 * stalled tick, a replica that was down). `executionDate`, when given, is the late occurrence.
 */
export function drift(schedule: PipelineSchedule, lateByMs: number, executionDate: number | null = null): NotificationEvent {
  const late = formatDuration(lateByMs);
  const when = executionDate === null ? "" : ` for execution date ${iso(executionDate)}`;
  const message = `Trigger ${schedule.name} of pipeline ${schedule.pipelineUuid} is running ${late} late${when}`;
  return {
    kind: "drift",
    message,
    payload: {
      event: "drift",
      pipeline_uuid: schedule.pipelineUuid,
      pipeline_run_id: null,
      pipeline_schedule_id: schedule.id,
      execution_date: iso(executionDate),
      status: schedule.status,
      message,
      schedule_name: schedule.name,
      late_by_ms: lateByMs,
    },
  };
}

/** `1h 2m 3s`, `45s`, `250ms`: a lateness a person can read. */
function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return [h ? `${h}h` : "", m ? `${m}m` : "", s || (!h && !m) ? `${s}s` : ""].filter(Boolean).join(" ");
}

/** The body POSTed to a generic webhook: the payload, as JSON. */
export function webhookBody(event: NotificationEvent): string {
  return JSON.stringify(event.payload);
}

/** The body POSTed to a Slack incoming webhook: `{ text }`, with Slack's three control characters escaped. */
export function slackBody(event: NotificationEvent): string {
  // Slack reads <...> as links/mentions and & as an entity start; a block error text is not markup.
  const text = event.message.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return JSON.stringify({ text });
}
