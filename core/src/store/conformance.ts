/**
 * The store contract as checks any SqlClient must pass: a libSQL file or server, Cloudflare D1,
 * a future adapter. Written against no test framework, and as a list of named cases, so a host
 * that cannot register tests itself (a Worker under workerd) runs one case per request and the
 * test runner outside asks for each by name. A failed check throws StoreConformanceError.
 */
import type { SqlClient } from "./sql-client.ts";
import { MIGRATIONS } from "./migrations/index.ts";
import { migrate } from "./migrate.ts";
import { RunTakenOverError, Store } from "./index.ts";
import { insertBackfill } from "./backfills.ts";
import { IllegalTransitionError } from "../state-machine.ts";
import { triggeredExecutionPartition } from "../domain.ts";
import { generateSecretKey, importSecretKey } from "../secrets.ts";

/** What a case needs: the database under test, reached through fresh clients. */
export interface StoreConformanceHarness {
  /** A client of the database under test (migrated or not); the same database on every call. */
  client(): Promise<SqlClient>;
  /** A client of a second, empty database, for the migration cases. */
  emptyDatabase(): Promise<SqlClient>;
}

/** One named check of the store contract. */
export interface StoreConformanceCase {
  name: string;
  run(harness: StoreConformanceHarness): Promise<void>;
}

export class StoreConformanceError extends Error {
  override readonly name = "StoreConformanceError";
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new StoreConformanceError(message);
}

function same(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  check(a === e, `${what}: expected ${e}, got ${a}`);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new StoreConformanceError("expected the write to be refused, and it was made");
}

