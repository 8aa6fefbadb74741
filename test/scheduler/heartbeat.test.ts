/**
 * Heartbeats and what hangs on them, with two real schedulers on one database file and real
 * time: a scheduler whose heartbeat cannot be written lets go of its runs (its in-process block
 * aborted) before the orphan window lets another take them over, so the block never runs twice
 * at once; and a scheduler stopping keeps heartbeating through its grace period, so the run it is
 * finishing is not taken over from under it; and a scheduler whose tick was held up for longer than
 * the orphan window (as by a freeze in its middle) does not take for dead a scheduler that
 * registered meanwhile.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock } from "@kiln/core";
import { type SqlClient } from "@kiln/core/store";
import { projectFixture, until, type Fixture } from "../helpers/fixtures.ts";
import { IN_PROCESS, replica, type Replica } from "../helpers/scheduler.ts";

/** An in-process block that marks (with the time) its start and its signal's abort, per attempt, and returns once its gate file exists. */
function markingBlock(root: string): string {
  const marks = JSON.stringify(join(root, "marks"));
  return `import { existsSync, mkdirSync, writeFileSync } from "node:fs";
export default async function work(ctx) {
  mkdirSync(${marks}, { recursive: true });
  const mark = (name) => writeFileSync(${marks} + "/" + name + "-" + ctx.attempt, String(Date.now()));
  mark("started");
  ctx.signal.addEventListener("abort", () => mark("aborted"));
  while (!existsSync(${marks} + "/gate-" + ctx.attempt) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  if (ctx.signal.aborted) throw new Error("aborted");
  return { attempt: ctx.attempt };
}
`;
}

/** A connection whose statements matching `held` can be held up (heartbeats: as by a database this one process cannot reach). */
function holdable(matches: (sql: string) => boolean): { wrap: (client: SqlClient) => SqlClient; hold: () => void; release: () => void } {
  let holding = false;
  const held: Array<() => void> = [];
  const wrap = (client: SqlClient): SqlClient => ({
    execute: ((...args: Parameters<SqlClient["execute"]>) => {
      const stmt = args[0];
      const sql = typeof stmt === "string" ? stmt : (stmt as { sql: string }).sql;
      if (holding && matches(sql)) {
        return new Promise((resolve, reject) => held.push(() => void (client.execute as (...a: typeof args) => ReturnType<SqlClient["execute"]>)(...args).then(resolve, reject)));
      }
      return (client.execute as (...a: typeof args) => ReturnType<SqlClient["execute"]>)(...args);
    }) as SqlClient["execute"],
    batch: client.batch.bind(client),
    close: () => client.close(),
  });
  return {
    wrap,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      for (const go of held.splice(0)) go();
    },
  };
}

let fx: Fixture | null = null;
const replicas: Replica<typeof systemClock>[] = [];
/** Held-up heartbeats to let through before stopping (a stop waits for its tick). */
const releases: Array<() => void> = [];

afterEach(async () => {
  for (const release of releases.splice(0)) release();
  for (const r of replicas) await r.scheduler.stop(0).catch(() => undefined);
  for (const r of replicas.splice(0)) r.close();
  fx?.cleanup();
  fx = null;
});

async function fixture(): Promise<Fixture> {
  const f = await projectFixture({
    "kiln.yaml": IN_PROCESS,
    // the lost attempt counts as failed; the new owner retries it
    "pipelines/p/metadata.yaml": "retry_config:\n  retries: 1\n  delay: 0\nblocks:\n  - uuid: work\n    type: custom\n",
    "custom/work.js": "export default () => null;\n",
  });
  writeFileSync(join(f.root, "custom/work.js"), markingBlock(f.root));
  fx = f;
  return f;
}

const markPath = (f: Fixture, name: string) => join(f.root, "marks", name);
/** The time a mark recorded, once it is written (create and write are two steps). */
function markTime(f: Fixture, name: string): number | null {
  try {
    const text = readFileSync(markPath(f, name), "utf8");
    return text === "" ? null : Number(text);
  } catch {
    return null;
  }
}

async function runRow(f: Fixture, id: number) {
  const rs = await f.client.execute({ sql: "SELECT status, owner FROM pipeline_runs WHERE id = ?", args: [id] });
  return { status: String(rs.rows[0]?.status), owner: String(rs.rows[0]?.owner) };
}

async function beatsOf(f: Fixture, id: string): Promise<number> {
  const rs = await f.client.execute({ sql: "SELECT beats FROM schedulers WHERE id = ?", args: [id] });
  return Number(rs.rows[0]?.beats ?? -1);
}

