/**
 * A big backfill start yields to the event loop between its batches (so the server keeps
 * answering), and its batches stay safe: two concurrent starts create each run once, and a
 * start that stopped midway leaves nothing a delete would turn into stray manual runs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BACKFILL_START_CHUNK, createBackfill, deleteBackfill, startBackfill } from "@kiln/core/backfill";
import { projectFixture, type Fixture } from "../helpers/fixtures.ts";
import { SERVER_PROJECT } from "../helpers/server.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await projectFixture(SERVER_PROJECT);
});
afterAll(() => fx?.cleanup());

const START = Date.UTC(2020, 0, 1);
const newBackfill = (name: string, dates: number) =>
  createBackfill(fx.store, fx.project, { name, pipelineUuid: "etl", startDatetime: START, endDatetime: START + (dates - 1) * 60_000, intervalType: "minute" });
const runCount = async (backfillId: number | null) =>
  Number((await fx.client.execute({ sql: "SELECT count(*) AS n FROM pipeline_runs WHERE backfill_id IS ?", args: [backfillId] })).rows[0]?.n);

describe("a big backfill start", () => {
  test("lets timers run between its batches, and creates every run", async () => {
    const dates = BACKFILL_START_CHUNK * 10;
    const backfill = await newBackfill("big", dates);
    let ticks = 0;
    let running = true;
    const tick = () => {
      ticks++;
      if (running) setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
    const started = await startBackfill(fx.store, backfill.id);
    running = false;
    expect(started.runsCreated).toBe(dates);
    expect(await runCount(backfill.id)).toBe(dates);
    // one turn of the event loop at least between each two batches
    expect(ticks).toBeGreaterThanOrEqual(10);
  });

  test("two concurrent starts: one wins, the other is refused, each date has one run", async () => {
    const dates = BACKFILL_START_CHUNK * 3;
    const backfill = await newBackfill("race", dates);
    const outcomes = await Promise.allSettled([startBackfill(fx.store, backfill.id), startBackfill(fx.store, backfill.id)]);
    expect(outcomes.filter((o) => o.status === "fulfilled").length).toBe(1);
    expect(outcomes.filter((o) => o.status === "rejected").length).toBe(1);
    expect(await runCount(backfill.id)).toBe(dates);
    const dupes = await fx.client.execute({ sql: "SELECT execution_date FROM pipeline_runs WHERE backfill_id = ? GROUP BY execution_date HAVING count(*) > 1", args: [backfill.id] });
    expect(dupes.rows.length).toBe(0);
  });

  test("a start whose backfill is deleted midway stops, and leaves no stray runs", async () => {
    const backfill = await newBackfill("deleted", BACKFILL_START_CHUNK * 20);
    const manualBefore = await runCount(null);
    const starting = startBackfill(fx.store, backfill.id);
    // let a few batches commit, then delete the (still initial) backfill
    await new Promise((resolve) => setTimeout(resolve, 1));
    await deleteBackfill(fx.store, backfill.id);
    await expect(starting).rejects.toThrow();
    expect(await runCount(backfill.id)).toBe(0);
    expect(await runCount(null)).toBe(manualBefore);
  });
});
