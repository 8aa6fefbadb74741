/**
 * Two run engines on one database racing over the same pipeline run, as replicas do after a
 * takeover: block runs as real child processes (re-attachable through their stored handles),
 * each engine with its own connection. Whatever the interleaving, the run ends the way its blocks
 * did; a race kiln runs against itself never fails it.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock, type Clock } from "@kiln/core";
import { lostRaces } from "@kiln/core/engine";
import { metadata, projectFixture, until, type Fixture } from "../helpers/fixtures.ts";
import { blockRunRows, replica, runs, waitForEngines, type Replica } from "../helpers/scheduler.ts";

/** A block that waits (in its own process) until the file `gate-<name>` exists in the project. */
function gatedProcessBlock(name: string): string {
  return `import { existsSync } from "node:fs";
export default async function block(ctx) {
  while (!existsSync("gate-${name}")) await new Promise((r) => setTimeout(r, 20));
  return { block: "${name}", attempt: ctx.attempt };
}
`;
}

/** Two blocks side by side (no edge between them), each its own process waiting at its gate. */
function twoGatedBlocks(): Record<string, string> {
  return {
    "kiln.yaml": "executor_type: local\n",
    "pipelines/p/metadata.yaml": metadata([
      { uuid: "quick", type: "custom" },
      { uuid: "slow", type: "custom" },
    ]),
    "custom/quick.js": gatedProcessBlock("quick"),
    "custom/slow.js": gatedProcessBlock("slow"),
  };
}

function open(fx: Fixture, name: string): void {
  writeFileSync(join(fx.root, `gate-${name}`), "");
}

async function bothRunningWithHandles(fx: Fixture, runId: number): Promise<void> {
  await until(
    async () => (await blockRunRows(fx.client, "pipeline_run_id = ? AND status = 'running' AND executor_handle IS NOT NULL", [runId])).length === 2,
    "both block processes to be running with their handles stored",
    30_000,
  );
}

