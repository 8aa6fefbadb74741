/**
 * The notification outbox over a real store and delivery to local HTTP receivers: atomic
 * enqueue with a WriteBatch, webhook and Slack bodies, backoff on a failing target (FakeClock),
 * a hanging target that must not hold up the others, giving up, and no secret in any log line.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { FakeClock, type PipelineRun } from "@kiln/core";
import {
  deliverDueNotifications,
  enqueueNotifications,
  GAVE_UP_AT,
  notificationBackoffMs,
  parseNotificationConfig,
  runFailed,
  runSucceeded,
  webhookHeaders,
  type NotifyLogLevel,
} from "../../core/src/notify/index.ts";
import { metadata, projectFixture, type Fixture } from "../helpers/fixtures.ts";

const SLACK_PATH = "/services/T000/B000/XXXXSECRET";

interface Received {
  path: string;
  headers: Headers;
  body: unknown;
  at: number;
}

let fx: Fixture;
let clock: FakeClock;
let ok: Server<undefined>;
let failing: Server<undefined>;
let hanging: Server<undefined>;
let deadPort: number;
let received: Received[] = [];
let failingHits = 0;
let failingRecovered = false;

beforeAll(async () => {
  clock = new FakeClock();
  fx = await projectFixture(
    {
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": metadata([{ uuid: "a", type: "data_loader" }]),
      "data_loaders/a.js": "export default () => 1;\n",
    },
    clock,
  );
  ok = Bun.serve({
    port: 0,
    async fetch(req) {
      received.push({ path: new URL(req.url).pathname, headers: req.headers, body: await req.json(), at: Date.now() });
      return new Response("ok");
    },
  });
  failing = Bun.serve({
    port: 0,
    async fetch(req) {
      failingHits++;
      await req.text();
      if (failingRecovered) return new Response("ok");
      // echoes the URL, as some servers do, to prove the stored error is redacted too
      return new Response(`no_service at ${req.url}`, { status: 500 });
    },
  });
  hanging = Bun.serve({ port: 0, fetch: () => new Promise<Response>(() => {}) });
  const dead = Bun.serve({ port: 0, fetch: () => new Response("") });
  deadPort = dead.port!;
  dead.stop(true);
});

afterAll(() => {
  ok.stop(true);
  failing.stop(true);
  hanging.stop(true);
  fx.cleanup();
});

beforeEach(async () => {
  await fx.client.execute("DELETE FROM notifications");
  received = [];
  failingHits = 0;
  failingRecovered = false;
});

const urlOf = (server: Server<undefined>, path: string) => `http://localhost:${server.port}${path}`;

async function newRun(): Promise<PipelineRun> {
  const run = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: clock.now() });
  if (!run) throw new Error("no run");
  return run;
}

async function rows() {
  const rs = await fx.client.execute("SELECT * FROM notifications ORDER BY id");
  return rs.rows.map((r) => ({
    id: Number(r.id),
    kind: String(r.kind),
    target: String(r.target),
    payload: String(r.payload),
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    sentAt: r.sent_at === null ? null : Number(r.sent_at),
    lastError: r.last_error === null ? null : String(r.last_error),
  }));
}

/** A log callback that keeps its lines. */
function capture() {
  const lines: string[] = [];
  return { lines, log: (level: NotifyLogLevel, message: string) => lines.push(`${level} ${message}`) };
}

