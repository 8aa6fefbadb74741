/**
 * An API trigger's run starts from the request's own commit: the store's "runs created" signal
 * names the run and the trigger the route read, so the co-located scheduler hands it to the
 * engine at once, with no tick, and on the way from the request to the first block the database
 * is read once (the route's read of the trigger, token digest included). A trigger under a
 * concurrency limit still goes through the scheduler's full pass: its runs wait their turn.
 * A wrong token starts nothing.
 */
import { afterEach, expect, test } from "bun:test";
import { createSchedule } from "@kiln/core/api";
import { createApp } from "@kiln/server";
import { serveHttp } from "@kiln/node";
import type { SqlClient } from "@kiln/core/store";
import { Scheduler, silentLog, type TickReport } from "@kiln/scheduler";
import { projectFixture, until, type Fixture } from "../helpers/fixtures.ts";
import { closeGate, gatedProject, HOUR, runs } from "../helpers/scheduler.ts";

interface TriggerFixture extends Fixture {
  url: string;
  scheduler: Scheduler;
  /** Ticks the scheduler made since it started (the first one included). */
  ticks(): number;
  /** The SQL of every read (client.execute) from now until `stop` is called. */
  recordReads(): { reads: string[]; stop(): void };
  close(): Promise<void>;
}

const open: TriggerFixture[] = [];
afterEach(async () => {
  for (const fx of open.splice(0)) await fx.close();
});

/** A server and a started scheduler that ticks once an hour (its first tick done before this returns). */
async function triggerFixture(gateName: string): Promise<TriggerFixture> {
  const fx = await projectFixture(gatedProject(gateName, []));
  const scheduler = new Scheduler({ store: fx.store, project: fx.project, engine: fx.engine, log: silentLog, tickIntervalMs: HOUR });
  let ticks = 0;
  let first: Promise<TickReport> | null = null;
  const tick = scheduler.tick.bind(scheduler);
  scheduler.tick = () => {
    ticks++;
    const report = tick();
    first ??= report;
    return report;
  };
  scheduler.start();
  await first;
  const app = createApp(
    { store: fx.store, project: () => fx.project, clock: fx.store.clock, version: "test", authEnabled: true, secretKey: null, bodyLimitBytes: 1024 * 1024, engine: fx.engine },
    { log: () => {} },
  );
  const server = await serveHttp(app.fetch, { port: 0, hostname: "127.0.0.1" });
  // every read of the store (the route's, the scheduler's, the engine's, the block runtime's) goes through store.client
  const inner = fx.store.client;
  let recording: string[] | null = null;
  const recorder: SqlClient = {
    execute: (stmt) => {
      recording?.push(typeof stmt === "string" ? stmt : stmt.sql);
      return inner.execute(stmt);
    },
    batch: (stmts, mode) => inner.batch(stmts, mode),
    close: () => inner.close(),
  };
  Object.defineProperty(fx.store, "client", { value: recorder });
  const fixture: TriggerFixture = {
    ...fx,
    url: `http://127.0.0.1:${server.port}`,
    scheduler,
    ticks: () => ticks,
    recordReads() {
      const reads: string[] = [];
      recording = reads;
      return { reads, stop: () => void (recording = null) };
    },
    async close() {
      await scheduler.stop(5000);
      await server.close();
      fx.cleanup();
    },
  };
  open.push(fixture);
  return fixture;
}

async function apiTrigger(fx: TriggerFixture, name: string, settings: Record<string, unknown> = {}): Promise<{ id: number; token: string }> {
  const schedule = await createSchedule(fx.store, fx.project, { name, pipelineUuid: "p", scheduleType: "api", status: "active", settings });
  return { id: schedule.id, token: (await fx.store.revealTriggerToken(schedule.id))! };
}

