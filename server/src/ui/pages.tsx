/** @jsxImportSource hono/jsx */
/**
 * The UI's pages as components over plain data: the routes (index.tsx) read the store and the
 * project, these render. The live regions (RunLive, BackfillLive) are also what the streams
 * push, re-rendered, so a page and its updates come from one render path.
 */
import type { Backfill, BackfillStatusReport, BlockRun, OverviewBucket, Pipeline, PipelineRun, PipelineSchedule, RunOverview, SchedulerHeartbeat } from "@kiln/core";
import type { Child } from "hono/jsx";
import { settingsJson } from "../serialize.ts";
import { ActionForm, Duration, durationText, Notice, Pager, Panel, Status, Table, Time, utcText } from "./components.tsx";
import { Dag, Gantt, RunsChart } from "./svg.tsx";

/** A scheduler heartbeat older than this is shown as stale (the scheduler's orphan threshold). */
const STALE_HEARTBEAT_MS = 30_000;

const runLink = (run: PipelineRun): Child => <a href={`/ui/runs/${run.id}`}>#{run.id}</a>;

/** A compact table of runs (id, pipeline, execution date, status, duration). */
function RunRows(props: { runs: PipelineRun[]; now: number; liveIds?: boolean }): Child {
  return (
    <>
      {props.runs.map((run) => (
        <tr data-run-id={String(run.id)}>
          <td>{runLink(run)}</td>
          <td>
            <a href={`/ui/pipelines/${encodeURIComponent(run.pipelineUuid)}`}>{run.pipelineUuid}</a>
          </td>
          <td>
            <Time ms={run.executionDate} />
          </td>
          <td {...(props.liveIds ? { id: `run-status-${run.id}` } : {})}>
            <Status status={run.status} />
            {run.passedSla ? <span title="passed its SLA"> ⏰ SLA</span> : null}
          </td>
          <td>
            <Duration start={run.startedAt} end={run.completedAt} now={props.now} />
          </td>
        </tr>
      ))}
    </>
  );
}

function RunTable(props: { runs: PipelineRun[]; now: number; caption?: string; empty: string; testId?: string; liveIds?: boolean }): Child {
  if (props.runs.length === 0) return <p class="muted">{props.empty}</p>;
  return (
    <Table head={["Run", "Pipeline", "Execution date", "Status", "Duration"]} {...(props.caption ? { caption: props.caption } : {})} {...(props.testId ? { testId: props.testId } : {})}>
      <RunRows runs={props.runs} now={props.now} {...(props.liveIds ? { liveIds: true } : {})} />
    </Table>
  );
}

/** The sign-in form. */
export function LoginPage(props: { next: string; error?: string; username?: string }): Child {
  return (
    <div class="login">
      <h1>Sign in to kiln</h1>
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      <form method="post" action="/ui/login" class="stack">
        <input type="hidden" name="next" value={props.next} />
        <label>
          Username
          <input name="username" autocomplete="username" required autofocus value={props.username ?? ""} />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <button type="submit">Sign in</button>
      </form>
      <p class="hint">
        No user yet? Create one with <code>kiln user create --project P --username U --role admin --password-stdin</code>.
      </p>
    </div>
  );
}

/** Whether a scheduler's heartbeat is recent enough to call it alive. */
function schedulerAlive(s: SchedulerHeartbeat, now: number): boolean {
  return now - s.heartbeatAt < STALE_HEARTBEAT_MS;
}

function BucketTable(props: { buckets: OverviewBucket[] }): Child {
  const statuses = ["completed", "failed", "cancelled", "running", "initial"] as const;
  return (
    <details>
      <summary>The chart as a table</summary>
      <Table head={["Hour (UTC)", ...statuses]}>
        {props.buckets.map((b) => (
          <tr>
            <td>{utcText(b.start)}</td>
            {statuses.map((s) => (
              <td>{b.counts[s]}</td>
            ))}
          </tr>
        ))}
      </Table>
    </details>
  );
}

