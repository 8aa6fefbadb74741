/** @jsxImportSource hono/jsx */
/** A trigger's page: its schedule, next dates, API URL and runs, with its actions. */
import type { PipelineRun, PipelineSchedule } from "@kiln/core";
import type { Child } from "hono/jsx";
import { settingsJson } from "../../serialize.ts";
import { ActionForm, Notice, Panel, Status, Table, Time } from "../components.tsx";
import { RunTable } from "./run-table.tsx";

/** A date in a named zone, for the trigger's own timezone column. */
function inZone(ms: number, tz: string): string {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" }).format(ms);
  } catch {
    return "—";
  }
}

export interface TriggerView {
  schedule: PipelineSchedule;
  /** The next execution dates, DST and start-time rules applied; null with the reason when they cannot be computed. */
  nextDates: number[] | null;
  nextDatesError: string | null;
  runs: PipelineRun[];
  /** The API-trigger URL with its token, for editors of an api trigger. */
  apiUrl: string | null;
  now: number;
  canEdit: boolean;
  csrf: string;
  message?: string;
}

/** A trigger: settings, next dates, activate/deactivate, run now, the API-trigger URL and token rotation. */
export function TriggerPage(props: TriggerView): Child {
  const s = props.schedule;
  const settings = settingsJson(s.settings);
  const active = s.status === "active";
  return (
    <>
      <h1>
        Trigger {s.name} <Status status={s.status} id="trigger-status" />
      </h1>
      {props.message ? <Notice kind="info">{props.message}</Notice> : null}
      <p>
        Pipeline <a href={`/ui/pipelines/${encodeURIComponent(s.pipelineUuid)}`}>{s.pipelineUuid}</a>
      </p>
      {props.canEdit ? (
        <div class="actions">
          <ActionForm action={`/ui/triggers/${s.id}/run`} csrf={props.csrf} label="Run now" testId="run-now" />
          <ActionForm action={`/ui/triggers/${s.id}/status`} csrf={props.csrf} label={active ? "Deactivate" : "Activate"} fields={{ status: active ? "inactive" : "active" }} testId="toggle-status" {...(active ? { danger: true } : {})} />
        </div>
      ) : null}
      <div class="grid">
        <Panel title="Settings">
          <dl class="facts">
            <dt>Type</dt>
            <dd>{s.scheduleType}</dd>
            <dt>Schedule</dt>
            <dd>{s.scheduleInterval ?? "—"}</dd>
            <dt>Timezone</dt>
            <dd>{s.timezone}</dd>
            <dt>Start time</dt>
            <dd>
              <Time ms={s.startTime} />
            </dd>
            <dt>SLA</dt>
            <dd>{s.sla === null ? "—" : `${s.sla} s after the execution date`}</dd>
            <dt>Last enabled</dt>
            <dd>
              <Time ms={s.lastEnabledAt} />
            </dd>
            {Object.entries(settings).map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd>
                  <code>{JSON.stringify(v)}</code>
                </dd>
              </>
            ))}
            <dt>Variables</dt>
            <dd>
              <code>{JSON.stringify(s.variables)}</code>
            </dd>
          </dl>
        </Panel>
        {s.scheduleType === "time" ? (
          <Panel title="Next execution dates">
            {props.nextDatesError ? (
              <Notice kind="error">{props.nextDatesError}</Notice>
            ) : props.nextDates && props.nextDates.length > 0 ? (
              <>
                <p class="hint">{active ? "" : "Inactive: the dates it would run at once activated. "}Its start_time and DST rules (dst_gap, dst_overlap) applied; catch-up and overlap act when a date comes due.</p>
                <Table head={["Your time", `In ${s.timezone}`]} testId="next-dates">
                  {props.nextDates.map((d) => (
                    <tr>
                      <td>
                        <Time ms={d} />
                      </td>
                      <td>{inZone(d, s.timezone)}</td>
                    </tr>
                  ))}
                </Table>
              </>
            ) : (
              <p class="muted">No future dates.</p>
            )}
          </Panel>
        ) : null}
        {s.scheduleType === "api" ? (
          <Panel title="API trigger">
            {props.apiUrl ? (
              <>
                <p>POST to this URL runs the pipeline; the token in it is the credential, so share it like a password.</p>
                <pre class="code" data-testid="api-url">
                  {props.apiUrl}
                </pre>
                <pre class="code" data-testid="curl">{`curl -X POST '${props.apiUrl}' \\\n  -H 'content-type: application/json' \\\n  -d '{"pipeline_run": {"variables": {}}}'`}</pre>
                <ActionForm action={`/ui/triggers/${s.id}/rotate_token`} csrf={props.csrf} label="Rotate token" danger confirm="Rotate the token? Callers using the old URL will get 401." testId="rotate-token" />
              </>
            ) : (
              <p class="muted">The trigger's URL carries its token: it is shown to editors only.</p>
            )}
          </Panel>
        ) : null}
      </div>
      <h2>Recent runs of this trigger</h2>
      <RunTable runs={props.runs} now={props.now} empty="No runs yet." />
    </>
  );
}
