/**
 * RunState's committed outputs (InputRef.json): a downstream job carries the rows its run's
 * engine committed, only for an executor that takes them (inlineInputs), only for inputs of the
 * run's own partition, never past the memory cap, and never a row since replaced by a file.
 */
import { describe, expect, test } from "bun:test";
import { RunState } from "../../../core/src/engine/run-state.ts";
import { metadata, projectFixture } from "../../helpers/fixtures.ts";

async function chainState() {
  const fx = await projectFixture({
    "kiln.yaml": "executor_config:\n  in_process: true\n",
    "pipelines/p/metadata.yaml": metadata([{ uuid: "load", type: "data_loader" }, { uuid: "add", type: "transformer", upstream_blocks: ["load"] }]),
    "data_loaders/load.js": "export default () => 1;\n",
    "transformers/add.js": "export default (x) => x + 1;\n",
  });
  const run = (await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 4, 1) }))!;
  const pipeline = fx.project.pipelines.get("p")!;
  const state = new RunState(run, fx.project, pipeline, null, {}, new Map(), {});
  const add = state.node("add", pipeline.blocksByUuid.get("add")!, "block", null);
  return { fx, state, add, partition: run.executionPartition };
}

describe("committed outputs in downstream jobs", () => {
  test("carried for an executor that takes them, by reference otherwise; a row replaced by a file is forgotten", async () => {
    const { fx, state, add, partition } = await chainState();
    try {
      expect(state.jobOf(add).inputs).toEqual([{ partition, blockUuid: "load" }]);
      state.noteCommittedOutput("load", { json: "41", bytes: 2 });
      expect(state.jobOf(add).inputs).toEqual([{ partition, blockUuid: "load", json: "41" }]);
      expect(state.jobOf(add, false).inputs).toEqual([{ partition, blockUuid: "load" }]);
      // a later completion of the block wrote a file and deleted the row
      state.noteCommittedOutput("load", null);
      expect(state.jobOf(add).inputs).toEqual([{ partition, blockUuid: "load" }]);
      expect(state.committedOutputLength).toBe(0);

      // an upstream read from another partition (a single-block run's) is never this run's row
      const { run, project, pipeline } = state;
      const single = new RunState(run, project, pipeline, null, {}, new Map([["load", "20260401T000000"]]), {});
      single.noteCommittedOutput("load", { json: "41", bytes: 2 });
      expect(single.jobOf(single.node("add", add.block, "block", null)).inputs).toEqual([{ partition: "20260401T000000", blockUuid: "load" }]);
    } finally {
      fx.cleanup();
    }
  });

  test("past the cap, an output is read back instead of kept in memory", async () => {
    const { fx, state, add } = await chainState();
    try {
      const big = JSON.stringify("x".repeat(3 * 1024 * 1024));
      state.noteCommittedOutput("other", { json: big, bytes: big.length });
      state.noteCommittedOutput("load", { json: big, bytes: big.length });
      expect(state.jobOf(add).inputs[0]).not.toHaveProperty("json");
      expect(state.committedOutputLength).toBe(big.length);
    } finally {
      fx.cleanup();
    }
  });
});
