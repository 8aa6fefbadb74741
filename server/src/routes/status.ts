/**
 * Health and operations: `GET /api/health` (public liveness), `GET /api/status` (version,
 * database, scheduler heartbeats, runs by status) and `GET /metrics` (the same in Prometheus's
 * text exposition format, for scraping).
 */
import { isoOrNull } from "@kiln/core/bounds";
import { lostRaces } from "@kiln/core/engine";
import { systemStats, type SystemStats } from "@kiln/core/store";
import type { Hono } from "hono";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { one } from "../envelope.ts";
import { STATUS } from "../errors.ts";

const iso = isoOrNull;

/** Seconds from a scheduler's last heartbeat to now; its clock and ours may differ a little. */
const ageSeconds = (now: number, at: number): number => Math.max(0, (now - at) / 1000);

export function statusRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/health", summary: "Liveness: the server answers (no credentials)", role: "public", responseKey: "status" });
  app.get("/api/health", (c) => c.json({ status: "ok" }));

  doc.add({ method: "get", path: "/api/status", summary: "Version, database, scheduler heartbeats, runs by status", role: "viewer", responseKey: "status" });
  app.get("/api/status", async (c) => {
    const now = deps.clock.now();
    let stats: SystemStats;
    try {
      stats = await systemStats(deps.store.client);
    } catch {
      // reported, not thrown: a monitor wants "database unreachable", not a generic 500
      return one(c, "status", { version: deps.version, database: { reachable: false, migration_version: null }, schedulers: [] }, STATUS.database_unavailable);
    }
    return one(c, "status", {
      version: deps.version,
      database: { reachable: true, migration_version: stats.migrationVersion },
      schedulers: stats.schedulers.map((s) => ({
        id: s.id,
        host: s.host,
        pid: s.pid,
        started_at: iso(s.startedAt),
        heartbeat_at: iso(s.heartbeatAt),
        heartbeat_age_seconds: ageSeconds(now, s.heartbeatAt),
        beats: s.beats,
      })),
      pipeline_runs: stats.pipelineRuns,
      block_runs: stats.blockRuns,
      queue_depth: stats.pipelineRuns.initial,
      notifications_pending: stats.notificationsPending,
    });
  });

  doc.add({ method: "get", path: "/metrics", summary: "Prometheus metrics (text exposition format)", role: "viewer" });
  app.get("/metrics", async (c) => {
    const stats = await systemStats(deps.store.client);
    return c.body(prometheusText(stats, deps.clock.now(), lostRaces.snapshot()), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });
}

/** A label value with Prometheus's escapes (backslash, double quote, newline). */
function label(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

interface Metric {
  name: string;
  help: string;
  /** A gauge unless said: a snapshot of the database. */
  type?: "counter";
  samples: Array<{ labels?: Record<string, string>; value: number }>;
}

/**
 * The figures in Prometheus's text format: gauges (a snapshot of the database), and the races
 * this process lost to other replicas since it started (a counter, by kind).
 */
export function prometheusText(stats: SystemStats, now: number, racesLost: Record<string, number> = {}): string {
  const metrics: Metric[] = [
    {
      name: "kiln_pipeline_runs",
      help: "Pipeline runs by status.",
      samples: Object.entries(stats.pipelineRuns).map(([status, value]) => ({ labels: { status }, value })),
    },
    {
      name: "kiln_block_runs",
      help: "Block runs by status.",
      samples: Object.entries(stats.blockRuns).map(([status, value]) => ({ labels: { status }, value })),
    },
    { name: "kiln_queue_depth", help: "Pipeline runs waiting to start (status initial).", samples: [{ value: stats.pipelineRuns.initial }] },
    {
      name: "kiln_scheduler_heartbeat_age_seconds",
      help: "Seconds since each registered scheduler's last heartbeat (compared across clocks).",
      samples: stats.schedulers.map((s) => ({ labels: { scheduler: s.id, host: s.host }, value: ageSeconds(now, s.heartbeatAt) })),
    },
    {
      name: "kiln_scheduler_tick_lag_seconds",
      help: "How long the most overdue active trigger has waited past its next run time; 0 when none is overdue.",
      samples: [{ value: stats.earliestNextRunAt === null ? 0 : ageSeconds(now, stats.earliestNextRunAt) }],
    },
    { name: "kiln_notifications_pending", help: "Notifications waiting to be delivered (due or backing off).", samples: [{ value: stats.notificationsPending }] },
    {
      name: "kiln_races_lost_total",
      help: "Races this process lost to another replica (normal contention: a run started or taken over first, a lease held by another, an outcome already recorded).",
      type: "counter",
      samples: Object.entries(racesLost).map(([kind, value]) => ({ labels: { kind }, value })),
    },
  ];
  const lines: string[] = [];
  for (const metric of metrics) {
    lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type ?? "gauge"}`);
    for (const sample of metric.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const set = labels.length > 0 ? `{${labels.map(([k, v]) => `${k}=${label(v)}`).join(",")}}` : "";
      lines.push(`${metric.name}${set} ${sample.value}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