describe("two engines finishing the same block run", () => {
  test("the engine whose run was taken over sees its block end first: the new owner still completes the run", async () => {
    // real time: the engines poll block processes on their clock
    const clock = systemClock;
    const fx = await projectFixture(twoGatedBlocks(), clock);
    const replicas: Array<Replica<Clock>> = [];
    try {
      // a: the first owner, which learns of the takeover only at its next write (its watch is slow);
      // b: takes the run over and follows the block processes by polling (slower than a's push)
      const a = await replica(fx, clock, "replica-a", { engineOptions: { watchIntervalMs: 120_000 } });
      const b = await replica(fx, clock, "replica-b", { engineOptions: { pollIntervalMs: 400 } });
      replicas.push(a, b);
      const run = (await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
      const doneA = a.engine.execute(run.id, { owner: "replica-a" });
      await bothRunningWithHandles(fx, run.id);

      // replica-a is presumed dead (a freeze, a partition): replica-b takes the run over and re-attaches
      const doneB = b.engine.resume(run.id, "replica-a", { owner: "replica-b" });
      await until(async () => (await runs(fx.client, "id = ? AND owner = 'replica-b'", [run.id])).length === 1, "replica-b to own the run");

      // quick's process ends: replica-a hears it at once (it is the parent), replica-b at its next poll
      open(fx, "quick");
      await until(async () => (await blockRunRows(fx.client, "pipeline_run_id = ? AND block_uuid = 'quick' AND status != 'running'", [run.id])).length === 1, "quick to end", 30_000);
      open(fx, "slow");
      const [finalA, finalB] = await Promise.all([doneA, doneB]);
      expect(finalB.status).toBe("completed");
      expect(finalB.metrics.error).toBeUndefined();
      expect(finalA.id).toBe(run.id);
      const rows = await blockRunRows(fx.client, "pipeline_run_id = ?", [run.id]);
      expect(rows.map((r) => [r.block_uuid, r.status, r.attempt, r.error])).toEqual([
        ["quick", "completed", 1, null],
        ["slow", "completed", 1, null],
      ]);
      const [stored] = await runs(fx.client, "id = ?", [run.id]);
      expect(stored!.owner).toBe("replica-b");
    } finally {
      await waitForEngines(replicas.map((r) => r.engine), 30_000).catch(() => {});
      for (const r of replicas) r.close();
      fx.cleanup();
    }
  });

  test("an outcome already recorded by the same attempt is success: the engine carries on instead of failing the run", async () => {
    const clock = systemClock;
    const fx = await projectFixture(twoGatedBlocks(), clock);
    const replicas: Array<Replica<Clock>> = [];
    try {
      const a = await replica(fx, clock, "replica-a", { engineOptions: { watchIntervalMs: 120_000 } });
      const b = await replica(fx, clock, "replica-b", { engineOptions: { pollIntervalMs: 400 } });
      replicas.push(a, b);
      const run = (await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
      const doneA = a.engine.execute(run.id, { owner: "replica-a" });
      await bothRunningWithHandles(fx, run.id);
      const doneB = b.engine.resume(run.id, "replica-a", { owner: "replica-b" });
      await until(async () => (await runs(fx.client, "id = ? AND owner = 'replica-b'", [run.id])).length === 1, "replica-b to own the run");
      const before = lostRaces.snapshot().outcome_recorded;

      // quick's completion by attempt 1 is recorded by another writer before replica-b sees it
      // (the old owner's write landing in the moment of the takeover)
      await fx.store.commit(fx.store.batch().transitionBlockRun({ pipelineRunId: run.id, blockUuid: "quick" }, "running", "completed", { completedAt: clock.now() }));
      open(fx, "quick");
      await until(() => lostRaces.snapshot().outcome_recorded > before, "replica-b to find quick's outcome recorded", 30_000);
      open(fx, "slow");
      const [, finalB] = await Promise.all([doneA, doneB]);
      expect(finalB.status).toBe("completed");
      expect(finalB.metrics.error).toBeUndefined();
      const rows = await blockRunRows(fx.client, "pipeline_run_id = ?", [run.id]);
      // replica-a let go without stopping slow's process, which replica-b follows: it ran once, to its end
      expect(rows.map((r) => [r.block_uuid, r.status, r.attempt, r.error])).toEqual([
        ["quick", "completed", 1, null],
        ["slow", "completed", 1, null],
      ]);
    } finally {
      await waitForEngines(replicas.map((r) => r.engine), 30_000).catch(() => {});
      for (const r of replicas) r.close();
      fx.cleanup();
    }
  });
});

describe("executor slots", () => {
  test("two engines racing to start the same runs under executor_limits: every slot comes back, the limit never shrinks", async () => {
    const clock = systemClock;
    const fx = await projectFixture(
      {
        "kiln.yaml": "executor_config:\n  in_process: true\nconcurrency_config:\n  executor_limits:\n    local: 2\n",
        "pipelines/p/metadata.yaml": metadata([
          { uuid: "a", type: "data_loader" },
          { uuid: "b", type: "data_loader" },
          { uuid: "c", type: "data_loader" },
        ]),
        ...Object.fromEntries(
          ["a", "b", "c"].map((block) => [
            `data_loaders/${block}.js`,
            `const g = globalThis;
export default async () => {
  g.kilnSlotLive = (g.kilnSlotLive ?? 0) + 1;
  g.kilnSlotPeak = Math.max(g.kilnSlotPeak ?? 0, g.kilnSlotLive);
  await new Promise((r) => setTimeout(r, 5));
  g.kilnSlotLive--;
  return 1;
};\n`,
          ]),
        ),
      },
      clock,
    );
    const g = globalThis as { kilnSlotPeak?: number; kilnSlotLive?: number };
    const replicas: Array<Replica<Clock>> = [];
    try {
      const a = await replica(fx, clock, "replica-a");
      const b = await replica(fx, clock, "replica-b");
      replicas.push(a, b);
      const lostBefore = lostRaces.snapshot().run_start;
      // both engines are handed every run at once, as two schedulers seeing the same initial runs
      const created = [];
      for (let i = 0; i < 12; i++) created.push((await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1, i) }))!);
      const attempts = created.flatMap((run) => [a, b].map((r) => r.engine.execute(run.id, { owner: r.id }).then(() => "ran", () => "refused")));
      await Promise.all(attempts);
      await waitForEngines([a.engine, b.engine], 30_000);
      const stored = await runs(fx.client);
      expect(stored.map((r) => r.status)).toEqual(created.map(() => "completed"));
      // the races were real: some were lost after the loser had claimed its first block runs
      expect(lostRaces.snapshot().run_start).toBeGreaterThan(lostBefore);
      expect([a.engine.executingBlockRuns, b.engine.executingBlockRuns]).toEqual([0, 0]);

      // each engine alone still runs two block runs at once: no slot was kept by a lost race
      for (const r of [a, b]) {
        g.kilnSlotPeak = 0;
        const more = [];
        for (let i = 0; i < 3; i++) more.push((await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 5, 1, i), variables: { by: r.id } }))!);
        const finals = await Promise.all(more.map((run) => r.engine.execute(run.id, { owner: r.id })));
        expect(finals.map((f) => f.status)).toEqual(["completed", "completed", "completed"]);
        expect(g.kilnSlotPeak).toBe(2);
      }
    } finally {
      delete g.kilnSlotPeak;
      delete g.kilnSlotLive;
      await waitForEngines(replicas.map((r) => r.engine), 30_000).catch(() => {});
      for (const r of replicas) r.close();
      fx.cleanup();
    }
  });
});
