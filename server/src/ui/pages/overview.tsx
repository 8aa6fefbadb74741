/** @jsxImportSource hono/jsx */
/** The overview: failures, SLA breaches, drift and the schedulers, per hour and per day. */
import type { OverviewBucket, RunOverview, SchedulerHeartbeat } from "@kiln/core/store";
import type { Child } from "hono/jsx";
import { durationText, Panel, Status, Table, Time, utcText } from "../components.tsx";
import { RunsChart } from "../svg.tsx";
import { RunTable } from "./run-table.tsx";

/** A scheduler heartbeat older than this is shown as stale (the scheduler's orphan threshold). */
const STALE_HEARTBEAT_MS = 30_000;

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
