/**
 * Run counters: how many pipeline runs each (pipeline, trigger, status) has, and block runs per
 * status, kept by triggers in the same transaction as every insert, status change and delete. So
 * list totals (Mage's metadata.count), a trigger's run counts and /metrics read a handful of
 * counter rows instead of counting a million runs.
 */
export const name = "run_counters";

// pipeline_schedule_id 0 stands for "no trigger" (ids start at 1), so the key has no NULL in it
const bump = (table: string, row: "NEW" | "OLD", delta: 1 | -1) =>
  table === "pipeline_runs"
    ? `INSERT INTO run_counters (kind, pipeline_uuid, pipeline_schedule_id, status, n)
         VALUES ('pipeline_run', ${row}.pipeline_uuid, coalesce(${row}.pipeline_schedule_id, 0), ${row}.status, ${delta})
         ON CONFLICT (kind, pipeline_uuid, pipeline_schedule_id, status) DO UPDATE SET n = n + (${delta});`
    : `INSERT INTO run_counters (kind, pipeline_uuid, pipeline_schedule_id, status, n)
         VALUES ('block_run', '', 0, ${row}.status, ${delta})
         ON CONFLICT (kind, pipeline_uuid, pipeline_schedule_id, status) DO UPDATE SET n = n + (${delta});`;

export const statements: string[] = [
  `CREATE TABLE run_counters (
    kind TEXT NOT NULL,
    pipeline_uuid TEXT NOT NULL,
    pipeline_schedule_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (kind, pipeline_uuid, pipeline_schedule_id, status)
  ) WITHOUT ROWID`,
  `INSERT INTO run_counters (kind, pipeline_uuid, pipeline_schedule_id, status, n)
     SELECT 'pipeline_run', pipeline_uuid, coalesce(pipeline_schedule_id, 0), status, count(*) FROM pipeline_runs
     GROUP BY pipeline_uuid, coalesce(pipeline_schedule_id, 0), status`,
  `INSERT INTO run_counters (kind, pipeline_uuid, pipeline_schedule_id, status, n)
     SELECT 'block_run', '', 0, status, count(*) FROM block_runs GROUP BY status`,
  `CREATE TRIGGER pipeline_runs_counted_insert AFTER INSERT ON pipeline_runs BEGIN ${bump("pipeline_runs", "NEW", 1)} END`,
  `CREATE TRIGGER pipeline_runs_counted_delete AFTER DELETE ON pipeline_runs BEGIN ${bump("pipeline_runs", "OLD", -1)} END`,
  // a detached run (its trigger deleted: ON DELETE SET NULL) moves to the "no trigger" counter
  `CREATE TRIGGER pipeline_runs_counted_update AFTER UPDATE OF status, pipeline_uuid, pipeline_schedule_id ON pipeline_runs
     WHEN OLD.status IS NOT NEW.status OR OLD.pipeline_uuid IS NOT NEW.pipeline_uuid OR OLD.pipeline_schedule_id IS NOT NEW.pipeline_schedule_id
     BEGIN ${bump("pipeline_runs", "OLD", -1)} ${bump("pipeline_runs", "NEW", 1)} END`,
  `CREATE TRIGGER block_runs_counted_insert AFTER INSERT ON block_runs BEGIN ${bump("block_runs", "NEW", 1)} END`,
  `CREATE TRIGGER block_runs_counted_delete AFTER DELETE ON block_runs BEGIN ${bump("block_runs", "OLD", -1)} END`,
  `CREATE TRIGGER block_runs_counted_update AFTER UPDATE OF status ON block_runs WHEN OLD.status IS NOT NEW.status
     BEGIN ${bump("block_runs", "OLD", -1)} ${bump("block_runs", "NEW", 1)} END`,
];
