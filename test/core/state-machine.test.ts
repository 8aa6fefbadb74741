/** Every state-machine edge, legal and illegal, in memory and as a conditional write in libSQL. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BACKFILL_STATUSES, BLOCK_RUN_STATUSES, PIPELINE_RUN_STATUSES, type BlockRunStatus, type PipelineRunStatus } from "@kiln/core";
import { canTransition, IllegalTransitionError, isTerminal } from "@kiln/core/engine";
import { metadata, projectFixture, type Fixture } from "../helpers/fixtures.ts";

// DESIGN.md section 2, written out edge by edge
const RUN_EDGES = ["initial>running", "initial>cancelled", "running>completed", "running>failed", "running>cancelled"];
// retry_blocks: an ended run goes back to running, its block runs to retry back to initial
const PIPELINE_RUN_EDGES = [...RUN_EDGES, "failed>running", "cancelled>running"];
const BLOCK_RUN_EDGES = [
  "initial>queued",
  "queued>running",
  "running>completed",
  "running>failed",
  "running>cancelled",
  "initial>upstream_failed",
  "initial>cancelled",
  "initial>condition_failed",
  "queued>upstream_failed",
  "queued>cancelled",
  "queued>condition_failed",
  "failed>queued",
  "failed>initial",
  "completed>initial",
  "cancelled>initial",
  "upstream_failed>initial",
  "condition_failed>initial",
];
const BACKFILL_EDGES = [...RUN_EDGES, "failed>running"];

describe("transition tables", () => {
  const cases = [
    ["pipeline_run", PIPELINE_RUN_STATUSES, PIPELINE_RUN_EDGES],
    ["block_run", BLOCK_RUN_STATUSES, BLOCK_RUN_EDGES],
    ["backfill", BACKFILL_STATUSES, BACKFILL_EDGES],
  ] as const;
  for (const [entity, statuses, edges] of cases) {
    test(`${entity}: exactly the designed edges are legal`, () => {
      for (const from of statuses) {
        for (const to of statuses) {
          const legal = (edges as readonly string[]).includes(`${from}>${to}`);
          expect({ from, to, legal: canTransition(entity, from as never, to as never) }).toEqual({ from, to, legal });
        }
      }
    });
  }
});

test("an ended run stays an end though retry_blocks may leave it: isTerminal is about being live", () => {
  expect(PIPELINE_RUN_STATUSES.filter((s) => isTerminal("pipeline_run", s))).toEqual(["completed", "failed", "cancelled"]);
  expect(BACKFILL_STATUSES.filter((s) => isTerminal("backfill", s))).toEqual(["completed", "failed", "cancelled"]);
  expect(BLOCK_RUN_STATUSES.filter((s) => isTerminal("block_run", s))).toEqual(["completed", "failed", "cancelled", "upstream_failed", "condition_failed"]);
});

describe("conditional writes", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await projectFixture({
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
      "data_loaders/a.js": "export default () => 1;\n",
    });
  });
  afterAll(() => fx.cleanup());

  async function newRun() {
    const run = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now() });
    if (!run) throw new Error("no run");
    await fx.store.commit((() => {
      const b = fx.store.batch();
      b.insertBlockRuns(run.id, ["a"]);
      return b;
    })());
    return run;
  }

  async function blockStatus(runId: number): Promise<string> {
    const rs = await fx.client.execute({ sql: "SELECT status FROM block_runs WHERE pipeline_run_id = ?", args: [runId] });
    return String(rs.rows[0]?.status);
  }

  async function pathTo(runId: number, path: BlockRunStatus[]) {
    for (let i = 1; i < path.length; i++) {
      await fx.store.commit(fx.store.batch().transitionBlockRun({ pipelineRunId: runId, blockUuid: "a" }, path[i - 1]!, path[i]!));
    }
  }

  // a shortest legal path from initial to each block-run status
  const reach: Record<BlockRunStatus, BlockRunStatus[]> = {
    initial: ["initial"],
    queued: ["initial", "queued"],
    running: ["initial", "queued", "running"],
    completed: ["initial", "queued", "running", "completed"],
    failed: ["initial", "queued", "running", "failed"],
    cancelled: ["initial", "cancelled"],
    upstream_failed: ["initial", "upstream_failed"],
    condition_failed: ["initial", "condition_failed"],
  };

  test("each legal block-run edge is written; each illegal one is refused naming run, from and to", async () => {
    for (const from of BLOCK_RUN_STATUSES) {
      for (const to of BLOCK_RUN_STATUSES) {
        const run = await newRun();
        await pathTo(run.id, reach[from]);
        if (BLOCK_RUN_EDGES.includes(`${from}>${to}`)) {
          await fx.store.commit(fx.store.batch().transitionBlockRun({ pipelineRunId: run.id, blockUuid: "a" }, from, to));
          expect(await blockStatus(run.id)).toBe(to);
        } else {
          let error: unknown;
          try {
            fx.store.batch().transitionBlockRun({ pipelineRunId: run.id, blockUuid: "a" }, from, to);
          } catch (e) {
            error = e;
          }
          expect(error).toBeInstanceOf(IllegalTransitionError);
          expect((error as Error).message).toBe(`block run a of pipeline run ${run.id}: cannot move from ${from} to ${to}`);
          expect(await blockStatus(run.id)).toBe(from);
        }
      }
    }
  });

  test("a write from a stale status loses and says what the record is now; the batch is rolled back", async () => {
    const run = await newRun();
    await pathTo(run.id, ["initial", "queued", "running"]);
    const batch = fx.store
      .batch()
      .transitionPipelineRun(run.id, "initial", "running")
      .transitionBlockRun({ pipelineRunId: run.id, blockUuid: "a" }, "queued", "running");
    const error = await fx.store.commit(batch).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect((error as Error).message).toBe(`block run a of pipeline run ${run.id}: cannot move from queued to running: it is running now`);
    // the pipeline-run half of the batch did not land either
    expect((await fx.store.getPipelineRun(run.id))?.status).toBe("initial");
  });

  test("one batch's lost race does not cost a concurrent batch its write", async () => {
    const good = await newRun();
    const bad = await newRun();
    const results = await Promise.allSettled([
      fx.store.commit(fx.store.batch().transitionPipelineRun(good.id, "initial", "running")),
      fx.store.commit(fx.store.batch().transitionPipelineRun(bad.id, "running", "completed")),
    ]);
    expect(results[0].status).toBe("fulfilled");
    expect(results[1].status).toBe("rejected");
    expect((await fx.store.getPipelineRun(good.id))?.status).toBe("running");
    expect((await fx.store.getPipelineRun(bad.id))?.status).toBe("initial");
  });

  test("pipeline runs: any sequence of attempted moves leaves the database where the machine says", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...PIPELINE_RUN_STATUSES), { maxLength: 6 }), async (targets) => {
        const run = await newRun();
        let model: PipelineRunStatus = "initial";
        for (const to of targets) {
          const legal = canTransition("pipeline_run", model, to);
          let refused = false;
          try {
            await fx.store.commit(fx.store.batch().transitionPipelineRun(run.id, model, to));
          } catch (e) {
            expect(e).toBeInstanceOf(IllegalTransitionError);
            refused = true;
          }
          expect(refused).toBe(!legal);
          if (legal) model = to;
          expect((await fx.store.getPipelineRun(run.id))?.status).toBe(model);
        }
      }),
      { numRuns: 60 },
    );
  });
});
