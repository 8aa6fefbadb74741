/**
 * WriteBatch's writes for the run engine's hot path, on a real libSQL file: several block-run
 * moves of one run in one guarded statement (the run's status and owner checked in it), a run's
 * end that returns its row, and output rows that commit or roll back with the batch.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IllegalTransitionError } from "@kiln/core/engine";
import { RunTakenOverError, type Store } from "@kiln/core/store";
import { metadata, projectFixture, type Fixture } from "../helpers/fixtures.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await projectFixture({
    "kiln.yaml": "",
    "pipelines/p/metadata.yaml": metadata([
      { uuid: "a", type: "data_loader" },
      { uuid: "b", type: "transformer", upstream_blocks: ["a"] },
      { uuid: "c", type: "transformer", upstream_blocks: ["b"] },
    ]),
    "data_loaders/a.js": "export default () => 1;\n",
    "transformers/b.js": "export default (x) => x;\n",
    "transformers/c.js": "export default (x) => x;\n",
  });
});
afterAll(() => fx.cleanup());

let date = Date.UTC(2026, 0, 1);

/** A running run owned by `owner`, with block runs a (running), b and c (initial). */
async function runningRun(store: Store, owner = "me"): Promise<number> {
  const run = await store.createPipelineRun({ pipelineUuid: "p", executionDate: (date += 3_600_000) });
  if (!run) throw new Error("no run was created");
  const batch = store.batch().transitionPipelineRun(run.id, "initial", "running", { owner, startedAt: 1 });
  batch.insertBlockRunsAs(run.id, [
    { blockUuid: "a", executorType: "local", status: "running", via: ["queued"] },
    { blockUuid: "b", executorType: "local", status: "initial" },
    { blockUuid: "c", executorType: "local", status: "initial" },
  ]);
  await store.commit(batch);
  return run.id;
}

async function statuses(id: number): Promise<Record<string, string>> {
  return Object.fromEntries((await fx.store.getBlockRuns(id)).map((r) => [r.blockUuid, r.status]));
}

describe("transitionBlockRuns", () => {
  test("moves several block runs in one statement, each with its own patch", async () => {
    const id = await runningRun(fx.store);
    const batch = fx.store.batch().transitionBlockRuns(
      id,
      [
        { blockUuid: "a", from: "running", to: "completed", patch: { completedAt: 5, metrics: { rows: 3 } } },
        { blockUuid: "b", from: "initial", to: "running", via: ["queued"], patch: { startedAt: 5, attempt: 1 } },
      ],
      { status: "running", owner: "me" },
    );
    expect(batch.size).toBe(1);
    await fx.store.commit(batch);
    const rows = new Map((await fx.store.getBlockRuns(id)).map((r) => [r.blockUuid, r]));
    expect(rows.get("a")).toMatchObject({ status: "completed", completedAt: 5, metrics: { rows: 3 } });
    expect(rows.get("b")).toMatchObject({ status: "running", startedAt: 5, completedAt: null });
    expect(rows.get("c")?.status).toBe("initial");
  });

  test("one block run out of its `from` refuses the whole batch, naming that block run", async () => {
    const id = await runningRun(fx.store);
    const batch = fx.store.batch().transitionBlockRuns(id, [
      { blockUuid: "a", from: "running", to: "completed" },
      { blockUuid: "c", from: "queued", to: "running" },
    ]);
    const refused = await fx.store.commit(batch).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(IllegalTransitionError);
    expect(String((refused as Error).message)).toContain(`block run c of pipeline run ${id}`);
    expect(String((refused as Error).message)).toContain("initial");
    expect(await statuses(id)).toEqual({ a: "running", b: "initial", c: "initial" });
  });

  test("a run no longer running (cancelled elsewhere) refuses the launch, naming the pipeline run; nothing is written", async () => {
    const id = await runningRun(fx.store);
    await fx.store.commit(fx.store.batch().transitionPipelineRun(id, "running", "cancelled"));
    const batch = fx.store.batch().transitionBlockRuns(
      id,
      [
        { blockUuid: "a", from: "running", to: "completed" },
        { blockUuid: "b", from: "initial", to: "running", via: ["queued"] },
      ],
      { status: "running", owner: "me" },
    );
    const refused = await fx.store.commit(batch).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(IllegalTransitionError);
    expect(String((refused as Error).message)).toContain(`pipeline run ${id}`);
    expect(String((refused as Error).message)).toContain("cancelled");
    expect(await statuses(id)).toEqual({ a: "running", b: "initial", c: "initial" });
  });

  test("a run taken over by another owner refuses with RunTakenOverError; nothing is written", async () => {
    const id = await runningRun(fx.store, "me");
    await fx.store.commit(fx.store.batch().takeOverPipelineRun(id, "me", "them"));
    const batch = fx.store.batch().transitionBlockRuns(id, [{ blockUuid: "a", from: "running", to: "completed" }], { owner: "me" });
    const refused = await fx.store.commit(batch).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RunTakenOverError);
    expect((refused as RunTakenOverError).owner).toBe("them");
    expect(await statuses(id)).toEqual({ a: "running", b: "initial", c: "initial" });
  });

  test("an illegal move is refused before anything is sent", () => {
    expect(() => fx.store.batch().transitionBlockRuns(1, [{ blockUuid: "a", from: "completed", to: "running" }, { blockUuid: "b", from: "initial", to: "queued" }])).toThrow(IllegalTransitionError);
  });
});

