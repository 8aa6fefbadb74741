/** @jsxImportSource hono/jsx */
/**
 * Drawings as server-rendered SVG (no script, no style attributes, so the strict CSP holds): a
 * pipeline's DAG, a run's block runs as a timeline, and runs by status over time. Failed and
 * cancelled differ by pattern as well as colour, and every mark has a text title.
 */
import type { BlockRun } from "@kiln/core";
import type { Pipeline } from "@kiln/core/project";
import type { OverviewBucket } from "@kiln/core/store";
import type { Child } from "hono/jsx";
import { durationText, utcText } from "./components.tsx";

/** The hatch (failed) and dot (cancelled) fills. */
function Patterns(): Child {
  return (
    <defs>
      <pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
        <path d="M0 0 L0 6" stroke-width="3" />
      </pattern>
      <pattern id="dots" width="5" height="5" patternUnits="userSpaceOnUse">
        <circle cx="2.5" cy="2.5" r="1.3" />
      </pattern>
      <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
        <path d="M0 0 L10 5 L0 10 z" class="dag-arrow" />
      </marker>
    </defs>
  );
}

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The pipeline's blocks as a left-to-right layered graph: a block's column is its longest path from a root. */
export function Dag(props: { pipeline: Pipeline }): Child {
  const blocks = props.pipeline.blocks;
  const layer = new Map<string, number>();
  // blocks come in topological order (the loader checks it), so one pass finds every layer
  for (const block of blocks) layer.set(block.uuid, Math.max(-1, ...block.upstreamBlocks.map((u) => layer.get(u) ?? 0)) + 1);
  const rows = new Map<number, number>();
  const pos = new Map<string, { x: number; y: number }>();
  const W = 170;
  const H = 34;
  const GX = 60;
  const GY = 18;
  for (const block of blocks) {
    const l = layer.get(block.uuid) ?? 0;
    const r = rows.get(l) ?? 0;
    rows.set(l, r + 1);
    pos.set(block.uuid, { x: 10 + l * (W + GX), y: 10 + r * (H + GY) });
  }
  const width = 20 + Math.max(1, ...[...layer.values()].map((l) => l + 1)) * (W + GX) - GX;
  const height = 20 + Math.max(1, ...rows.values()) * (H + GY) - GY;
  return (
    <svg class="dag" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={`DAG of ${props.pipeline.uuid}: ${blocks.length} blocks`} data-testid="dag">
      <Patterns />
      {blocks.flatMap((block) =>
        block.upstreamBlocks.map((up) => {
          const a = pos.get(up);
          const b = pos.get(block.uuid);
          if (!a || !b) return null;
          const x1 = a.x + W;
          const y1 = a.y + H / 2;
          const x2 = b.x - 2;
          const y2 = b.y + H / 2;
          const mid = (x1 + x2) / 2;
          return <path class="dag-edge" d={`M${x1} ${y1} C${mid} ${y1} ${mid} ${y2} ${x2} ${y2}`} marker-end="url(#arrow)" />;
        }),
      )}
      {blocks.map((block) => {
        const p = pos.get(block.uuid) ?? { x: 0, y: 0 };
        return (
          <g class="dag-node" data-block={block.uuid}>
            <title>{`${block.uuid} (${block.type})${block.upstreamBlocks.length ? ` ← ${block.upstreamBlocks.join(", ")}` : ""}`}</title>
            <rect x={p.x} y={p.y} width={W} height={H} rx="5" />
            <text x={p.x + 8} y={p.y + 15}>
              {clip(block.uuid, 24)}
            </text>
            <text x={p.x + 8} y={p.y + 28} class="muted-text">
              {block.type}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** A run's block runs on one time axis: a bar from start to end (or now), labelled and titled. */
export function Gantt(props: { blockRuns: BlockRun[]; now: number }): Child {
  const started = props.blockRuns.filter((b) => b.startedAt !== null);
  const LABEL = 190;
  const TRACK = 600;
  const ROW = 24;
  const height = 10 + Math.max(1, props.blockRuns.length) * ROW + 20;
  if (started.length === 0) {
    return <p class="muted">No block run has started yet.</p>;
  }
  const t0 = Math.min(...started.map((b) => b.startedAt as number));
  const t1 = Math.max(t0 + 1, ...started.map((b) => b.completedAt ?? props.now));
  const span = t1 - t0;
  const x = (t: number) => LABEL + ((t - t0) / span) * TRACK;
  return (
    <svg class="gantt" viewBox={`0 0 ${LABEL + TRACK + 10} ${height}`} width={LABEL + TRACK + 10} height={height} role="img" aria-label={`timeline of ${props.blockRuns.length} block runs over ${durationText(span)}`} data-testid="gantt">
      <Patterns />
      {props.blockRuns.map((b, i) => {
        const y = 10 + i * ROW;
        const start = b.startedAt;
        const end = b.completedAt ?? props.now;
        const title = `${b.blockUuid}: ${b.status}${start !== null ? `, ${durationText(end - start)} from ${utcText(start)}` : ", not started"}${b.attempt > 1 ? `, attempt ${b.attempt}` : ""}`;
        return (
          <g class="gantt-row" data-block={b.blockUuid} data-status={b.status}>
            <title>{title}</title>
            <text x="0" y={y + 14}>
              {clip(b.blockUuid, 26)}
            </text>
            <rect class="track" x={LABEL} y={y + 2} width={TRACK} height={ROW - 6} />
            {start !== null ? <rect class={`bar-${b.status}`} x={x(start)} y={y + 3} width={Math.max(3, x(end) - x(start))} height={ROW - 8} /> : null}
          </g>
        );
      })}
      <text x={LABEL} y={height - 4}>
        0
      </text>
      <text x={LABEL + TRACK} y={height - 4} text-anchor="end">
        {durationText(span)}
      </text>
    </svg>
  );
}

const CHART_ORDER = ["completed", "failed", "cancelled", "running", "initial"] as const;

/** Runs per bucket stacked by status (completed, failed hatched, cancelled dotted, live). */
export function RunsChart(props: { buckets: OverviewBucket[] }): Child {
  const BAR = 22;
  const GAP = 6;
  const H = 140;
  const totals = props.buckets.map((b) => CHART_ORDER.reduce((sum, s) => sum + b.counts[s], 0));
  const max = Math.max(1, ...totals);
  const width = props.buckets.length * (BAR + GAP) + 40;
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${H + 30}`} width={width} height={H + 30} role="img" aria-label="runs by status per hour, last 24 hours (table below)" data-testid="runs-chart">
      <Patterns />
      <text x="0" y="12">
        {String(max)}
      </text>
      {props.buckets.map((bucket, i) => {
        let y = H + 10;
        const x = 34 + i * (BAR + GAP);
        return (
          <g>
            <title>{`${utcText(bucket.start)}: ${CHART_ORDER.map((s) => `${bucket.counts[s]} ${s}`).join(", ")}`}</title>
            {CHART_ORDER.map((status) => {
              const n = bucket.counts[status];
              if (n === 0) return null;
              const h = Math.max(1, (n / max) * H);
              y -= h;
              return <rect class={`seg-${status}`} x={x} y={y} width={BAR} height={h} />;
            })}
            {i % 6 === 0 ? (
              <text x={x} y={H + 26}>
                {new Date(bucket.start).toISOString().slice(11, 16)}
              </text>
            ) : null}
          </g>
        );
      })}
    </svg>
  );
}