/** The overview: runs by status over time, live counts, failures, SLA breaches, drift and scheduler health. */
export function OverviewPage(props: { overview: RunOverview; now: number }): Child {
  const o = props.overview;
  const alive = o.schedulers.filter((s) => schedulerAlive(s, props.now));
  return (
    <>
      <h1>Overview</h1>
      <div class="grid">
        <Panel title="Runs by status, last 24 hours (UTC hours)">
          <ul class="legend" aria-hidden="true">
            <li>✓ completed (solid)</li>
            <li>✗ failed (hatched)</li>
            <li>⊘ cancelled (dotted)</li>
            <li>▶ running / waiting</li>
          </ul>
          <RunsChart buckets={o.buckets} />
          {o.chartCapped ? <p class="hint">More runs than the chart counts: only the newest are drawn.</p> : null}
          <BucketTable buckets={o.buckets} />
        </Panel>
        <Panel title="Now">
          <dl class="facts">
            <dt>Running</dt>
            <dd data-testid="running-count">{o.live.running}</dd>
            <dt>Waiting to start</dt>
            <dd>{o.live.initial}</dd>
            <dt>Schedulers</dt>
            <dd>
              {o.schedulers.length === 0 ? (
                <span class="status status-failed">✗ none registered: no runs will start</span>
              ) : (
                `${alive.length} alive of ${o.schedulers.length}`
              )}
            </dd>
          </dl>
        </Panel>
      </div>
      <Panel title="Scheduler health">
        {o.schedulers.length === 0 ? (
          <p class="muted">No scheduler has registered with this database.</p>
        ) : (
          <Table head={["Scheduler", "Host", "Started", "Last heartbeat", "State"]}>
            {o.schedulers.map((s) => (
              <tr>
                <td>{s.id}</td>
                <td>
                  {s.host}
                  {s.pid !== null ? ` (pid ${s.pid})` : ""}
                </td>
                <td>
                  <Time ms={s.startedAt} />
                </td>
                <td>{durationText(Math.max(0, props.now - s.heartbeatAt))} ago</td>
                <td>{schedulerAlive(s, props.now) ? <Status status="active" /> : <span class="status status-failed">✗ stale</span>}</td>
              </tr>
            ))}
          </Table>
        )}
      </Panel>
      <Panel title="Recent failures">
        <RunTable runs={o.recentFailures} now={props.now} empty="No failed runs." testId="recent-failures" />
      </Panel>
      <div class="grid">
        <Panel title="SLA breaches">
          <RunTable runs={o.slaBreaches} now={props.now} empty="No run among the newest passed its SLA." />
        </Panel>
        <Panel title="Drift warnings">
          <p class="hint">Scheduled runs created more than a minute after they were due (downtime, an overloaded scheduler).</p>
          <RunTable runs={o.drift} now={props.now} empty="No drift among the newest runs." />
        </Panel>
      </div>
    </>
  );
}

/** Every pipeline of the project. */
export function PipelinesPage(props: { pipelines: Pipeline[] }): Child {
  return (
    <>
      <h1>Pipelines</h1>
      <Table head={["Pipeline", "Name", "Blocks", "Description"]} testId="pipelines">
        {props.pipelines.map((p) => (
          <tr>
            <td>
              <a href={`/ui/pipelines/${encodeURIComponent(p.uuid)}`}>{p.uuid}</a>
            </td>
            <td>{p.name}</td>
            <td>{p.blocks.length}</td>
            <td class="wrap">{p.description ?? ""}</td>
          </tr>
        ))}
      </Table>
    </>
  );
}

/** One pipeline: its DAG, its triggers and its recent runs. */
export function PipelinePage(props: { pipeline: Pipeline; schedules: PipelineSchedule[]; nextRunAt: Map<number, number | null>; runs: PipelineRun[]; now: number; canEdit: boolean }): Child {
  const p = props.pipeline;
  return (
    <>
      <h1>
        {p.name} <span class="muted">({p.uuid})</span>
      </h1>
      {p.description ? <p>{p.description}</p> : null}
      <div class="actions">
        <a class="button secondary" href={`/ui/runs?pipeline_uuid=${encodeURIComponent(p.uuid)}`}>
          All runs
        </a>
        {props.canEdit ? (
          <a class="button secondary" href={`/ui/backfills/preview?pipeline_uuid=${encodeURIComponent(p.uuid)}`}>
            Backfill…
          </a>
        ) : null}
      </div>
      <h2>DAG</h2>
      <div class="table-wrap">
        <Dag pipeline={p} />
      </div>
      <h2>Triggers</h2>
      {props.schedules.length === 0 ? (
        <p class="muted">No triggers. Add one in triggers.yaml or with kiln trigger add.</p>
      ) : (
        <Table head={["Trigger", "Type", "Schedule", "Status", "Next run"]} testId="triggers">
          {props.schedules.map((s) => (
            <tr>
              <td>
                <a href={`/ui/triggers/${s.id}`}>{s.name}</a>
              </td>
              <td>{s.scheduleType}</td>
              <td>
                {s.scheduleInterval ?? "—"} {s.scheduleType === "time" ? <span class="muted">({s.timezone})</span> : null}
              </td>
              <td>
                <Status status={s.status} />
              </td>
              <td>
                <Time ms={props.nextRunAt.get(s.id) ?? null} />
              </td>
            </tr>
          ))}
        </Table>
      )}
      <h2>Recent runs</h2>
      <RunTable runs={props.runs} now={props.now} empty="No runs yet." />
    </>
  );
}

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

