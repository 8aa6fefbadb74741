/**
 * Notifications end to end: a scheduled run that fails and a run past its SLA reach local
 * webhook and Slack receivers, configured in kiln.yaml and per pipeline.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ExecutorRegistry, FakeClock } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { Store } from "@kiln/core/store";
import { fileOutputStore, openDatabase } from "@kiln/node";
import { localExecutor } from "@kiln/executor-local";
import { notifyRunEnd, Scheduler, silentLog } from "@kiln/scheduler";
import { projectFixture, until } from "../helpers/fixtures.ts";
import { closeGate, gatedBlock, openGate, triggersYaml, utc } from "../helpers/scheduler.ts";

interface Received {
  path: string;
  body: Record<string, unknown>;
  token: string | null;
}
const received: Received[] = [];
let server: ReturnType<typeof Bun.serve>;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      received.push({
        path: new URL(request.url).pathname,
        body: (await request.json()) as Record<string, unknown>,
        token: request.headers.get("x-token"),
      });
      return new Response("ok");
    },
  });
});
afterAll(() => server.stop(true));

test("a failed run and an SLA breach are delivered to kiln.yaml's webhook and the pipeline's Slack", async () => {
  closeGate("notify-sla");
  const base = `http://127.0.0.1:${server.port}`;
  const clock = new FakeClock(utc(2026, 3, 2, 10, 15));
  const fx = await projectFixture(
    {
      "kiln.yaml": `executor_config:\n  in_process: true\nnotification_config:\n  webhooks:\n    - url: ${base}/hook\n      headers: {X-Token: s3cret}\n`,
      "pipelines/broken/metadata.yaml": `notification_config:\n  slack:\n    - webhook_url: ${base}/slack\nblocks:\n  - uuid: fail\n    type: custom\n`,
      "custom/fail.js": "export default () => { throw new Error('warehouse unreachable'); };\n",
      "pipelines/broken/triggers.yaml": triggersYaml([
        { name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", settings: { create_initial_pipeline_run: true } },
      ]),
      "pipelines/slow/metadata.yaml": "blocks:\n  - uuid: work\n    type: custom\n",
      "custom/work.js": gatedBlock("notify-sla"),
      "pipelines/slow/triggers.yaml": triggersYaml([
        { name: "hourly", schedule_type: "time", schedule_interval: "@hourly", status: "active", sla: 60, settings: { create_initial_pipeline_run: true } },
      ]),
    },
    clock,
  );
  // the engine wired as kiln start wires it: a run's end queues its notifications in the same batch
  const engine = new RunEngine({
    store: fx.store,
    project: fx.project,
    executors: new ExecutorRegistry().register(localExecutor({ runtime: fx.runtime, command: [process.execPath] })),
    outputs: fileOutputStore(fx.root),
    clock,
    beforeRunEnds: notifyRunEnd(fx.store, () => fx.project),
  });
  const scheduler = new Scheduler({ store: fx.store, project: fx.project, engine, clock, log: silentLog, id: "notify" });
  try {
    await scheduler.tick();
    await until(async () => {
      const rs = await fx.client.execute("SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_uuid = 'broken' AND status = 'failed'");
      return Number(rs.rows[0]?.n) === 1;
    }, "the broken run to fail");
    clock.advance(61_000);
    await scheduler.tick();
    // delivery runs in the background, one pass at a time: a tick while a pass is in flight
    // leaves new rows to the next tick, so tick until they are through
    await until(async () => {
      if (received.length < 3) await scheduler.tick();
      return received.length >= 3;
    }, "three deliveries", 10_000);
    await scheduler.tick();

    const hook = received.filter((r) => r.path === "/hook");
    const slack = received.filter((r) => r.path === "/slack");
    // kiln.yaml's webhook hears both; the pipeline's Slack (its only addition) hears its failure
    expect(hook.map((r) => r.body.event).sort()).toEqual(["run_failed", "sla_passed"]);
    const failure = hook.find((r) => r.body.event === "run_failed")!.body;
    expect(failure.pipeline_uuid).toBe("broken");
    expect(String(failure.message)).toContain("warehouse unreachable");
    expect(hook.find((r) => r.body.event === "sla_passed")!.body.pipeline_uuid).toBe("slow");
    // headers come from the config at send time (the outbox stores none)
    expect(hook.every((r) => r.token === "s3cret")).toBe(true);
    expect(slack.length).toBe(1);
    expect(String(slack[0]!.body.text)).toContain("broken");
    // each row is marked sent once its POST answered, a moment after the receiver saw it
    await until(async () => {
      const sent = await fx.client.execute("SELECT count(*) AS n FROM notifications WHERE sent_at IS NOT NULL");
      return Number(sent.rows[0]?.n) === 3;
    }, "the three rows to be marked sent");
    const unsent = await fx.client.execute("SELECT count(*) AS n FROM notifications WHERE sent_at IS NULL");
    expect(Number(unsent.rows[0]?.n)).toBe(0);
  } finally {
    openGate("notify-sla");
    await scheduler.stop(2000);
    fx.cleanup();
  }
});
