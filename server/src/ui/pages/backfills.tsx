/** @jsxImportSource hono/jsx */
/** The backfills section: the list with the new-backfill form, the preview, and one backfill with its live region. */
import type { Backfill, PipelineRun } from "@kiln/core";
import type { BackfillStatusReport } from "@kiln/core/backfill";
import type { Child } from "hono/jsx";
import { ActionForm, Notice, Pager, Panel, Status, Table, Time } from "../components.tsx";
import { RunTable } from "./run-table.tsx";

const INTERVAL_LABELS = ["minute", "hour", "day", "week", "month", "year"] as const;

export interface BackfillForm {
  pipeline_uuid: string;
  name: string;
  start_datetime: string;
  end_datetime: string;
  interval_type: string;
  interval_units: string;
  max_concurrent_runs: string;
  block_uuid: string;
}

/** The fields of a new backfill (a GET form: it only previews). */
function BackfillFields(props: { form: BackfillForm; pipelines: string[] }): Child {
  const f = props.form;
  return (
    <form method="get" action="/ui/backfills/preview" class="stack" data-testid="backfill-form">
      <label>
        Pipeline
        <select name="pipeline_uuid" required>
          {props.pipelines.map((p) => (
            <option value={p} {...(p === f.pipeline_uuid ? { selected: true } : {})}>
              {p}
            </option>
          ))}
        </select>
      </label>
      <label>
        Name
        <input name="name" value={f.name} required maxlength={255} />
      </label>
      <label>
        Start (UTC)
        <input name="start_datetime" value={f.start_datetime} required placeholder="2026-01-01 or 2026-01-01T06:00" />
        <span class="hint">A date, or a date-time in UTC (or with an offset, e.g. +02:00).</span>
      </label>
      <label>
        End, inclusive (UTC)
        <input name="end_datetime" value={f.end_datetime} required placeholder="2026-01-31" />
      </label>
      <label>
        Every
        <input name="interval_units" type="number" min="1" value={f.interval_units || "1"} required />
      </label>
      <label>
        Interval
        <select name="interval_type">
          {INTERVAL_LABELS.map((t) => (
            <option value={t} {...(t === (f.interval_type || "day") ? { selected: true } : {})}>
              {t}
            </option>
          ))}
        </select>
      </label>
      <label>
        At most this many runs at once (optional)
        <input name="max_concurrent_runs" type="number" min="1" value={f.max_concurrent_runs} />
      </label>
      <label>
        Only this block (optional)
        <input name="block_uuid" value={f.block_uuid} />
      </label>
      <button type="submit" data-testid="preview">
        Preview runs
      </button>
    </form>
  );
}

/** Backfills, newest first, and the form to preview a new one. */
export function BackfillsPage(props: { backfills: Backfill[]; next: string | null; after: string | undefined; pipelines: string[]; canEdit: boolean; form: BackfillForm }): Child {
  return (
    <>
      <h1>Backfills</h1>
      {props.backfills.length === 0 ? (
        <p class="muted">No backfills yet.</p>
      ) : (
        <Table head={["Backfill", "Pipeline", "From", "To", "Every", "Status"]} testId="backfills">
          {props.backfills.map((b) => (
            <tr>
              <td>
                <a href={`/ui/backfills/${b.id}`}>{b.name}</a>
              </td>
              <td>{b.pipelineUuid}</td>
              <td>
                <Time ms={b.startDatetime} />
              </td>
              <td>
                <Time ms={b.endDatetime} />
              </td>
              <td>
                {b.intervalUnits} {b.intervalType}
              </td>
              <td>
                <Status status={b.status} />
              </td>
            </tr>
          ))}
        </Table>
      )}
      <Pager base="/ui/backfills" params={{}} next={props.next} deep={props.after !== undefined} />
      {props.canEdit ? (
        <>
          <h2>New backfill</h2>
          <BackfillFields form={props.form} pipelines={props.pipelines} />
        </>
      ) : null}
    </>
  );
}