/** A name no other case (or earlier run against the same database) uses. */
function unique(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

async function openStore(harness: StoreConformanceHarness): Promise<Store> {
  return Store.open(await harness.client());
}

async function statusOf(client: SqlClient, runId: number): Promise<string> {
  const rs = await client.execute({ sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [runId] });
  return String(rs.rows[0]?.status ?? "missing");
}

/** The store contract, case by case. */
export const STORE_CONFORMANCE_CASES: readonly StoreConformanceCase[] = [
  {
    name: "migrations applied at once from two clients are each recorded once, and re-running them is a no-op",
    async run(h) {
      const [a, b] = [await h.emptyDatabase(), await h.emptyDatabase()];
      const applied = await Promise.all([migrate(a), migrate(b)]);
      same(applied.flat().sort((x, y) => x - y), MIGRATIONS.map((m) => m.id), "migrations applied by the two clients together");
      const rs = await a.execute("SELECT id FROM migrations ORDER BY id");
      same(rs.rows.map((r) => Number(r.id)), MIGRATIONS.map((m) => m.id), "recorded migrations");
      same(await migrate(a), [], "a second migrate");
      const tables = (await a.execute("SELECT name FROM sqlite_master WHERE type = 'table'")).rows.map((r) => String(r.name));
      for (const t of ["pipeline_schedules", "pipeline_runs", "block_runs", "backfills", "secrets", "users", "api_keys", "schedulers", "block_outputs"]) {
        check(tables.includes(t), `table ${t} is missing after migrating (have ${tables.join(", ")})`);
      }
    },
  },
  {
    name: "a run for a (schedule, execution_date) that exists is not created again",
    async run(h) {
      const store = await openStore(h);
      const schedule = await store.createPipelineSchedule({ name: unique("daily"), pipelineUuid: "p", scheduleType: "time" });
      const date = Date.UTC(2026, 0, 2, 3, 4, 5);
      const first = await store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date, variables: { n: 1, s: "ü" } });
      const second = await store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date });
      check(first !== null, "the first run was not created");
      same(first?.executionPartition, `${schedule.id}/20260102T030405`, "the run's partition");
      same(second, null, "the second run for the same date");
      same((await store.getPipelineRun(first!.id))?.variables, { n: 1, s: "ü" }, "the run's variables read back");
    },
  },
  {
    name: "a triggered run whose millisecond is taken goes after the trigger's latest within the window, with that millisecond's partition, each of many at once its own",
    async run(h) {
      const store = await openStore(h);
      const schedule = await store.createPipelineSchedule({ name: unique("hook"), pipelineUuid: "p", scheduleType: "api" });
      const date = Date.UTC(2026, 2, 8, 7, 30, 15, 998);
      const at = (afterLatestWithinMs?: number) =>
        store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: date, triggered: true, ...(afterLatestWithinMs ? { afterLatestWithinMs } : {}) });
      const first = await at();
      same(first?.executionPartition, triggeredExecutionPartition(schedule.id, date), "the first run's partition");
      same(await at(), null, "a second run at the taken millisecond");
      // committed together (group commit): each insert sees the ones before it
      const moved = await Promise.all(Array.from({ length: 5 }, () => at(1000)));
      same(moved.map((r) => r?.executionDate).sort(), [1, 2, 3, 4, 5].map((i) => date + i), "the moved runs' execution dates");
      for (const run of moved) same(run?.executionPartition, triggeredExecutionPartition(schedule.id, run!.executionDate), "a moved run's partition (across a second's end)");
      const stored = await store.getPipelineRun(moved[0]!.id);
      same([typeof stored?.executionDate, stored?.executionPartition], ["number", moved[0]!.executionPartition], "a moved run read back");
    },
  },
  {
    name: "a backfill's 100 runs are inserted in one batch, each statement within the bound-parameter limit",
    async run(h) {
      const store = await openStore(h);
      const start = Date.UTC(2026, 0, 1);
      const backfill = await insertBackfill(store.client, { name: unique("many-dates"), pipelineUuid: "p", startDatetime: start, endDatetime: start + 99 * 86_400_000, intervalType: "day" }, store.clock.now());
      const runs = Array.from({ length: 100 }, (_, i) => ({ executionDate: start + i * 86_400_000, executionPartition: `backfill/${backfill.id}/${i}`, supersedes: 0 }));
      const batch = store.batch();
      const indexes = batch.insertBackfillRuns(backfill, runs);
      const results = await store.commit(batch);
      same(indexes.reduce((sum, i) => sum + (results[i]?.rows.length ?? 0), 0), 100, "the runs the batch reports created (rows returned)");
      const rs = await store.client.execute({ sql: "SELECT count(*) AS n FROM pipeline_runs WHERE backfill_id = ?", args: [backfill.id] });
      same(Number(rs.rows[0]?.n), 100, "the backfill's runs stored");
    },
  },
  {
    name: "manual runs get partitions ending with their own id, chosen in the insert: at once each its own, a deleted run's id never again",
    async run(h) {
      const store = await openStore(h);
      const date = Date.UTC(2026, 0, 2, 3, 4, 5);
      const a = await store.createPipelineRun({ pipelineUuid: "p", executionDate: date });
      const b = await store.createPipelineRun({ pipelineUuid: "p", executionDate: date });
      check(a !== null && b !== null && a.id !== b.id, "two manual runs were not both created");
      same(b?.executionPartition, `manual/20260102T030405_${b?.id}`, "the manual run's partition");
      same((await store.getPipelineRun(b!.id))?.executionPartition, b?.executionPartition, "the partition read back");
      // committed together (group commit): each insert sees the ones before it
      const together = await Promise.all(Array.from({ length: 4 }, () => store.createPipelineRun({ pipelineUuid: "p", executionDate: date })));
      same(new Set(together.map((r) => r?.id)).size, 4, "runs created at once: distinct ids");
      for (const run of together) same(run?.executionPartition, `manual/20260102T030405_${run?.id}`, "a run created at once: its partition");
      // AUTOINCREMENT's promise: the newest run deleted, its id is not handed out again
      const newest = Math.max(...together.map((r) => r!.id));
      await store.client.execute({ sql: "DELETE FROM pipeline_runs WHERE id = ?", args: [newest] });
      const after = await store.createPipelineRun({ pipelineUuid: "p", executionDate: date });
      same(after?.id, newest + 1, "the run after the newest was deleted");
      same(after?.executionPartition, `manual/20260102T030405_${newest + 1}`, "its partition");
    },
  },
  {
    name: "two clients creating the same runs and block runs at once make each row once",
    async run(h) {
      const [one, other] = [await openStore(h), await openStore(h)];
      const schedule = await one.createPipelineSchedule({ name: unique("two-writers"), pipelineUuid: "p", scheduleType: "time" });
      const dates = Array.from({ length: 40 }, (_, i) => Date.UTC(2025, 0, 1) + i * 3_600_000);
      const attempts = dates.flatMap((d) => [one, other].map((s) => s.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: d })));
      const created = (await Promise.all(attempts)).filter((r) => r !== null);
      same(created.length, 40, "runs created");
      const run = created[0]!;
      const insert = (s: Store) => {
        const batch = s.batch();
        batch.insertBlockRuns(run.id, ["x", "y", "z"]);
        return s.commit(batch);
      };
      await Promise.all([insert(one), insert(other), insert(one), insert(other)]);
      same((await one.getBlockRuns(run.id)).map((b) => b.blockUuid).sort(), ["x", "y", "z"], "block runs");
    },
  },
  {
    name: "a guarded batch whose guard fails is refused whole, with what the record is now",
    async run(h) {
      const store = await openStore(h);
      const run = (await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now() }))!;
      const batch = store.batch();
      batch.insertBlockRuns(run.id, ["must-not-exist"]);
      // the run is in initial, not running: the guard fails and the insert before it rolls back
      batch.transitionPipelineRun(run.id, "running", "completed");
      const error = await rejection(store.commit(batch));
      check(error instanceof IllegalTransitionError, `expected an IllegalTransitionError, got ${String(error)}`);
      check(String((error as Error).message).includes("initial"), `the error does not say the run is in initial: ${(error as Error).message}`);
      same(await statusOf(store.client, run.id), "initial", "the run's status");
      same((await store.getBlockRuns(run.id)).length, 0, "block runs left by the refused batch");
    },
  },
  {
    name: "block runs created as the batch's moves left them: the path checked, a moved row never written over an existing one",
    async run(h) {
      const store = await openStore(h);
      const run = (await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now() }))!;
      const illegal = (() => {
        try {
          store.batch().insertBlockRunsAs(run.id, [{ blockUuid: "skips-queued", executorType: "local", status: "running" }]);
        } catch (error) {
          return error;
        }
        return null;
      })();
      check(illegal instanceof IllegalTransitionError, `initial -> running without queued was not refused: ${String(illegal)}`);
      const first = store.batch();
      first.transitionPipelineRun(run.id, "initial", "running", { startedAt: first.now });
      const [index] = first.insertBlockRunsAs(run.id, [
        { blockUuid: "a", executorType: "local", status: "running", via: ["queued"], patch: { startedAt: first.now, attempt: 1, metrics: undefined } },
        { blockUuid: "b", executorType: "local", status: "initial" },
      ]);
      const results = await store.commit(first);
      same(results[index!]?.rows.map((r) => String(r.block_uuid)).sort(), ["a", "b"], "the ids returned for the new block runs");
      const rows = new Map((await store.getBlockRuns(run.id)).map((r) => [r.blockUuid, r]));
      same([rows.get("a")?.status, rows.get("a")?.attempt, rows.get("a")?.startedAt, rows.get("a")?.executorType], ["running", 1, first.now, "local"], "block run a");
      same([rows.get("b")?.status, rows.get("b")?.startedAt, rows.get("b")?.metrics], ["initial", null, {}], "block run b");
      // a's row exists: created again as moved, the batch is refused whole (the run's move with it)
      const again = store.batch();
      again.transitionPipelineRun(run.id, "running", "completed", { completedAt: again.now });
      again.insertBlockRunsAs(run.id, [{ blockUuid: "a", executorType: "local", status: "cancelled", patch: { completedAt: again.now } }]);
      await rejection(store.commit(again));
      same([await statusOf(store.client, run.id), (await store.getBlockRuns(run.id)).find((r) => r.blockUuid === "a")?.status], ["running", "running"], "the run and block run a after the refused batch");
      // asked again as initial, an existing row is left as it is
      const initialAgain = store.batch();
      initialAgain.insertBlockRunsAs(run.id, [{ blockUuid: "a", executorType: "local", status: "initial" }]);
      await store.commit(initialAgain);
      same((await store.getBlockRuns(run.id)).find((r) => r.blockUuid === "a")?.status, "running", "block run a after an initial insert of it");
    },
  },
  {
    name: "a launch's guard on the run names its status first, then its owner",
    async run(h) {
      const store = await openStore(h);
      const run = (await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now() }))!;
      const start = store.batch();
      start.transitionPipelineRun(run.id, "initial", "running", { owner: "one", startedAt: start.now });
      await store.commit(start);
      await store.commit(store.batch().requirePipelineRunStatusAndOwner(run.id, "running", "one"));
      const taken = await rejection(store.commit(store.batch().requirePipelineRunStatusAndOwner(run.id, "running", "other")));
      check(taken instanceof RunTakenOverError && taken.owner === "one", `expected RunTakenOverError naming owner one, got ${String(taken)}`);
      await store.commit(store.batch().transitionPipelineRun(run.id, "running", "cancelled", { completedAt: Date.now() }));
      const ended = await rejection(store.commit(store.batch().requirePipelineRunStatusAndOwner(run.id, "running", "other")));
      check(ended instanceof IllegalTransitionError && ended.actual === "cancelled", `expected IllegalTransitionError saying cancelled, got ${String(ended)}`);
      const gone = await rejection(store.commit(store.batch().requirePipelineRunStatus(run.id + 1000, "running")));
      check(gone instanceof IllegalTransitionError && gone.actual === "missing", `a missing run's guard: expected IllegalTransitionError saying missing, got ${String(gone)}`);
    },
  },
  {
    name: "group commit: batches committed at once all land but the one whose guard lost, which is refused alone",
    async run(h) {
      const store = await openStore(h);
      const runs = [];
      for (let i = 0; i < 5; i++) runs.push((await store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now() + i }))!);
      const commits = runs.map((run, i) => {
        const batch = store.batch();
        batch.insertBlockRuns(run.id, [`b${i}`]);
        // the third batch expects a status the run is not in: it loses, the others must not
        batch.transitionPipelineRun(run.id, i === 2 ? "running" : "initial", i === 2 ? "completed" : "running");
        return store.commit(batch).then(
          () => "committed",
          (error: unknown) => (error instanceof IllegalTransitionError ? "refused" : `failed: ${String(error)}`),
        );
      });
      same(await Promise.all(commits), ["committed", "committed", "refused", "committed", "committed"], "the five batches' outcomes");
      for (const [i, run] of runs.entries()) {
        same(await statusOf(store.client, run.id), i === 2 ? "initial" : "running", `run ${i}'s status`);
        same((await store.getBlockRuns(run.id)).length, i === 2 ? 0 : 1, `run ${i}'s block runs`);
      }
    },
  },
  {
    name: "pages run newest first without gaps or repeats, and filter by execution date",
    async run(h) {
      const store = await openStore(h);
      const schedule = await store.createPipelineSchedule({ name: unique("pages"), pipelineUuid: "p", scheduleType: "time" });
      const base = Date.UTC(2024, 0, 1);
      for (let i = 0; i < 25; i++) await store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: schedule.id, executionDate: base + i * 1000 });
      const seen: number[] = [];
      let after: string | null = null;
      do {
        const page: { items: Array<{ id: number }>; next: string | null } = await store.listPipelineRuns({ pipelineScheduleId: schedule.id }, { limit: 10, after });
        seen.push(...page.items.map((r) => r.id));
        after = page.next;
      } while (after);
      same(seen.length, 25, "runs paged through");
      same([...seen].sort((a, b) => b - a), seen, "the order of the pages");
      same(new Set(seen).size, 25, "distinct runs");
      const ranged = await store.listPipelineRuns({ pipelineScheduleId: schedule.id, executionDateFrom: base + 5000, executionDateTo: base + 9000 }, { limit: 100 });
      same(ranged.items.length, 5, "runs in the date range");
      same(await store.totalPipelineRuns({ pipelineScheduleId: schedule.id }), 25, "the counted total");
    },
  },
  {
    name: "secrets are stored encrypted and read back with the key only",
    async run(h) {
      const store = await openStore(h);
      const key = await importSecretKey(generateSecretKey());
      const name = unique("warehouse_password").replace(/-/g, "_");
      await store.putSecret(key, name, "hunter2");
      const rs = await store.client.execute({ sql: "SELECT value_encrypted FROM secrets WHERE name = ?", args: [name] });
      check(rs.rows.length === 1 && !String(rs.rows[0]?.value_encrypted).includes("hunter2"), "the secret is not stored encrypted");
      same(await store.getSecret(key, name), "hunter2", "the secret read back");
      check((await store.listSecretNames()).includes(name), "the secret's name is not listed");
      const wrong = await importSecretKey(generateSecretKey());
      const error = await rejection(store.getSecret(wrong, name));
      check(String((error as Error).message).includes("cannot decrypt"), `a wrong key's error: ${String(error)}`);
    },
  },
];

/** A test-registering function, as bun:test, node:test and vitest all have. */
export type DefineStoreTest = (name: string, run: () => Promise<void>, timeoutMs?: number) => unknown;

/** Registers every case with the caller's test function, against one harness. */
export function runStoreConformance(test: DefineStoreTest, harness: StoreConformanceHarness, timeoutMs = 30_000): void {
  for (const c of STORE_CONFORMANCE_CASES) test(c.name, () => c.run(harness), timeoutMs);
}