describe("enqueueNotifications", () => {
  const config = parseNotificationConfig({ webhooks: [{ url: "https://example.test/hook" }] });

  test("with a WriteBatch, the row commits with the batch and not before", async () => {
    const run = await newRun();
    const batch = fx.store.batch().transitionPipelineRun(run.id, "initial", "running");
    expect(await enqueueNotifications(batch, fx.store, config, runFailed(run, { uuid: "p" }, "boom"))).toBe(1);
    expect(await rows()).toEqual([]);
    await fx.store.commit(batch);
    const [row, ...rest] = await rows();
    expect(rest).toEqual([]);
    expect(row).toMatchObject({ kind: "run_failed", target: "https://example.test/hook", attempts: 0, nextAttemptAt: clock.now(), sentAt: null });
    expect(JSON.parse(row!.payload)).toEqual(runFailed(run, { uuid: "p" }, "boom").payload);
  });

  test("a batch that rolls back (its guard fails) leaves no row", async () => {
    const run = await newRun();
    // the run is in initial, not running: the guard aborts the whole batch
    const batch = fx.store.batch().transitionPipelineRun(run.id, "running", "failed");
    await enqueueNotifications(batch, fx.store, config, runFailed(run, { uuid: "p" }, "boom"));
    await expect(fx.store.commit(batch)).rejects.toThrow();
    expect(await rows()).toEqual([]);
  });

  test("without a batch, the row is inserted at once", async () => {
    const run = await newRun();
    expect(await enqueueNotifications(null, fx.store, config, runFailed(run, { uuid: "p" }))).toBe(1);
    expect(await rows()).toHaveLength(1);
  });

  test("an event no target alerts on writes nothing (success is opt-in)", async () => {
    const run = await newRun();
    const batch = fx.store.batch();
    expect(await enqueueNotifications(batch, fx.store, config, runSucceeded(run, { uuid: "p" }))).toBe(0);
    expect(batch.size).toBe(0);
    expect(await enqueueNotifications(null, fx.store, {}, runFailed(run, { uuid: "p" }))).toBe(0);
    expect(await rows()).toEqual([]);
  });
});