/** The runs list: filters and keyset pages. */
export function RunsPage(props: {
  runs: PipelineRun[];
  next: string | null;
  after: string | undefined;
  pipelineUuid: string | undefined;
  status: string | undefined;
  pipelines: string[];
  statuses: readonly string[];
  now: number;
}): Child {
  const liveIds = props.runs.filter((r) => r.status === "initial" || r.status === "running").map((r) => r.id);
  return (
    <>
      <h1>Runs</h1>
      <form method="get" action="/ui/runs" class="actions" role="search">
        <label>
          Pipeline{" "}
          <select name="pipeline_uuid">
            <option value="">all</option>
            {props.pipelines.map((p) => (
              <option value={p} {...(p === props.pipelineUuid ? { selected: true } : {})}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status{" "}
          <select name="status">
            <option value="">all</option>
            {props.statuses.map((s) => (
              <option value={s} {...(s === props.status ? { selected: true } : {})}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="button secondary">
          Filter
        </button>
      </form>
      <div {...(liveIds.length > 0 ? { "data-status-stream": `/ui/runs/live?ids=${liveIds.join(",")}` } : {})}>
        <RunTable runs={props.runs} now={props.now} empty="No runs match." testId="runs" liveIds />
      </div>
      <Pager base="/ui/runs" params={{ pipeline_uuid: props.pipelineUuid, status: props.status }} next={props.next} deep={props.after !== undefined} />
    </>
  );
}

/** A block uuid that retry_blocks may start from: a block of the pipeline, not one item of a fan-out. */
function retryable(pipeline: Pipeline | undefined, blockUuid: string): boolean {
  return pipeline !== undefined && pipeline.blocksByUuid.has(blockUuid);
}

export interface RunLiveProps {
  run: PipelineRun;
  blockRuns: BlockRun[];
  pipeline: Pipeline | undefined;
  now: number;
  canEdit: boolean;
  csrf: string;
}

/** The part of the run page the stream re-renders: status, actions, timeline, block runs. */
export function RunLive(props: RunLiveProps): Child {
  const { run, blockRuns } = props;
  const live = run.status === "initial" || run.status === "running";
  const ended = run.status === "failed" || run.status === "cancelled";
  const error = typeof run.metrics.error === "string" ? run.metrics.error : null;
  return (
    <>
      <dl class="facts">
        <dt>Status</dt>
        <dd data-testid="run-status">
          <Status status={run.status} />
          {run.passedSla ? <span> ⏰ passed its SLA</span> : null}
        </dd>
        <dt>Started</dt>
        <dd>
          <Time ms={run.startedAt} />
        </dd>
        <dt>Completed</dt>
        <dd>
          <Time ms={run.completedAt} />
        </dd>
        <dt>Duration</dt>
        <dd>
          <Duration start={run.startedAt} end={run.completedAt} now={props.now} />
        </dd>
        {error ? (
          <>
            <dt>Error</dt>
            <dd>{error}</dd>
          </>
        ) : null}
      </dl>
      {props.canEdit ? (
        <div class="actions">
          {live ? <ActionForm action={`/ui/runs/${run.id}/cancel`} csrf={props.csrf} label="Cancel run" danger confirm="Cancel this run and stop its blocks?" testId="cancel-run" /> : null}
          {ended ? <ActionForm action={`/ui/runs/${run.id}/retry`} csrf={props.csrf} label="Retry failed blocks" testId="retry-run" /> : null}
        </div>
      ) : null}
      <h2>Timeline</h2>
      <div class="table-wrap">
        <Gantt blockRuns={blockRuns} now={props.now} />
      </div>
      <h2>Block runs</h2>
      <Table head={["Block", "Status", "Attempt", "Started", "Duration", "Error", ...(props.canEdit && ended ? [""] : [])]} testId="block-runs">
        {blockRuns.map((b) => (
          <tr data-block={b.blockUuid}>
            <td>{b.blockUuid}</td>
            <td>
              <Status status={b.status} />
              {b.retryAt !== null ? (
                <span class="hint">
                  {" "}
                  retry at <Time ms={b.retryAt} />
                </span>
              ) : null}
            </td>
            <td>{b.attempt}</td>
            <td>
              <Time ms={b.startedAt} />
            </td>
            <td>
              <Duration start={b.startedAt} end={b.completedAt} now={props.now} />
            </td>
            <td class="wrap">{b.error ?? ""}</td>
            {props.canEdit && ended ? (
              <td>
                {retryable(props.pipeline, b.blockUuid) ? (
                  <ActionForm action={`/ui/runs/${run.id}/retry`} csrf={props.csrf} label="Retry from here" fields={{ from_block_uuid: b.blockUuid }} />
                ) : null}
              </td>
            ) : null}
          </tr>
        ))}
      </Table>
    </>
  );
}

/** A run: what it is, its live region, and its block logs. */
export function RunPage(props: RunLiveProps & { schedule: PipelineSchedule | null; message?: string }): Child {
  const run = props.run;
  const live = run.status === "initial" || run.status === "running";
  return (
    <>
      <h1>
        Run #{run.id} <span class="muted">of</span> <a href={`/ui/pipelines/${encodeURIComponent(run.pipelineUuid)}`}>{run.pipelineUuid}</a>
      </h1>
      {props.message ? <Notice kind="info">{props.message}</Notice> : null}
      <dl class="facts">
        <dt>Execution date</dt>
        <dd>
          <Time ms={run.executionDate} />
        </dd>
        <dt>Trigger</dt>
        <dd>{props.schedule ? <a href={`/ui/triggers/${props.schedule.id}`}>{props.schedule.name}</a> : run.pipelineScheduleId !== null ? `#${run.pipelineScheduleId} (deleted)` : "none (manual)"}</dd>
        {run.backfillId !== null ? (
          <>
            <dt>Backfill</dt>
            <dd>
              <a href={`/ui/backfills/${run.backfillId}`}>#{run.backfillId}</a>
            </dd>
          </>
        ) : null}
        <dt>Partition</dt>
        <dd>
          <code>{run.executionPartition}</code>
        </dd>
        <dt>Variables</dt>
        <dd>
          <code>{JSON.stringify(run.variables)}</code>
        </dd>
      </dl>
      <section id="run-live" aria-live="polite" data-testid="run-live" {...(live ? { "data-fragment-stream": `/ui/runs/${run.id}/events` } : {})}>
        <RunLive {...props} />
      </section>
      <h2>Logs</h2>
      <div data-log-stream={`/api/pipeline_runs/${run.id}/logs/stream`} data-testid="logs">
        <p class="muted" data-empty="1">
          No log lines yet.
        </p>
        <noscript>
          <a href={`/api/pipeline_runs/${run.id}/logs?_limit=1000`}>The log as JSON</a>
        </noscript>
      </div>
    </>
  );
}

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

/** Secret names (values are never shown, nor sent to the browser). */
export function SecretsPage(props: { names: string[] }): Child {
  return (
    <>
      <h1>Secrets</h1>
      <p class="hint">Names only: values are encrypted at rest and never leave the server. Set them with POST /api/secrets (admin).</p>
      {props.names.length === 0 ? (
        <p class="muted">No secrets stored.</p>
      ) : (
        <Table head={["Name"]} testId="secrets">
          {props.names.map((n) => (
            <tr>
              <td>
                <code>{n}</code>
              </td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}

/** A refusal or a missing page, with a way back. */
export function ErrorPage(props: { status: number; message: string }): Child {
  return (
    <>
      <h1>{props.status === 404 ? "Not found" : props.status === 403 ? "Not allowed" : props.status >= 500 ? "Something went wrong" : "That did not work"}</h1>
      <Notice kind="error">{props.message}</Notice>
      <p>
        <a href="/ui">Back to the overview</a>
      </p>
    </>
  );
}
