/** The store over a real libSQL file: migrations, uniqueness under concurrent writers, pagination. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { executionPartition } from "@kiln/core";
import { migrate, MIGRATIONS, Store } from "@kiln/core/store";
import type { RunsCreated } from "@kiln/core/runs";
import { openDatabase } from "@kiln/node";
import { metadata, projectFixture, REPO_ROOT, type Fixture } from "../helpers/fixtures.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await projectFixture({
    "kiln.yaml": "",
    "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
    "data_loaders/a.js": "export default () => 1;\n",
  });
});
afterAll(() => fx.cleanup());

const url = () => `file:${join(fx.root, ".kiln/kiln.db")}`;

describe("migrations", () => {
  test("are recorded once and re-running them is a no-op", async () => {
    const rs = await fx.client.execute("SELECT id, name FROM migrations ORDER BY id");
    expect(rs.rows.map((r) => Number(r.id))).toEqual(MIGRATIONS.map((m) => m.id));
    expect(await migrate(fx.client)).toEqual([]);
  });

  test("create the tables later issues build on", async () => {
    const rs = await fx.client.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    const tables = rs.rows.map((r) => String(r.name));
    for (const t of ["pipeline_schedules", "pipeline_runs", "block_runs", "backfills", "secrets", "users", "api_keys", "schedulers"]) {
      expect(tables).toContain(t);
    }
  });

  test("two processes migrating one new file at once both succeed", async () => {
    const file = `file:${join(fx.root, "race.db")}`;
    const [a, b] = await Promise.all([openDatabase(file), openDatabase(file)]);
    const applied = await Promise.all([migrate(a), migrate(b)]);
    expect(applied.flat().sort((x, y) => x - y)).toEqual(MIGRATIONS.map((m) => m.id));
    a.close();
    b.close();
  });

  test("a database file uses WAL", async () => {
    const rs = await fx.client.execute("PRAGMA journal_mode");
    expect(String(rs.rows[0]?.journal_mode)).toBe("wal");
  });
});

describe("exactly-once constraints", () => {
  test("a second run for the same (schedule, execution_date) is not created", async () => {
    const schedule = await fx.store.createPipelineSchedule({ name: "daily", pipelineUuid: "p", scheduleType: "time" });
    const date = Date.UTC(2026, 0, 2, 3, 4, 5);
    const first = await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date });
    const second = await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date });
    expect(first?.executionPartition).toBe(`${schedule.id}/20260102T030405`);
    expect(second).toBeNull();
  });

  test("runs of one trigger within one second (API, event) get partitions of their own", async () => {
    const schedule = await fx.store.createPipelineSchedule({ name: "api-partitions", pipelineUuid: "p", scheduleType: "api" });
    const date = Date.UTC(2026, 0, 2, 3, 4, 5);
    const a = await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date + 7 });
    const b = await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date + 8 });
    expect(a?.executionPartition).toBe(`${schedule.id}/20260102T030405007`);
    expect(b?.executionPartition).toBe(`${schedule.id}/20260102T030405008`);
  });

  test("manual runs never collide: their partition ends with the run id", async () => {
    const date = Date.UTC(2026, 0, 2, 3, 4, 5);
    const a = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: date });
    const b = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: date });
    expect(a?.executionPartition).toBe(executionPartition(null, date, a?.id));
    expect(b?.executionPartition).toBe(`manual/20260102T030405_${b?.id}`);
  });

  test("two connections inserting the same runs and block runs concurrently make each row once", async () => {
    const schedule = await fx.store.createPipelineSchedule({ name: "two-writers", pipelineUuid: "p", scheduleType: "time" });
    const other = await Store.open(await openDatabase(url()));
    const dates = Array.from({ length: 100 }, (_, i) => Date.UTC(2025, 0, 1) + i * 3_600_000);
    const attempts = dates.flatMap((d) => [fx.store, other].map((s) => s.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: d })));
    const created = (await Promise.all(attempts)).filter((r) => r !== null);
    expect(created.length).toBe(100);
    const run = created[0]!;
    const insert = (s: Store) => {
      const batch = s.batch();
      batch.insertBlockRuns(run.id, ["x", "y", "z"]);
      return s.commit(batch);
    };
    await Promise.all([insert(fx.store), insert(other), insert(fx.store), insert(other)]);
    const rs = await fx.client.execute({ sql: "SELECT block_uuid FROM block_runs WHERE pipeline_run_id = ? ORDER BY block_uuid", args: [run.id] });
    expect(rs.rows.map((r) => String(r.block_uuid))).toEqual(["x", "y", "z"]);
    other.client.close();
  });

  test("two processes racing on the same dates create each run exactly once", async () => {
    const schedule = await fx.store.createPipelineSchedule({ name: "two-processes", pipelineUuid: "p", scheduleType: "time" });
    const worker = () =>
      new Promise<number>((resolve, reject) => {
        // execArgv: under Node the loader flags (tsx) that let the child run TypeScript too
        const child = spawn(process.execPath, [...process.execArgv, join(REPO_ROOT, "test/core/fixtures/insert-runs.ts"), url(), String(schedule.id), "200"], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.on("close", (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`worker exited ${code}`))));
      });
    const counts = await Promise.all([worker(), worker()]);
    expect(counts[0]! + counts[1]!).toBe(200);
    const rs = await fx.client.execute({ sql: "SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_schedule_id = ?", args: [schedule.id] });
    expect(Number(rs.rows[0]?.n)).toBe(200);
  });
});

describe("the runs created signal", () => {
  test("names the run a commit created (as stored, manual runs' partition included) with the trigger its creator read; a no-op insert names none", async () => {
    const schedule = await fx.store.createPipelineSchedule({ name: "signal-api", pipelineUuid: "p", scheduleType: "api" });
    const events: RunsCreated[] = [];
    const stop = fx.store.runsCreated.listen((event) => events.push(event));
    try {
      const date = Date.UTC(2026, 1, 2, 3, 4, 5);
      const triggered = await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date, triggered: true, schedule });
      const again = await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date, triggered: true, schedule });
      const manual = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: date });
      const unread = await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date + 1, triggered: true });
      expect(again).toBeNull();
      expect(events).toEqual([
        { resumed: false, runs: [{ run: triggered!, schedule }] },
        { resumed: false, runs: [] },
        { resumed: false, runs: [{ run: manual!, schedule: null }] },
        // the trigger was not handed over: the listener reads it if it needs it
        { resumed: false, runs: [{ run: unread! }] },
      ]);
    } finally {
      stop();
    }
  });

  test("names no runs when one of a batch's announcements did not name its run", async () => {
    const events: RunsCreated[] = [];
    const stop = fx.store.runsCreated.listen((event) => events.push(event));
    try {
      const named = fx.store.batch();
      const index = named.insertPipelineRun({ pipelineUuid: "p", pipelineScheduleId: null, backfillId: null, executionDate: 1, executionPartition: "signal/1", variables: {}, event: null, metrics: {} });
      named.announceRuns({ created: { statement: index, schedule: null } }).announceRuns({ resumed: true });
      await fx.store.commit(named);
      expect(events).toEqual([{ resumed: true }]);
    } finally {
      stop();
    }
  });
});

describe("keyset pagination", () => {
  test("pages run newest first without gaps or repeats, with filters", async () => {
    const schedule = await fx.store.createPipelineSchedule({ name: "pages", pipelineUuid: "p", scheduleType: "time" });
    for (let i = 0; i < 25; i++) {
      await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: Date.UTC(2024, 0, 1) + i * 1000 });
    }
    const seen: number[] = [];
    let after: string | null = null;
    do {
      const page = await fx.store.listPipelineRuns({ pipelineScheduleId: schedule.id }, { limit: 10, after });
      seen.push(...page.items.map((r) => r.id));
      after = page.next;
    } while (after);
    expect(seen.length).toBe(25);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
    expect(new Set(seen).size).toBe(25);
    const ranged = await fx.store.listPipelineRuns(
      { pipelineScheduleId: schedule.id, executionDateFrom: Date.UTC(2024, 0, 1) + 5000, executionDateTo: Date.UTC(2024, 0, 1) + 9000 },
      { limit: 100 },
    );
    expect(ranged.items.length).toBe(5);
    expect(ranged.next).toBeNull();
  });

  test("the list query uses an index, not a scan", async () => {
    // literal values: an EXPLAIN with bound arguments can leave its statement open on the connection
    const rs = await fx.client.execute("EXPLAIN QUERY PLAN SELECT * FROM pipeline_runs WHERE pipeline_uuid = 'p' AND id < 100 ORDER BY id DESC LIMIT 51");
    const plan = rs.rows.map((r) => String(r.detail)).join("\n");
    expect(plan).toContain("pipeline_runs_pipeline");
  });

  test("a malformed cursor is a RangeError, not a silent first page", async () => {
    await expect(fx.store.listPipelineRuns({}, { after: "abc" })).rejects.toThrow(RangeError);
  });
});

describe("secrets", () => {
  test("are stored encrypted and read back with the key; a wrong key cannot read them", async () => {
    const { generateSecretKey, importSecretKey } = await import("@kiln/core/runtime");
    const key = await importSecretKey(generateSecretKey());
    await fx.store.putSecret(key, "warehouse_password", "hunter2");
    const rs = await fx.client.execute("SELECT value_encrypted FROM secrets WHERE name = 'warehouse_password'");
    expect(String(rs.rows[0]?.value_encrypted)).not.toContain("hunter2");
    expect(await fx.store.getSecret(key, "warehouse_password")).toBe("hunter2");
    expect(await fx.store.listSecretNames()).toContain("warehouse_password");
    const wrong = await importSecretKey(generateSecretKey());
    await expect(fx.store.getSecret(wrong, "warehouse_password")).rejects.toThrow("cannot decrypt");
    await expect(importSecretKey("c2hvcnQ=")).rejects.toThrow("KILN_SECRET_KEY: expected 32 bytes");
  });
});