/** A new backfill's preview: how many runs, which dates, and the button that creates it. */
export function BackfillPreviewPage(props: { form: BackfillForm; pipelines: string[]; csrf: string; error: string | null; count: number; dates: number[]; capped: boolean }): Child {
  const f = props.form;
  return (
    <>
      <h1>New backfill</h1>
      {props.error ? (
        <Notice kind="error">{props.error}</Notice>
      ) : (
        <Panel title="Preview">
          <p data-testid="preview-count">
            This backfill will create <strong>{props.count}</strong> pipeline run{props.count === 1 ? "" : "s"} of <strong>{f.pipeline_uuid}</strong>
            {f.block_uuid ? ` (block ${f.block_uuid} only)` : ""}, one per execution date:
          </p>
          <Table head={["#", "Execution date"]} testId="preview-dates">
            {props.dates.map((d, i) => (
              <tr>
                <td>{i + 1}</td>
                <td>
                  <Time ms={d} />
                </td>
              </tr>
            ))}
          </Table>
          {props.capped ? <p class="hint">… the first {props.dates.length} of {props.count} shown.</p> : null}
          <form method="post" action="/ui/backfills" class="actions">
            <input type="hidden" name="_csrf" value={props.csrf} />
            {Object.entries(f).map(([k, v]) => (
              <input type="hidden" name={k} value={v} />
            ))}
            <button type="submit" data-testid="create-backfill">
              Create and start {props.count} run{props.count === 1 ? "" : "s"}
            </button>
          </form>
        </Panel>
      )}
      <h2>Change it</h2>
      <BackfillFields form={f} pipelines={props.pipelines} />
    </>
  );
}

export interface BackfillLiveProps {
  report: BackfillStatusReport;
  runs: PipelineRun[];
  now: number;
  canEdit: boolean;
  csrf: string;
}

/** The part of a backfill's page the stream re-renders: status, progress, counts, actions, runs. */
export function BackfillLive(props: BackfillLiveProps): Child {
  const { backfill, counts, totalDates } = props.report;
  const done = counts.completed + counts.failed + counts.cancelled;
  const live = backfill.status === "running" || backfill.status === "initial";
  return (
    <>
      <p data-testid="backfill-status">
        <Status status={backfill.status} />
      </p>
      <label>
        Progress: {done} of {totalDates} runs ended ({counts.completed} completed, {counts.failed} failed, {counts.cancelled} cancelled, {counts.running} running, {counts.initial} waiting)
        <progress max={Math.max(1, totalDates)} value={done} data-testid="backfill-progress">
          {done} of {totalDates}
        </progress>
      </label>
      {props.canEdit ? (
        <div class="actions">
          {backfill.status === "initial" ? <ActionForm action={`/ui/backfills/${backfill.id}/start`} csrf={props.csrf} label="Start" /> : null}
          {live ? <ActionForm action={`/ui/backfills/${backfill.id}/cancel`} csrf={props.csrf} label="Cancel backfill" danger confirm="Cancel this backfill and its live runs?" testId="cancel-backfill" /> : null}
          {counts.failed + counts.cancelled > 0 && backfill.status !== "initial" ? <ActionForm action={`/ui/backfills/${backfill.id}/retry`} csrf={props.csrf} label="Retry failed runs" testId="retry-backfill" /> : null}
        </div>
      ) : null}
      <h2>Newest runs</h2>
      <RunTable runs={props.runs} now={props.now} empty="No runs yet (a backfill creates them when it starts)." testId="backfill-runs" />
    </>
  );
}

/** A backfill: its range and the live region. */
export function BackfillPage(props: BackfillLiveProps & { message?: string }): Child {
  const b = props.report.backfill;
  const live = b.status === "running" || b.status === "initial";
  return (
    <>
      <h1>Backfill {b.name}</h1>
      {props.message ? <Notice kind="info">{props.message}</Notice> : null}
      <dl class="facts">
        <dt>Pipeline</dt>
        <dd>
          <a href={`/ui/pipelines/${encodeURIComponent(b.pipelineUuid)}`}>{b.pipelineUuid}</a>
        </dd>
        <dt>From</dt>
        <dd>
          <Time ms={b.startDatetime} />
        </dd>
        <dt>To (inclusive)</dt>
        <dd>
          <Time ms={b.endDatetime} />
        </dd>
        <dt>Every</dt>
        <dd>
          {b.intervalUnits} {b.intervalType}
        </dd>
        <dt>Runs at once</dt>
        <dd>{b.maxConcurrentRuns ?? "no limit of its own"}</dd>
        {b.blockUuid ? (
          <>
            <dt>Block</dt>
            <dd>{b.blockUuid}</dd>
          </>
        ) : null}
      </dl>
      <section id="backfill-live" aria-live="polite" data-testid="backfill-live" {...(live ? { "data-fragment-stream": `/ui/backfills/${b.id}/events` } : {})}>
        <BackfillLive {...props} />
      </section>
    </>
  );
}
