/**
 * Exactly once across replicas: three schedulers, each with its own Store, RunEngine and database
 * connection to the same file, sharing one fake clock and ticking at the same moments.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock, type OutputStore } from "@kiln/core";
import { lostRaces } from "@kiln/core/engine";
import type { Log } from "@kiln/scheduler";
import { projectFixture, until, type Fixture } from "../helpers/fixtures.ts";
import {
  blockRunRows,
  closeGate,
  gatedProject,
  HOUR,
  IN_PROCESS,
  iso,
  openGate,
  replica,
  runs,
  schedule,
  triggersYaml,
  utc,
  waitForEngines,
  waitForQuiet,
  waitForRun,
  type Replica,
} from "../helpers/scheduler.ts";

/**
 * The simulated schedulers tick once a simulated hour, so each one's heartbeat is up to an hour
 * old when another looks for orphans: they are presumed dead only after two (in production a
 * scheduler heartbeats every second and is presumed dead after 30).
 */
const ORPHAN_AFTER = 2 * HOUR;

/** Counts calls of the block, per partition (the block runs in this process). */
function countingBlock(key: string): string {
  return `export default function block(ctx) {
  const calls = (globalThis.__kilnCalls ??= {});
  const mine = (calls[${JSON.stringify(key)}] ??= {});
  mine[ctx.executionPartition] = (mine[ctx.executionPartition] ?? 0) + 1;
  return { partition: ctx.executionPartition, attempt: ctx.attempt };
}
`;
}

function calls(key: string): Record<string, number> {
  return ((globalThis as unknown as { __kilnCalls?: Record<string, Record<string, number>> }).__kilnCalls ?? {})[key] ?? {};
}

/** An OutputStore that counts writes per partition/block into `writes`. */
function counting(writes: Map<string, number>) {
  return (inner: OutputStore): OutputStore => ({
    async write(pipelineUuid, partition, blockUuid, value) {
      const key = `${partition}/${blockUuid}`;
      writes.set(key, (writes.get(key) ?? 0) + 1);
      await inner.write(pipelineUuid, partition, blockUuid, value);
    },
    read: (pipelineUuid, partition, blockUuid) => inner.read(pipelineUuid, partition, blockUuid),
  });
}

async function closeAll(fx: Fixture, replicas: Replica[]) {
  await waitForEngines(replicas.map((r) => r.engine), 60_000).catch(() => {});
  for (const r of replicas) r.close();
  fx.cleanup();
}