describe("heartbeats", () => {
  test(
    "a scheduler whose heartbeat cannot be written aborts its in-process block before another scheduler starts the block's next attempt",
    async () => {
      const f = await fixture();
      const beats = holdable((sql) => sql.includes("INTO schedulers"));
      releases.push(beats.release);
      // the engine's own watch is slow here (its default): the lapse must be acted on without it
      const a = await replica(f, systemClock, "replica-a", { orphanAfterMs: 3000, tickIntervalMs: 100, wrapClient: beats.wrap, engineOptions: { watchIntervalMs: 2000 } });
      replicas.push(a);
      const run = (await f.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
      a.scheduler.start();
      await until(async () => markTime(f, "started-1") !== null, "the first attempt to start in replica a", 30_000);
      expect((await runRow(f, run.id)).owner).toBe("replica-a");

      const b = await replica(f, systemClock, "replica-b", { orphanAfterMs: 3000, tickIntervalMs: 100 });
      replicas.push(b);
      b.scheduler.start();
      // b has seen a beating; from now on a's heartbeats never reach the database
      const before = await beatsOf(f, "replica-a");
      await until(async () => (await beatsOf(f, "replica-a")) >= before + 2 && (await beatsOf(f, "replica-b")) >= 2, "both schedulers to beat", 30_000);
      beats.hold();

      await until(async () => (await runRow(f, run.id)).owner === "replica-b", "replica b to take the run over", 30_000);
      await until(async () => markTime(f, "started-2") !== null, "the retry to start in replica b", 30_000);
      writeFileSync(markPath(f, "gate-2"), "");
      await until(async () => (await runRow(f, run.id)).status === "completed", "the run to complete", 30_000);

      // the first attempt was stopped, and before the second began: never both at once
      const aborted = markTime(f, "aborted-1");
      expect(aborted).not.toBeNull();
      expect(aborted!).toBeLessThanOrEqual(markTime(f, "started-2")!);
      const rows = await f.client.execute({ sql: "SELECT status, attempt, error FROM block_runs WHERE pipeline_run_id = ?", args: [run.id] });
      expect(rows.rows.map((r) => [r.status, Number(r.attempt)])).toEqual([["completed", 2]]);
      beats.release();
    },
    90_000,
  );

  test(
    "a scheduler stopping heartbeats through its grace period: the run it is finishing is not taken over",
    async () => {
      const f = await fixture();
      const a = await replica(f, systemClock, "replica-a", { orphanAfterMs: 1500, tickIntervalMs: 100 });
      const b = await replica(f, systemClock, "replica-b", { orphanAfterMs: 1500, tickIntervalMs: 100 });
      replicas.push(a, b);
      const run = (await f.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
      a.scheduler.start();
      await until(async () => markTime(f, "started-1") !== null, "the first attempt to start in replica a", 30_000);
      b.scheduler.start();

      // a stops: no new work, but its run may finish within the grace period
      const stopping = a.scheduler.stop(60_000);
      const before = await beatsOf(f, "replica-a");
      // well past the orphan window in beats of a (one per tick interval at most): b would have taken the run over by now
      await until(async () => (await beatsOf(f, "replica-a")) >= before + 25 && (await beatsOf(f, "replica-b")) >= 25, "replica a to go on beating while it stops", 30_000);
      expect((await runRow(f, run.id)).owner).toBe("replica-a");
      expect(markTime(f, "started-2")).toBeNull();
      expect(existsSync(markPath(f, "aborted-1"))).toBe(false);

      writeFileSync(markPath(f, "gate-1"), "");
      await stopping;
      expect(await runRow(f, run.id)).toEqual({ status: "completed", owner: "replica-a" });
      // once stopped, its heartbeat is gone: nothing of it is left to wait for
      expect(await beatsOf(f, "replica-a")).toBe(-1);
    },
    90_000,
  );

  test(
    "a tick held up past the orphan window does not take over the runs of a scheduler that started meanwhile",
    async () => {
      const f = await fixture();
      // b's tick stalls between its heartbeat and its takeovers (its SLA read held up), as a frozen process's tick would
      const sla = holdable((sql) => sql.includes("passed_sla = 0"));
      releases.push(sla.release);
      const b = await replica(f, systemClock, "replica-b", { orphanAfterMs: 3000, tickIntervalMs: 100, wrapClient: sla.wrap });
      replicas.push(b);
      b.scheduler.start();
      await until(async () => (await beatsOf(f, "replica-b")) >= 2, "replica b to beat", 30_000);
      sla.hold();
      const heldAt = Date.now();

      // c registers while b's tick is held, and runs the run; it ticks (and heartbeats) rarely
      const c = await replica(f, systemClock, "replica-c", { orphanAfterMs: 3000, tickIntervalMs: 2500 });
      replicas.push(c);
      const run = (await f.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
      c.scheduler.start();
      await until(async () => markTime(f, "started-1") !== null, "the first attempt to start in replica c", 30_000);
      // b's tick began longer ago than the orphan window when it goes on
      await until(() => Date.now() - heldAt > 3500, "the orphan window to pass while b's tick is held", 30_000);
      sla.release();
      const after = await beatsOf(f, "replica-b");
      await until(async () => (await beatsOf(f, "replica-b")) >= after + 10, "replica b to tick on", 30_000);

      expect((await runRow(f, run.id)).owner).toBe("replica-c");
      expect(markTime(f, "aborted-1")).toBeNull();
      expect(markTime(f, "started-2")).toBeNull();
      writeFileSync(markPath(f, "gate-1"), "");
      await until(async () => (await runRow(f, run.id)).status === "completed", "the run to complete", 30_000);
      expect(await runRow(f, run.id)).toEqual({ status: "completed", owner: "replica-c" });
    },
    90_000,
  );
});