describe("output rows in a batch", () => {
  test("commit with the batch, and roll back with it when a guard refuses it", async () => {
    const id = await runningRun(fx.store);
    const key = { pipelineUuid: "p", executionPartition: `rows-${id}`, blockUuid: "a" };
    const read = async () => (await fx.client.execute({ sql: "SELECT value FROM block_outputs WHERE execution_partition = ?", args: [key.executionPartition] })).rows.map((r) => String(r.value));
    // refused: b is not queued, so the completion and its output row go together
    const refused = fx.store.batch().putBlockOutput(key, '"lost"', 6).transitionBlockRuns(id, [
      { blockUuid: "a", from: "running", to: "completed" },
      { blockUuid: "b", from: "queued", to: "running" },
    ]);
    expect(await fx.store.commit(refused).catch((e: unknown) => e)).toBeInstanceOf(IllegalTransitionError);
    expect(await read()).toEqual([]);
    await fx.store.commit(fx.store.batch().putBlockOutput(key, '"kept"', 6).transitionBlockRuns(id, [{ blockUuid: "a", from: "running", to: "completed" }]));
    expect(await read()).toEqual(['"kept"']);
    // a later attempt's row replaces it; a delete removes it
    await fx.store.commit(fx.store.batch().putBlockOutput(key, '"newer"', 7));
    expect(await read()).toEqual(['"newer"']);
    await fx.store.commit(fx.store.batch().deleteBlockOutput(key));
    expect(await read()).toEqual([]);
  });
});

describe("endPipelineRun", () => {
  test("returns the ended run's row from the write itself", async () => {
    const id = await runningRun(fx.store);
    const batch = fx.store.batch();
    const index = batch.endPipelineRun(id, "running", "completed", { completedAt: 42 });
    const results = await fx.store.commit(batch);
    expect(results[index]?.rows[0]).toMatchObject({ id, status: "completed", completed_at: 42 });
  });

  test("refuses an end from a status the run is not in", async () => {
    const id = await runningRun(fx.store);
    await fx.store.commit(fx.store.batch().transitionPipelineRun(id, "running", "failed"));
    const batch = fx.store.batch();
    batch.endPipelineRun(id, "running", "completed");
    expect(await fx.store.commit(batch).catch((e: unknown) => e)).toBeInstanceOf(IllegalTransitionError);
  });
});
