/** What the scheduler needs: run ownership, trigger provenance, leases, a notification outbox. */
export const name = "scheduler";

export const statements: string[] = [
  // the scheduler process executing a run; with its heartbeat in `schedulers`, how orphans are found
  `ALTER TABLE pipeline_runs ADD COLUMN owner TEXT`,
  `CREATE INDEX pipeline_runs_live ON pipeline_runs (status, owner) WHERE status IN ('initial', 'running')`,
  // 'code' for triggers synced from triggers.yaml (removing one there deactivates it), 'api' otherwise
  `ALTER TABLE pipeline_schedules ADD COLUMN source TEXT NOT NULL DEFAULT 'api'`,
  // the sync reads only code triggers: without this it scans every schedule
  `CREATE INDEX pipeline_schedules_code ON pipeline_schedules (pipeline_uuid, name) WHERE source = 'code'`,
  // why a trigger cannot be scheduled (an invalid cron, an unknown timezone); null when it can
  `ALTER TABLE pipeline_schedules ADD COLUMN invalid_reason TEXT`,
  // the newest execution date the scheduler has dealt with (a run created, or a date skipped by policy)
  `ALTER TABLE pipeline_schedules ADD COLUMN last_execution_date INTEGER`,
  // a backfill's runs by date (a retried date has several; the guarded backfill transition that
  // creates them is what makes creation happen once)
  `CREATE INDEX pipeline_runs_backfill_date ON pipeline_runs (backfill_id, execution_date) WHERE backfill_id IS NOT NULL`,
  // what each tick asks of running backfills: their live runs
  `CREATE INDEX pipeline_runs_backfill_status ON pipeline_runs (backfill_id, status, id) WHERE backfill_id IS NOT NULL`,
  // fencing: a replica's writes carry the token it got with its lease, and lose to a newer holder
  `CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  )`,
  `CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL
  )`,
  `CREATE INDEX notifications_pending ON notifications (next_attempt_at) WHERE sent_at IS NULL`,
];
