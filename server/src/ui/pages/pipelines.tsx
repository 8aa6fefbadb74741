/** @jsxImportSource hono/jsx */
/** The pipelines section: the list, and one pipeline with its DAG, triggers and recent runs. */
import type { PipelineRun, PipelineSchedule } from "@kiln/core";
import type { Pipeline } from "@kiln/core/project";
import type { Child } from "hono/jsx";
import { Status, Table, Time } from "../components.tsx";
import { Dag } from "../svg.tsx";
import { RunTable } from "./run-table.tsx";

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
