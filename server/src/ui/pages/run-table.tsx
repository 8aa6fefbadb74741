/** @jsxImportSource hono/jsx */
/** The runs table several pages show (a pipeline's, a trigger's, a backfill's, the runs list). */
import type { PipelineRun } from "@kiln/core";
import type { Child } from "hono/jsx";
import { Duration, Status, Table, Time } from "../components.tsx";

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

export function RunTable(props: { runs: PipelineRun[]; now: number; caption?: string; empty: string; testId?: string; liveIds?: boolean }): Child {
  if (props.runs.length === 0) return <p class="muted">{props.empty}</p>;
  return (
    <Table head={["Run", "Pipeline", "Execution date", "Status", "Duration"]} {...(props.caption ? { caption: props.caption } : {})} {...(props.testId ? { testId: props.testId } : {})}>
      <RunRows runs={props.runs} now={props.now} {...(props.liveIds ? { liveIds: true } : {})} />
    </Table>
  );
}
