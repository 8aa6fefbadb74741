/** @jsxImportSource hono/jsx */
/** The runs section: the filtered list, and one run with its live region (block runs, Gantt, actions). */
import type { BlockRun, PipelineRun, PipelineSchedule } from "@kiln/core";
import type { Pipeline } from "@kiln/core/project";
import type { Child } from "hono/jsx";
import { ActionForm, Duration, Notice, Pager, Status, Table, Time } from "../components.tsx";
import { Gantt } from "../svg.tsx";
import { RunTable } from "./run-table.tsx";

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