describe("three schedulers on one database", () => {
  test("an @hourly trigger over a simulated week: 168 runs, each execution date once, each run started once", async () => {
    const ACTIVATED = utc(2026, 3, 2, 0, 30);
    const clock = new FakeClock(ACTIVATED);
    const fx = await projectFixture(
      {
        "kiln.yaml": IN_PROCESS,
        "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
        "custom/work.js": countingBlock("week"),
        "pipelines/p/triggers.yaml": triggersYaml([{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active" }]),
      },
      clock,
    );
    const writes = new Map<string, number>();
    const replicas: Replica[] = [];
    try {
      for (const id of ["replica-a", "replica-b", "replica-c"]) replicas.push(await replica(fx, clock, id, { wrapOutputs: counting(writes), orphanAfterMs: ORPHAN_AFTER }));
      const reports = await Promise.all(replicas.map((r) => r.scheduler.tick()));
      expect(reports.reduce((n, r) => n + r.runs.created, 0)).toBe(0);

      // the replicas start their ticks in a different order each hour, some after a few turns of
      // the event loop, so each of them wins some races (a seeded generator keeps it repeatable)
      let seed = 42;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const turns = async (n: number) => {
        for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
      };
      const started = new Map<string, number>();
      for (let hour = 1; hour <= 168; hour++) {
        clock.advance(utc(2026, 3, 2, 0) + hour * HOUR - clock.now());
        const order = [0, 1, 2].map((i) => replicas[(i + hour) % 3]!);
        const ticks = await Promise.all(
          order.map(async (r) => {
            await turns(Math.floor(random() * 3));
            return { id: r.id, report: await r.scheduler.tick() };
          }),
        );
        for (const t of ticks) started.set(t.id, (started.get(t.id) ?? 0) + t.report.started);
      }
      // more starts were attempted than runs exist: the losers' attempts were refused
      expect([...started.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(168);
      const all = await waitForQuiet(fx.client, 60_000);
      await waitForEngines(replicas.map((r) => r.engine), 60_000);

      expect(all.length).toBe(168);
      const expected = Array.from({ length: 168 }, (_, i) => iso(utc(2026, 3, 2, 1) + i * HOUR));
      expect(all.map((r) => iso(r.execution_date))).toEqual(expected);
      expect(new Set(all.map((r) => r.execution_date)).size).toBe(168);
      expect(all.filter((r) => r.status !== "completed")).toEqual([]);
      const ids = new Set(replicas.map((r) => r.id));
      // the races were real: the runs were started by more than one of the replicas
      expect(new Set(all.map((r) => r.owner)).size).toBeGreaterThanOrEqual(2);
      expect(all.every((r) => r.owner !== null && ids.has(r.owner))).toBe(true);

      const blocks = await blockRunRows(fx.client);
      expect(blocks.length).toBe(168);
      expect(new Set(blocks.map((b) => b.pipeline_run_id)).size).toBe(168);
      expect(blocks.every((b) => b.status === "completed" && b.attempt === 1 && b.block_uuid === "work")).toBe(true);

      // each block ran once and wrote its output once
      const ran = calls("week");
      expect(Object.keys(ran).length).toBe(168);
      expect(Object.values(ran).every((n) => n === 1)).toBe(true);
      expect(writes.size).toBe(168);
      expect([...writes.values()].every((n) => n === 1)).toBe(true);
      for (const run of all) expect(ran[run.execution_partition]).toBe(1);

      const row = await schedule(fx.client, "hourly");
      expect(row.last_execution_date).toBe(utc(2026, 3, 9, 0));
      expect(row.invalid_reason).toBeNull();
    } finally {
      await closeAll(fx, replicas);
    }
  });

  test("cancel_previous with three schedulers ticking at once: the old run is cancelled once, the new one created once, the trigger stays valid", async () => {
    closeGate("rep-cancel");
    const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
    const fx = await projectFixture(
      gatedProject("rep-cancel", [
        {
          name: "hourly",
          schedule_type: "time",
          schedule_interval: "@hourly",
          status: "active",
          settings: { create_initial_pipeline_run: true, overlap: "cancel_previous" },
        },
      ]),
      clock,
    );
    const replicas: Replica[] = [];
    try {
      for (const id of ["replica-a", "replica-b", "replica-c"]) replicas.push(await replica(fx, clock, id, { orphanAfterMs: ORPHAN_AFTER }));
      await Promise.all(replicas.map((r) => r.scheduler.tick()));
      const [first] = await runs(fx.client);
      await waitForRun(fx.client, first!.id, ["running"]);

      for (const hour of [11, 12]) {
        clock.advance(utc(2026, 3, 2, hour) - clock.now());
        const reports = await Promise.all(replicas.map((r) => r.scheduler.tick()));
        const row = await schedule(fx.client, "hourly");
        expect({ hour, invalid: row.invalid_reason, invalidCount: reports.reduce((n, r) => n + r.runs.invalid, 0) }).toEqual({ hour, invalid: null, invalidCount: 0 });
        expect(iso(row.next_run_at)).toBe(iso(utc(2026, 3, 2, hour + 1)));
        const all = await runs(fx.client);
        expect(all.map((r) => iso(r.execution_date))).toEqual([10, 11, 12].filter((h) => h <= hour).map((h) => iso(utc(2026, 3, 2, h))));
        await waitForRun(fx.client, all[all.length - 1]!.id, ["running"]);
        expect(all.slice(0, -1).every((r) => r.status === "cancelled")).toBe(true);
      }
      // a later run still comes on time
      clock.advance(utc(2026, 3, 2, 13) - clock.now());
      await Promise.all(replicas.map((r) => r.scheduler.tick()));
      expect((await runs(fx.client)).length).toBe(4);
      openGate("rep-cancel");
      await until(async () => (await runs(fx.client, "status IN ('initial', 'running')")).length === 0, "every run to end");
    } finally {
      openGate("rep-cancel");
      await closeAll(fx, replicas);
    }
  });

  test("after an outage, an SLA breach and a late run are flagged and notified once, not once per replica", async () => {
    closeGate("rep-notify");
    const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
    const files = gatedProject("rep-notify", [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", sla: 60 }]);
    files["kiln.yaml"] = `${IN_PROCESS}notification_config:\n  webhooks:\n    - url: http://127.0.0.1:9/hook\n`;
    const fx = await projectFixture(files, clock);
    const posted: string[] = [];
    const fakeFetch = (async (url: string | URL | Request) => {
      posted.push(String(url));
      return new Response("ok");
    }) as typeof fetch;
    const replicas: Replica[] = [];
    try {
      for (const id of ["replica-a", "replica-b", "replica-c"]) replicas.push(await replica(fx, clock, id, { fetch: fakeFetch, orphanAfterMs: ORPHAN_AFTER }));
      await Promise.all(replicas.map((r) => r.scheduler.tick()));
      clock.advance(utc(2026, 3, 2, 13, 30) - clock.now());
      const reports = await Promise.all(replicas.map((r) => r.scheduler.tick()));
      const all = await runs(fx.client);
      expect(all.map((r) => iso(r.execution_date))).toEqual([iso(utc(2026, 3, 2, 13))]);
      expect(all[0]!.passed_sla).toBe(1);
      const kinds = await fx.client.execute("SELECT kind, count(*) AS n FROM notifications GROUP BY kind ORDER BY kind");
      const counts = Object.fromEntries(kinds.rows.map((r) => [String(r.kind), Number(r.n)]));
      expect({ counts, slaBreaches: reports.reduce((n, r) => n + r.slaBreaches, 0), late: reports.reduce((n, r) => n + r.runs.late, 0) }).toEqual({
        counts: { drift: 1, sla_passed: 1 },
        slaBreaches: 1,
        late: 1,
      });
    } finally {
      openGate("rep-notify");
      await closeAll(fx, replicas);
    }
  });

  test("a replica that stops heartbeating mid-run: exactly one of the others takes its run over and finishes it", async () => {
    closeGate("rep-orphan");
    const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
    const files = gatedProject(
      "rep-orphan",
      [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { create_initial_pipeline_run: true } }],
      // an in-process attempt cannot be re-attached: it counts as failed, and the retry runs it again
      "retry_config:\n  retries: 1\n  delay: 0\n",
    );
    const fx = await projectFixture(files, clock);
    const replicas: Replica[] = [];
    try {
      for (const id of ["replica-a", "replica-b", "replica-c"]) replicas.push(await replica(fx, clock, id, { orphanAfterMs: 30_000 }));
      const [a, b, c] = replicas as [Replica, Replica, Replica];
      expect((await a.scheduler.tick()).started).toBe(1);
      const [run] = await runs(fx.client);
      await waitForRun(fx.client, run!.id, ["running"]);
      expect((await runs(fx.client))[0]!.owner).toBe("replica-a");

      // b and c see a's heartbeat; then a dies: its connection goes, it never ticks again
      await Promise.all([b.scheduler.tick(), c.scheduler.tick()]);
      a.close();
      clock.advance(20_000);
      const early = await Promise.all([b.scheduler.tick(), c.scheduler.tick()]);
      expect(early.reduce((n, r) => n + r.resumed, 0)).toBe(0);
      clock.advance(11_000);
      const late = await Promise.all([b.scheduler.tick(), c.scheduler.tick()]);
      const taken = await waitForRun(fx.client, run!.id, ["running"]);
      await until(async () => (await runs(fx.client, "id = ? AND owner != 'replica-a'", [run!.id])).length === 1, "the run to change owner");
      const owner = (await runs(fx.client, "id = ?", [run!.id]))[0]!.owner;
      expect(["replica-b", "replica-c"]).toContain(String(owner));
      expect(taken.id).toBe(run!.id);
      // both saw the orphan; one took it over, the other's takeover was refused
      expect(late.reduce((n, r) => n + r.resumed, 0)).toBeGreaterThanOrEqual(1);

      // the lost attempt is retried after its (zero) backoff, by the new owner's engine
      await clock.untilTimers(1);
      clock.advance(0);
      await until(async () => (await blockRunRows(fx.client, "pipeline_run_id = ? AND attempt = 2 AND status = 'running'", [run!.id])).length === 1, "the retry to start");
      openGate("rep-orphan");
      const done = await waitForRun(fx.client, run!.id);
      expect(done.owner).toBe(owner);
      expect((await blockRunRows(fx.client, "pipeline_run_id = ?", [run!.id])).map((br) => [br.status, br.attempt])).toEqual([["completed", 2]]);
      clock.advance(60_000);
      const after = await Promise.all([b.scheduler.tick(), c.scheduler.tick()]);
      expect(after.reduce((n, r) => n + r.resumed, 0)).toBe(0);
      expect((await runs(fx.client)).length).toBe(1);
    } finally {
      openGate("rep-orphan");
      await closeAll(fx, replicas);
    }
  });

  test("@always_on on replicas whose clocks differ by a few ms: one live run at a time, not one per replica", async () => {
    const first = closeGate("rep-always");
    const t = utc(2026, 3, 2, 10, 15);
    const fx = await projectFixture(gatedProject("rep-always", [{ name: "always", schedule_type: "time", schedule_interval: "@always_on", status: "active" }]), new FakeClock(t));
    const clocks = [new FakeClock(t), new FakeClock(t + 3), new FakeClock(t + 7)];
    const replicas: Replica[] = [];
    try {
      for (const [i, id] of ["replica-a", "replica-b", "replica-c"].entries()) replicas.push(await replica(fx, clocks[i]!, id, { orphanAfterMs: ORPHAN_AFTER }));
      const tickAll = async (ms: number) => {
        for (const c of clocks) c.advance(ms);
        return Promise.all(replicas.map((r) => r.scheduler.tick()));
      };
      // the trigger exists, and is due, for every replica
      await replicas[0]!.scheduler.tick();
      await until(async () => (await runs(fx.client, "status = 'running'")).length === 1, "the first run to start");
      for (let i = 0; i < 3; i++) await tickAll(1000);
      expect((await runs(fx.client)).length).toBe(1);

      // it ends: the next ticks start exactly one new run, whichever replica's clock is first
      // (once its block waits at the gate: opened before, the block would wait at the next one)
      await until(() => first.arrivals === 1, "the first run's block to reach its gate");
      openGate("rep-always");
      closeGate("rep-always");
      await until(async () => (await runs(fx.client, "status = 'completed'")).length === 1, "the first run to end");
      // all three due at once (past the recheck time every one of them recorded)
      await tickAll(10_000);
      for (let i = 0; i < 3; i++) await tickAll(1000);
      const all = await runs(fx.client);
      expect(all.length).toBe(2);
      expect(all.filter((r) => r.status === "initial" || r.status === "running").length).toBe(1);
    } finally {
      openGate("rep-always");
      await closeAll(fx, replicas);
    }
  });

  test("a scheduler whose run was taken over stops driving it: no end, no cancel, nothing written over the new owner", async () => {
    closeGate("rep-fence");
    const t = utc(2026, 3, 2, 10, 15);
    const clock = new FakeClock(t);
    const fx = await projectFixture(
      gatedProject("rep-fence", [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { create_initial_pipeline_run: true } }]),
      clock,
    );
    const replicas: Replica[] = [];
    try {
      replicas.push(await replica(fx, clock, "replica-a", { orphanAfterMs: 30_000 }));
      const [a] = replicas as [Replica];
      await a.scheduler.tick();
      const [run] = await runs(fx.client);
      await waitForRun(fx.client, run!.id, ["running"]);
      await until(async () => (await blockRunRows(fx.client, "pipeline_run_id = ? AND status = 'running'", [run!.id])).length === 1, "the block to start");
      // replica-b takes the run over while replica-a still works on it (a long pause, say)
      await fx.store.commit(fx.store.batch().takeOverPipelineRun(run!.id, "replica-a", "replica-b"));
      await until(() => !a.engine.activeRunIds().includes(run!.id), "replica-a to let the run go");
      openGate("rep-fence");
      await new Promise((r) => setTimeout(r, 300));
      const [after] = await runs(fx.client, "id = ?", [run!.id]);
      expect(after!.status).toBe("running");
      expect(after!.owner).toBe("replica-b");
      // replica-a neither cancelled the block run nor recorded anything over the new owner
      expect((await blockRunRows(fx.client, "pipeline_run_id = ?", [run!.id])).map((br) => br.status)).toEqual(["running"]);
    } finally {
      openGate("rep-fence");
      await closeAll(fx, replicas);
    }
  });

  // liveness is judged by a beat count seen to change on the reader's own clock, never by the
  // owner's heartbeat_at against the reader's clock (which made a fast replica steal live runs)
  test("a replica whose clock is 40 s ahead leaves a live scheduler's running run alone, and takes it over once that one stops", async () => {
    closeGate("rep-skew");
    const t = utc(2026, 3, 2, 10, 15);
    const fx = await projectFixture(
      gatedProject("rep-skew", [{ name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { create_initial_pipeline_run: true } }]),
      new FakeClock(t),
    );
    const replicas: Replica[] = [];
    try {
      replicas.push(await replica(fx, new FakeClock(t), "replica-a", { orphanAfterMs: 30_000 }));
      replicas.push(await replica(fx, new FakeClock(t + 40_000), "replica-b", { orphanAfterMs: 30_000 }));
      const [a, b] = replicas as [Replica, Replica];
      await a.scheduler.tick();
      const [run] = await runs(fx.client);
      await waitForRun(fx.client, run!.id, ["running"]);
      // both alive and ticking
      for (let i = 0; i < 5; i++) {
        for (const r of replicas) r.clock.advance(10_000);
        const reports = await Promise.all([a.scheduler.tick(), b.scheduler.tick()]);
        expect(reports.map((r) => r.resumed)).toEqual([0, 0]);
      }
      expect((await runs(fx.client, "id = ?", [run!.id]))[0]!.owner).toBe("replica-a");
      // replica-a dies: b sees its beat count stand still for 30 s of b's clock, and takes over
      a.close();
      b.clock.advance(20_000);
      expect((await b.scheduler.tick()).resumed).toBe(0);
      b.clock.advance(11_000);
      expect((await b.scheduler.tick()).resumed).toBe(1);
      await until(async () => (await runs(fx.client, "id = ? AND owner = 'replica-b'", [run!.id])).length === 1, "replica-b to own the run");
    } finally {
      openGate("rep-skew");
      await closeAll(fx, replicas);
    }
  });

  test("schedulers racing to start the same initial runs: the losers log at debug and count the race, never an error", async () => {
    const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
    const fx = await projectFixture({ "kiln.yaml": IN_PROCESS, "pipelines/p/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n", "custom/work.js": countingBlock("race") }, clock);
    const lines: Array<{ level: string; message: string }> = [];
    const recording = (id: string): Log => ({
      debug: (message) => lines.push({ level: "debug", message: `${id}: ${message}` }),
      info: (message) => lines.push({ level: "info", message: `${id}: ${message}` }),
      warn: (message) => lines.push({ level: "warn", message: `${id}: ${message}` }),
      error: (message) => lines.push({ level: "error", message: `${id}: ${message}` }),
    });
    const replicas: Replica[] = [];
    try {
      for (const id of ["replica-a", "replica-b", "replica-c"]) replicas.push(await replica(fx, clock, id, { orphanAfterMs: ORPHAN_AFTER, log: recording(id) }));
      const before = lostRaces.snapshot().run_start;
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 4; i++) await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: utc(2026, 3, 2, round, i) });
        // every replica sees the same initial runs and tries to start each of them
        await Promise.all(replicas.map((r) => r.scheduler.tick()));
        await waitForEngines(replicas.map((r) => r.engine), 30_000);
      }
      const all = await waitForQuiet(fx.client, 30_000);
      expect(all.length).toBe(20);
      expect(all.filter((r) => r.status !== "completed")).toEqual([]);
      // each run ran once
      expect(Object.values(calls("race")).every((n) => n === 1)).toBe(true);
      expect(lostRaces.snapshot().run_start).toBeGreaterThan(before);
      expect(lines.filter((l) => l.level === "error" || l.level === "warn")).toEqual([]);
    } finally {
      await closeAll(fx, replicas);
    }
  });
});
