/**
 * The run counters (migration 008) agree with count(*) after every kind of write: inserts, status
 * transitions, retries, cascading deletes, a trigger deleted under its runs, and rolled-back batches.
 */
import { describe, expect, test } from "bun:test";
import { countedPipelineRuns, scheduleRunCounts, systemStats, type SqlClient } from "@kiln/core/store";
import { metadata, projectFixture } from "../helpers/fixtures.ts";

async function truth(client: SqlClient): Promise<{ runs: Record<string, number>; blocks: Record<string, number> }> {
  const runs: Record<string, number> = {};
  for (const r of (await client.execute("SELECT pipeline_uuid || '/' || coalesce(pipeline_schedule_id, 0) || '/' || status AS k, count(*) AS n FROM pipeline_runs GROUP BY 1")).rows) runs[String(r.k)] = Number(r.n);
  const blocks: Record<string, number> = {};
  for (const r of (await client.execute("SELECT status AS k, count(*) AS n FROM block_runs GROUP BY 1")).rows) blocks[String(r.k)] = Number(r.n);
  return { runs, blocks };
}

async function counters(client: SqlClient): Promise<{ runs: Record<string, number>; blocks: Record<string, number> }> {
  const runs: Record<string, number> = {};
  const blocks: Record<string, number> = {};
  for (const r of (await client.execute("SELECT kind, pipeline_uuid || '/' || pipeline_schedule_id || '/' || status AS k, status, n FROM run_counters WHERE n <> 0")).rows) {
    if (r.kind === "pipeline_run") runs[String(r.k)] = Number(r.n);
    else blocks[String(r.status)] = Number(r.n);
  }
  return { runs, blocks };
}

describe("run counters", () => {
  test("match count(*) through inserts, runs executed, deletes and a deleted trigger", async () => {
    const fx = await projectFixture({
      "kiln.yaml": "executor_config:\n  in_process: true\n",
      "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }, { uuid: "b", type: "transformer", upstream_blocks: ["a"] }]),
      "data_loaders/a.js": "export default () => 1;\n",
      "transformers/b.js": "export default (x) => x + 1;\n",
    });
    try {
      const s1 = await fx.store.createPipelineSchedule({ name: "one", pipelineUuid: "p", scheduleType: "api" });
      const s2 = await fx.store.createPipelineSchedule({ name: "two", pipelineUuid: "p", scheduleType: "api" });
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push((await fx.store.createPipelineRun({ pipelineUuid: "p", pipelineScheduleId: i < 3 ? s1.id : s2.id, executionDate: Date.UTC(2026, 0, 1 + i) }))!.id);
      ids.push((await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 1, 1) }))!.id);
      expect(await counters(fx.client)).toEqual(await truth(fx.client));
      for (const id of ids.slice(0, 4)) expect((await fx.engine.execute(id)).status).toBe("completed");
      expect(await counters(fx.client)).toEqual(await truth(fx.client));
      expect(await countedPipelineRuns(fx.client, { pipelineUuid: "p" })).toBe(6);
      expect(await countedPipelineRuns(fx.client, { pipelineScheduleId: s1.id, statuses: ["completed"] })).toBe(3);
      expect(await countedPipelineRuns(fx.client, { pipelineScheduleId: null })).toBe(1);
      expect(await countedPipelineRuns(fx.client, { statuses: ["initial", "running"] })).toBe(2);
      expect(await scheduleRunCounts(fx.client, [s1.id, s2.id])).toEqual(new Map([[s1.id, { total: 3, inProgress: 0 }], [s2.id, { total: 2, inProgress: 1 }]]));
      const stats = await systemStats(fx.client);
      expect(stats.pipelineRuns.completed).toBe(4);
      expect(stats.pipelineRuns.initial).toBe(2);
      expect(stats.blockRuns.completed).toBe(8);

      // a run deleted takes its block runs with it (ON DELETE CASCADE): both counters follow
      await fx.client.execute({ sql: "DELETE FROM pipeline_runs WHERE id = ?", args: [ids[0]!] });
      // the trigger deleted: its runs stay, detached, and move to the "no trigger" count
      await fx.client.execute({ sql: "DELETE FROM pipeline_schedules WHERE id = ?", args: [s2.id] });
      expect(await counters(fx.client)).toEqual(await truth(fx.client));
      expect(await countedPipelineRuns(fx.client, { pipelineScheduleId: null })).toBe(3);
      expect((await systemStats(fx.client)).blockRuns.completed).toBe(6);

      // a rolled-back transaction leaves the counters as they were
      await expect(
        fx.client.batch(
          [{ sql: "UPDATE pipeline_runs SET status = 'cancelled' WHERE id = ?", args: [ids[5]!] }, "SELECT json('not json')"],
          "write",
        ),
      ).rejects.toThrow();
      expect(await counters(fx.client)).toEqual(await truth(fx.client));
    } finally {
      fx.cleanup();
    }
  });
});