async function post(fx: TriggerFixture, id: number, token: string): Promise<{ status: number; runId: number | null }> {
  const response = await fetch(`${fx.url}/api/pipeline_schedules/${id}/pipeline_runs/${token}`, { method: "POST", body: JSON.stringify({ pipeline_run: { variables: { n: 1 } } }) });
  const body = (await response.json()) as { pipeline_run?: { id: number } };
  return { status: response.status, runId: body.pipeline_run?.id ?? null };
}

const statusOf = async (fx: Fixture, id: number) => (await fx.store.getPipelineRun(id))?.status;

test("the run's first block starts with no scheduler tick, and the trigger is the one row read on the way", async () => {
  const gate = closeGate("api-start");
  const fx = await triggerFixture("api-start");
  const { id, token } = await apiTrigger(fx, "fast");
  expect(fx.ticks()).toBe(1);

  const recorded = fx.recordReads();
  const answer = await post(fx, id, token);
  expect(answer.status).toBe(201);
  await until(() => gate.arrivals === 1, "the run's first block to start");
  recorded.stop();

  // the run row was committed before the answer, and the block started without a tick
  expect(fx.ticks()).toBe(1);
  expect(await statusOf(fx, answer.runId!)).toBe("running");
  // the route's one read of the trigger; no read of the run, the waiting runs, the running
  // counts, backfills or the trigger again by the scheduler, the engine or the block's variables
  expect(recorded.reads).toHaveLength(1);
  expect(recorded.reads[0]).toContain("FROM pipeline_schedules WHERE id = ?");
  gate.open();
  await until(async () => (await statusOf(fx, answer.runId!)) === "completed", "the run to complete");
  // the block's runtime variables name the trigger the engine read with the run
  const output = await fx.runtime.outputs.read("p", (await fx.store.getPipelineRun(answer.runId!))!.executionPartition, "work");
  expect(output).toEqual({ partition: (await fx.store.getPipelineRun(answer.runId!))!.executionPartition });
});

test("a run of a trigger with a run limit waits for the scheduler's full pass, which holds it to the limit", async () => {
  const gate = closeGate("api-limit");
  const fx = await triggerFixture("api-limit");
  const { id, token } = await apiTrigger(fx, "limited", { pipeline_run_limit: 1 });

  const first = await post(fx, id, token);
  await until(() => gate.arrivals === 1, "the first run's block to start");
  const second = await post(fx, id, token);
  expect(second.status).toBe(201);
  // a full pass (the one the signal asked for, and a tick) finds the limit reached: it waits
  await fx.scheduler.tick();
  expect(await statusOf(fx, first.runId!)).toBe("running");
  expect(await statusOf(fx, second.runId!)).toBe("initial");
  expect(gate.arrivals).toBe(1);

  gate.open();
  await until(async () => (await statusOf(fx, first.runId!)) === "completed", "the first run to complete");
  await fx.scheduler.tick();
  await until(async () => (await statusOf(fx, second.runId!)) === "completed", "the second run to start and complete");
  expect(gate.arrivals).toBe(2);
});

test("a wrong token (another trigger's, or one a byte off) answers 401 and starts nothing", async () => {
  const gate = closeGate("api-wrong");
  const fx = await triggerFixture("api-wrong");
  const a = await apiTrigger(fx, "a");
  const b = await apiTrigger(fx, "b");
  const offByOne = `${a.token.slice(0, -1)}${a.token.endsWith("0") ? "1" : "0"}`;
  for (const token of [b.token, offByOne, `${a.token}0`]) {
    const answer = await post(fx, a.id, token);
    expect(answer).toEqual({ status: 401, runId: null });
  }
  // an unknown trigger answers the same
  expect(await post(fx, 999_999, a.token)).toEqual({ status: 401, runId: null });
  expect(await runs(fx.client)).toEqual([]);
  // the right token still starts a run
  const right = await post(fx, a.id, a.token);
  expect(right.status).toBe(201);
  await until(() => gate.arrivals === 1, "the run's first block to start");
  gate.open();
});