describe("deliverDueNotifications", () => {
  test("POSTs the webhook payload (with its headers) and Slack's { text }, and marks both sent", async () => {
    const config = parseNotificationConfig({
      webhooks: [{ url: urlOf(ok, "/hook"), headers: { Authorization: "Bearer abc", "Content-Type": "text/plain" } }],
      slack: [{ webhook_url: urlOf(ok, SLACK_PATH) }],
    });
    const run = await newRun();
    const event = runFailed(run, { uuid: "p", name: "Pipeline P" }, "block a failed");
    await enqueueNotifications(null, fx.store, config, event);
    const { lines, log } = capture();

    const summary = await deliverDueNotifications(fx.store, { log, headers: webhookHeaders([config]) });

    expect(summary).toEqual({ sent: 2, failed: 0, gaveUp: 0 });
    const hook = received.find((r) => r.path === "/hook")!;
    const slack = received.find((r) => r.path === SLACK_PATH)!;
    expect(hook.body).toEqual(event.payload);
    expect(hook.headers.get("authorization")).toBe("Bearer abc");
    expect(hook.headers.get("content-type")).toBe("application/json");
    expect(slack.body).toEqual({ text: event.message });
    expect(slack.headers.get("authorization")).toBeNull();
    for (const row of await rows()) expect(row).toMatchObject({ sentAt: clock.now(), attempts: 1, lastError: null });
    expect(lines).toHaveLength(2);
    expect(await deliverDueNotifications(fx.store, { log })).toEqual({ sent: 0, failed: 0, gaveUp: 0 });
    expect(received).toHaveLength(2);
  });

  test("a 500 target is retried with backoff (30 s, then 60 s) and delivered once it recovers", async () => {
    const config = parseNotificationConfig({ webhooks: [{ url: urlOf(failing, "/hook") }] });
    await enqueueNotifications(null, fx.store, config, runFailed(await newRun(), { uuid: "p" }));
    const start = clock.now();

    expect(await deliverDueNotifications(fx.store)).toEqual({ sent: 0, failed: 1, gaveUp: 0 });
    let [row] = await rows();
    expect(row).toMatchObject({ attempts: 1, nextAttemptAt: start + 30_000, sentAt: null });
    expect(row!.lastError).toStartWith("HTTP 500: no_service");

    // not due yet: nothing is posted
    clock.advance(29_999);
    expect(await deliverDueNotifications(fx.store)).toEqual({ sent: 0, failed: 0, gaveUp: 0 });
    expect(failingHits).toBe(1);

    clock.advance(1);
    expect(await deliverDueNotifications(fx.store)).toEqual({ sent: 0, failed: 1, gaveUp: 0 });
    [row] = await rows();
    expect(row).toMatchObject({ attempts: 2, nextAttemptAt: start + 30_000 + 60_000 });

    failingRecovered = true;
    clock.advance(60_000);
    expect(await deliverDueNotifications(fx.store)).toEqual({ sent: 1, failed: 0, gaveUp: 0 });
    [row] = await rows();
    expect(row).toMatchObject({ attempts: 3, sentAt: clock.now() });
    expect(failingHits).toBe(3);
  });

  test("the backoff doubles from 30 s and is capped at 1 h", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 20].map(notificationBackoffMs)).toEqual([
      30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000,
    ]);
  });

  test("a hanging target times out without holding up the others", async () => {
    const config = parseNotificationConfig({
      webhooks: [{ url: urlOf(hanging, "/hook") }, { url: urlOf(ok, "/hook") }],
      slack: [{ webhook_url: urlOf(ok, SLACK_PATH) }],
    });
    await enqueueNotifications(null, fx.store, config, runFailed(await newRun(), { uuid: "p" }));
    const timeoutMs = 1500;
    const started = Date.now();

    const summary = await deliverDueNotifications(fx.store, { timeoutMs });

    const elapsed = Date.now() - started;
    expect(summary).toEqual({ sent: 2, failed: 1, gaveUp: 0 });
    // the others were answered before the hanging POST's timeout fired, and the call ended soon after it
    expect(received).toHaveLength(2);
    for (const r of received) expect(r.at - started).toBeLessThan(timeoutMs);
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(elapsed).toBeLessThan(timeoutMs + 1000);
    const stuck = (await rows()).find((r) => r.target.includes(String(hanging.port)))!;
    expect(stuck).toMatchObject({ attempts: 1, sentAt: null, lastError: `timed out after ${timeoutMs} ms` });
  });

  test("a fetch that ignores its abort signal still cannot hold the call past the timeout", async () => {
    await enqueueNotifications(null, fx.store, parseNotificationConfig({ webhooks: [{ url: "https://never.test/x" }] }), runFailed(await newRun(), { uuid: "p" }));
    const started = Date.now();
    const summary = await deliverDueNotifications(fx.store, {
      timeoutMs: 100,
      fetch: (() => new Promise<Response>(() => {})) as unknown as typeof fetch,
    });
    expect(summary).toEqual({ sent: 0, failed: 1, gaveUp: 0 });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("gives up after 10 failed attempts: sent_at stays NULL, last_error says so, never due again", async () => {
    const config = parseNotificationConfig({ webhooks: [{ url: urlOf(failing, "/hook") }] });
    await enqueueNotifications(null, fx.store, config, runFailed(await newRun(), { uuid: "p" }));
    const { lines, log } = capture();
    for (let attempt = 1; attempt <= 9; attempt++) {
      expect(await deliverDueNotifications(fx.store, { log })).toEqual({ sent: 0, failed: 1, gaveUp: 0 });
      clock.advance(notificationBackoffMs(attempt));
    }
    expect(await deliverDueNotifications(fx.store, { log })).toEqual({ sent: 0, failed: 0, gaveUp: 1 });
    const [row] = await rows();
    expect(row).toMatchObject({ attempts: 10, sentAt: null, nextAttemptAt: GAVE_UP_AT });
    expect(row!.lastError).toStartWith("gave up: HTTP 500");
    expect(lines.at(-1)).toStartWith("error ");
    expect(lines.at(-1)).toContain("giving up");

    failingRecovered = true;
    clock.advance(365 * 24 * 3_600_000);
    expect(await deliverDueNotifications(fx.store, { log })).toEqual({ sent: 0, failed: 0, gaveUp: 0 });
    expect(failingHits).toBe(10);
  });

  test("takes at most `limit` rows, oldest due first", async () => {
    const config = parseNotificationConfig({ webhooks: [{ url: urlOf(ok, "/hook") }] });
    const runs = [await newRun(), await newRun(), await newRun()];
    for (const run of runs) {
      await enqueueNotifications(null, fx.store, config, runFailed(run, { uuid: "p" }));
      clock.advance(1000);
    }
    expect(await deliverDueNotifications(fx.store, { limit: 2 })).toEqual({ sent: 2, failed: 0, gaveUp: 0 });
    expect(received.map((r) => (r.body as { pipeline_run_id: number }).pipeline_run_id).sort()).toEqual([runs[0]!.id, runs[1]!.id]);
    expect(await deliverDueNotifications(fx.store, { limit: 2 })).toEqual({ sent: 1, failed: 0, gaveUp: 0 });
  });

  test("an outbox the database cannot be reached for is a warning (the next tick reads it again), any other failure an error", async () => {
    const failingStore = (error: Error) => {
      const fail = async () => {
        throw error;
      };
      return { clock: fx.store.clock, client: { ...fx.store.client, execute: fail, batch: fail } as typeof fx.store.client };
    };
    const restarting = Object.assign(new Error("SERVER_ERROR: Server returned HTTP status 503"), { code: "SERVER_ERROR" });
    const broken = Object.assign(new Error("SQLITE_ERROR: no such table: notifications"), { code: "SQLITE_ERROR" });
    const during = capture();
    expect(await deliverDueNotifications(failingStore(restarting), { log: during.log })).toEqual({ sent: 0, failed: 0, gaveUp: 0 });
    expect(during.lines).toEqual([expect.stringMatching(/^warn notifications: could not read the outbox, the database cannot be reached \(tried again at the next tick\): SERVER_ERROR/)]);
    const other = capture();
    await deliverDueNotifications(failingStore(broken), { log: other.log });
    expect(other.lines).toEqual([expect.stringMatching(/^error notifications: could not read the outbox: SQLITE_ERROR: no such table/)]);
  });

  test("two overlapping calls never POST the same row twice", async () => {
    const config = parseNotificationConfig({ webhooks: [{ url: urlOf(ok, "/hook") }] });
    for (let i = 0; i < 5; i++) await enqueueNotifications(null, fx.store, config, runFailed(await newRun(), { uuid: "p" }));
    const [a, b] = await Promise.all([deliverDueNotifications(fx.store), deliverDueNotifications(fx.store)]);
    expect(a.sent + b.sent).toBe(5);
    expect(received).toHaveLength(5);
  });

  test("no log line and no stored error holds the Slack URL, whatever the failure", async () => {
    const secretTargets = [
      urlOf(failing, SLACK_PATH), // 500 whose body echoes the URL
      urlOf(hanging, SLACK_PATH), // timeout
      `http://localhost:${deadPort}${SLACK_PATH}`, // connection refused (the error names the URL)
      urlOf(ok, SLACK_PATH), // success
    ];
    const config = parseNotificationConfig({ slack: secretTargets.map((webhook_url) => ({ webhook_url })) });
    await enqueueNotifications(null, fx.store, config, runFailed(await newRun(), { uuid: "p" }));
    const { lines, log } = capture();

    expect(await deliverDueNotifications(fx.store, { log, timeoutMs: 300 })).toEqual({ sent: 1, failed: 3, gaveUp: 0 });
    // and a broken database: the error is logged, not thrown
    const broken = {
      clock,
      client: { ...fx.client, execute: () => Promise.reject(new Error(`cannot reach ${urlOf(ok, SLACK_PATH)}`)) },
    } as unknown as typeof fx.store;
    expect(await deliverDueNotifications(broken, { log })).toEqual({ sent: 0, failed: 0, gaveUp: 0 });

    expect(lines).toHaveLength(5);
    const stored = (await rows()).map((r) => r.lastError ?? "");
    for (const text of [...lines, ...stored]) {
      expect(text).not.toContain("XXXXSECRET");
      expect(text).not.toContain("/services/");
    }
    expect(lines.some((l) => l.includes(`http://localhost:${failing.port}/***`))).toBe(true);
    expect(stored.filter((e) => e.startsWith("HTTP 500: no_service at http://localhost:"))).toHaveLength(1);
  });
});

test("a throwing log callback does not make delivery throw", async () => {
  const config = parseNotificationConfig({ webhooks: [{ url: "https://never.test/x" }] });
  await enqueueNotifications(null, fx.store, config, runFailed(await newRun(), { uuid: "p" }));
  const log = () => {
    throw new Error("logger down");
  };
  const fetchFails = (() => Promise.reject(new Error("offline"))) as unknown as typeof fetch;
  expect(await deliverDueNotifications(fx.store, { log, fetch: fetchFails })).toEqual({ sent: 0, failed: 1, gaveUp: 0 });
});
