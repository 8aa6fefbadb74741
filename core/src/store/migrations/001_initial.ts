/** The first schema: Mage's tables (snake_case, epoch-millisecond times) plus kiln's own. */
export const name = "initial";

const runStatus = "'initial','running','completed','failed','cancelled'";
const blockStatus = "'initial','queued','running','completed','failed','cancelled','upstream_failed','condition_failed'";

export const statements: string[] = [
  `CREATE TABLE pipeline_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    pipeline_uuid TEXT NOT NULL,
    schedule_type TEXT NOT NULL CHECK (schedule_type IN ('time','event','api')),
    schedule_interval TEXT,
    start_time INTEGER,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    status TEXT NOT NULL DEFAULT 'inactive' CHECK (status IN ('active','inactive')),
    variables TEXT NOT NULL DEFAULT '{}',
    sla INTEGER,
    token TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    description TEXT,
    last_enabled_at INTEGER,
    next_run_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (pipeline_uuid, name)
  )`,
  // the scheduler reads only the schedules that are due, so a tick costs what is due, not what exists
  `CREATE INDEX pipeline_schedules_due ON pipeline_schedules (next_run_at) WHERE status = 'active'`,
  `CREATE INDEX pipeline_schedules_token ON pipeline_schedules (token)`,
  `CREATE TABLE backfills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    pipeline_schedule_id INTEGER REFERENCES pipeline_schedules (id) ON DELETE SET NULL,
    pipeline_uuid TEXT NOT NULL,
    start_datetime INTEGER NOT NULL,
    end_datetime INTEGER NOT NULL,
    interval_type TEXT NOT NULL CHECK (interval_type IN ('minute','hour','day','week','month','year')),
    interval_units INTEGER NOT NULL DEFAULT 1 CHECK (interval_units > 0),
    variables TEXT NOT NULL DEFAULT '{}',
    block_uuid TEXT,
    max_concurrent_runs INTEGER,
    status TEXT NOT NULL DEFAULT 'initial' CHECK (status IN (${runStatus})),
    started_at INTEGER,
    completed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`,
  `CREATE INDEX backfills_pipeline ON backfills (pipeline_uuid, id)`,
  `CREATE INDEX backfills_status ON backfills (status, id)`,
  `CREATE TABLE pipeline_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_schedule_id INTEGER REFERENCES pipeline_schedules (id) ON DELETE SET NULL,
    pipeline_uuid TEXT NOT NULL,
    execution_date INTEGER NOT NULL,
    execution_partition TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'initial' CHECK (status IN (${runStatus})),
    variables TEXT NOT NULL DEFAULT '{}',
    event TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    backfill_id INTEGER REFERENCES backfills (id) ON DELETE SET NULL,
    passed_sla INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    completed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- exactly-once run creation across replicas and restarts: a duplicate insert is a no-op
    UNIQUE (pipeline_schedule_id, execution_date)
  )`,
  // keyset pagination: every list is "WHERE <filter> AND id < cursor ORDER BY id DESC"
  `CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (pipeline_uuid, id)`,
  `CREATE INDEX pipeline_runs_status ON pipeline_runs (status, id)`,
  `CREATE INDEX pipeline_runs_schedule ON pipeline_runs (pipeline_schedule_id, id)`,
  `CREATE INDEX pipeline_runs_backfill ON pipeline_runs (backfill_id, id) WHERE backfill_id IS NOT NULL`,
  `CREATE INDEX pipeline_runs_execution_date ON pipeline_runs (execution_date, id)`,
  `CREATE TABLE block_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_run_id INTEGER NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    block_uuid TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'initial' CHECK (status IN (${blockStatus})),
    attempt INTEGER NOT NULL DEFAULT 1,
    executor_type TEXT,
    executor_handle TEXT,
    owner TEXT,
    error TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    retry_at INTEGER,
    started_at INTEGER,
    completed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (pipeline_run_id, block_uuid)
  )`,
  `CREATE INDEX block_runs_status ON block_runs (status, id)`,
  `CREATE TABLE secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    value_encrypted TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`,
  `CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin','editor','viewer')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`,
  `CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin','editor','viewer')),
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    last_used_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
  )`,
  `CREATE TABLE schedulers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
  )`,
];
