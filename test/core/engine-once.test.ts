/** One driver per run per engine, registered before the engine's first await. */
import { expect, test } from "bun:test";
import { metadata, projectFixture } from "../helpers/fixtures.ts";

test("two concurrent execute() calls of one run share one driver; the run stays listed while it runs", async () => {
  const fx = await projectFixture({
    "kiln.yaml": "executor_config:\n  in_process: true\n",
    "pipelines/p/metadata.yaml": metadata([{ uuid: "slow", type: "data_loader" }]),
    "data_loaders/slow.js": "export default async () => { await new Promise((r) => setTimeout(r, 50)); return 1; };\n",
  });
  try {
    const run = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 0, 1) });
    const first = fx.engine.execute(run!.id);
    const second = fx.engine.execute(run!.id);
    expect(second).toBe(first);
    expect(fx.engine.activeRunIds()).toEqual([run!.id]);
    expect((await first).status).toBe("completed");
    expect(fx.engine.activeRunIds()).toEqual([]);
    const rs = await fx.client.execute({ sql: "SELECT count(*) AS n, max(attempt) AS a FROM block_runs WHERE pipeline_run_id = ?", args: [run!.id] });
    expect([Number(rs.rows[0]?.n), Number(rs.rows[0]?.a)]).toEqual([1, 1]);
  } finally {
    fx.cleanup();
  }
});
