/** Block logs over HTTP: pages of history, and the live SSE stream that follows a run until it ends. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LogReader } from "@kiln/core";
import { fileLogReader } from "@kiln/node";
import { until } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

/** A block that logs, then waits for the file named by the run's `gate` variable. */
const GATED_BLOCK =
  "import { existsSync } from 'node:fs';\n" +
  "export default async function wait(ctx) {\n" +
  "  ctx.logger.info('waiting for the gate', { gate: ctx.variables.gate });\n" +
  "  while (!existsSync(ctx.variables.gate)) await new Promise((r) => setTimeout(r, 20));\n" +
  "  ctx.logger.info('gate opened');\n" +
  "  return 1;\n" +
  "}\n";

const FILES: Record<string, string> = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/chatty/metadata.yaml": "blocks:\n  - uuid: talk\n    type: data_loader\n  - uuid: after\n    type: transformer\n    upstream_blocks: [talk]\n",
  "data_loaders/talk.js":
    "export default function talk(ctx) {\n" +
    "  for (let n = 1; n <= 3; n++) ctx.logger.info('line ' + n, { n });\n" +
    "  ctx.logger.info('a {literal} brace');\n" +
    "  ctx.logger.warn('careful', { why: 'x {y' });\n" +
    "  return 1;\n" +
    "}\n",
  "transformers/after.js": "export default function after(x, ctx) { ctx.logger.error('after ' + x); return x; }\n",
  "pipelines/gated/metadata.yaml": "blocks:\n  - uuid: wait\n    type: data_loader\n  - uuid: then\n    type: transformer\n    upstream_blocks: [wait]\n",
  "data_loaders/wait.js": GATED_BLOCK,
  "transformers/then.js": "export default function then(x, ctx) { ctx.logger.info('after the gate'); return x; }\n",
};

/** Counts reads, so a test can see a stream stop polling; the real reader is set once the project exists. */
function countingReader(): { reader: LogReader; reads: () => number; setInner(inner: LogReader): void } {
  let inner: LogReader | null = null;
  let reads = 0;
  return {
    reader: {
      read(...args) {
        reads++;
        if (!inner) throw new Error("no reader yet");
        return inner.read(...args);
      },
    },
    reads: () => reads,
    setInner: (r) => (inner = r),
  };
}

let s: ServerFixture;
const counting = countingReader();
beforeAll(async () => {
  s = await serverFixture(FILES, { logs: counting.reader });
  counting.setInner(fileLogReader(s.root));
});
afterAll(() => s.close());

let triggers = 0;

/**
 * Creates a run of `pipeline` through the API; returns its id. Each run gets a trigger of its
 * own: two runs of one trigger within the same second share an execution partition (second
 * resolution, as in Mage), hence one log file.
 */
async function createRun(fx: ServerFixture, pipeline: string, variables: Record<string, unknown> = {}): Promise<number> {
  const created = await fx.call("POST", `/api/pipelines/${pipeline}/pipeline_schedules`, { body: { pipeline_schedule: { name: `api-${++triggers}`, schedule_type: "api", status: "active" } } });
  expect(created.status).toBe(201);
  const scheduleId = (created.json.pipeline_schedule as { id: number }).id;
  const run = await fx.call("POST", `/api/pipeline_schedules/${scheduleId}/pipeline_runs`, { role: "editor", body: { pipeline_run: { variables } } });
  expect(run.status).toBe(201);
  return (run.json.pipeline_run as { id: number }).id;
}

async function completed(fx: ServerFixture, runId: number): Promise<void> {
  await until(async () => (await fx.store.getPipelineRun(runId))?.status === "completed", `run ${runId} to complete`);
}

interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/** The events of an SSE response, parsed as EventSource would (comments skipped). */
async function* sseEvents(response: Response): AsyncGenerator<SseEvent> {
  if (!response.body) throw new Error("no body");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let at: number;
    while ((at = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let event = "message";
      let id: string | null = null;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
      if (data.length > 0) yield { event, data: data.join("\n"), id };
    }
  }
}

/** The next event, or a failure naming what was awaited (never hangs the suite). */
async function next(events: AsyncGenerator<SseEvent>, what: string): Promise<SseEvent | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 20_000)));
  try {
    const result = await Promise.race([events.next(), timeout]);
    return result.done ? null : result.value;
  } finally {
    clearTimeout(timer);
  }
}

interface Line {
  pipeline_run_id: number;
  block_run_id: number;
  block_uuid: string;
  at: string | null;
  level: string | null;
  message: string;
  fields: Record<string, unknown> | null;
}

/** Reads log events until `until` matches one (returned with those before it). */
async function readUntil(events: AsyncGenerator<SseEvent>, match: (e: SseEvent) => boolean, what: string): Promise<SseEvent[]> {
  const seen: SseEvent[] = [];
  for (;;) {
    const event = await next(events, what);
    if (!event) throw new Error(`the stream ended before ${what}; saw ${JSON.stringify(seen)}`);
    seen.push(event);
    if (match(event)) return seen;
  }
}

const message = (e: SseEvent): string => (e.event === "log" ? (JSON.parse(e.data) as Line).message : "");

function stream(fx: ServerFixture, path: string, options: { token?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token === undefined) headers.authorization = `Bearer ${fx.keys.viewer}`;
  const url = options.token === undefined ? `${fx.url}${path}` : `${fx.url}${path}?access_token=${encodeURIComponent(options.token)}`;
  return fetch(url, { headers, ...(options.signal ? { signal: options.signal } : {}) });
}

describe("log history", () => {
  test("a completed run's logs, a page at a time through the cursor, each line parsed from the file", async () => {
    const runId = await createRun(s, "chatty");
    await completed(s, runId);
    const blockRuns = await s.store.getBlockRuns(runId);
    const talk = blockRuns.find((b) => b.blockUuid === "talk")!;
    const after = blockRuns.find((b) => b.blockUuid === "after")!;

    const all = await s.call("GET", `/api/pipeline_runs/${runId}/logs`, { role: "viewer" });
    expect(all.status).toBe(200);
    expect(all.json.metadata).toEqual({ count: 6, next: false, after: null });
    const lines = all.json.logs as Line[];
    expect(lines.map((l) => [l.block_uuid, l.level, l.message, l.fields])).toEqual([
      ["talk", "info", "line 1", { n: 1 }],
      ["talk", "info", "line 2", { n: 2 }],
      ["talk", "info", "line 3", { n: 3 }],
      ["talk", "info", "a {literal} brace", null],
      ["talk", "warn", "careful", { why: "x {y" }],
      ["after", "error", "after 1", null],
    ]);
    expect(lines[0]!.block_run_id).toBe(talk.id);
    expect(lines[5]!.block_run_id).toBe(after.id);
    expect(lines.every((l) => l.pipeline_run_id === runId)).toBe(true);
    expect(Number.isFinite(Date.parse(String(lines[0]!.at)))).toBe(true);

    // pages of 4: the cursor continues inside one block run's log, then across to the next
    const paged: Line[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; json: Record<string, unknown> } = await s.call("GET", `/api/pipeline_runs/${runId}/logs?_limit=4${cursor ? `&_after=${cursor}` : ""}`, { role: "viewer" });
      expect(page.status).toBe(200);
      paged.push(...(page.json.logs as Line[]));
      cursor = (page.json.metadata as { after: string | null }).after;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(2);
    expect(paged).toEqual(lines);

    const first = await s.call("GET", `/api/block_runs/${talk.id}/logs?_limit=3`, { role: "viewer" });
    expect(first.status).toBe(200);
    expect((first.json.logs as Line[]).map((l) => l.message)).toEqual(["line 1", "line 2", "line 3"]);
    const nextCursor = (first.json.metadata as { after: string }).after;
    expect(nextCursor).toMatch(/^[1-9][0-9]*$/);
    const rest = await s.call("GET", `/api/block_runs/${talk.id}/logs?_limit=3&_after=${nextCursor}`, { role: "viewer" });
    expect((rest.json.logs as Line[]).map((l) => l.message)).toEqual(["a {literal} brace", "careful"]);
    expect(rest.json.metadata).toEqual({ count: 2, next: false, after: null });
  });

  test("bad input is a 400 naming the field; unknown runs are 404s", async () => {
    const cases: Array<[string, number, string]> = [
      ["/api/pipeline_runs/abc/logs", 400, "path.id"],
      ["/api/pipeline_runs/1/logs?_after=12", 400, "query._after"],
      ["/api/pipeline_runs/1/logs?_limit=0", 400, "query._limit"],
      ["/api/pipeline_runs/1/logs?bogus=1", 400, "query.bogus"],
      ["/api/block_runs/1/logs?_after=1:2", 400, "query._after"],
      ["/api/pipeline_runs/1/logs/stream?_limit=2", 400, "query._limit"],
      ["/api/pipeline_runs/999999/logs", 404, ""],
      ["/api/block_runs/999999/logs", 404, ""],
      ["/api/pipeline_runs/999999/logs/stream", 404, ""],
      ["/api/block_runs/999999/logs/stream", 404, ""],
    ];
    for (const [path, status, field] of cases) {
      const answer = await s.call("GET", path, { role: "viewer" });
      expect([path, answer.status]).toEqual([path, status]);
      const error = answer.json.error as { message: string; details: Array<{ field: string }> };
      expect(error.message.length).toBeGreaterThan(0);
      if (field) expect(error.details.map((d) => d.field)).toContain(field);
    }
  });
});

describe("log stream", () => {
  test("receives a block's log lines while the run is still going, then ends with the run", async () => {
    const gate = join(s.root, "gate-stream");
    const runId = await createRun(s, "gated", { gate });
    const response = await stream(s, `/api/pipeline_runs/${runId}/logs/stream`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const events = sseEvents(response);

    const before = await readUntil(events, (e) => message(e) === "waiting for the gate", "the first log line");
    // the block is still waiting: the line came while the run was going
    expect((await s.store.getPipelineRun(runId))?.status).toBe("running");
    expect(existsSync(gate)).toBe(false);
    expect(before.every((e) => e.event === "log")).toBe(true);
    const waiting = JSON.parse(before[before.length - 1]!.data) as Line;
    expect(waiting).toMatchObject({ pipeline_run_id: runId, block_uuid: "wait", level: "info", fields: { gate } });

    writeFileSync(gate, "");
    const rest = await readUntil(events, (e) => e.event === "end", "the end event");
    expect(rest.filter((e) => e.event === "log").map(message)).toEqual(["gate opened", "after the gate"]);
    expect(JSON.parse(rest[rest.length - 1]!.data)).toEqual({ status: "completed" });
    expect(await next(events, "the stream to close")).toBeNull();
    expect((await s.store.getPipelineRun(runId))?.status).toBe("completed");
  });

  test("a block run's stream sends its lines with byte-offset ids and ends; Last-Event-ID resumes after a line", async () => {
    const runId = await createRun(s, "chatty");
    await completed(s, runId);
    const talk = (await s.store.getBlockRuns(runId)).find((b) => b.blockUuid === "talk")!;
    const events = sseEvents(await stream(s, `/api/block_runs/${talk.id}/logs/stream`));
    const all = await readUntil(events, (e) => e.event === "end", "the end event");
    const logs = all.filter((e) => e.event === "log");
    expect(logs.map(message)).toEqual(["line 1", "line 2", "line 3", "a {literal} brace", "careful"]);
    expect(JSON.parse(all[all.length - 1]!.data)).toEqual({ status: "completed" });
    const ids = logs.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    const resumed = sseEvents(await stream(s, `/api/block_runs/${talk.id}/logs/stream`, { headers: { "last-event-id": String(ids[1]) } }));
    const after = await readUntil(resumed, (e) => e.event === "end", "the end event");
    expect(after.filter((e) => e.event === "log").map(message)).toEqual(["line 3", "a {literal} brace", "careful"]);
  });

  test("stops reading logs once the client disconnects", async () => {
    const gate = join(s.root, "gate-disconnect");
    const runId = await createRun(s, "gated", { gate });
    const controller = new AbortController();
    const events = sseEvents(await stream(s, `/api/pipeline_runs/${runId}/logs/stream`, { signal: controller.signal }));
    await readUntil(events, (e) => message(e) === "waiting for the gate", "the first log line");
    const readsWhileConnected = counting.reads();
    expect(readsWhileConnected).toBeGreaterThan(0);
    controller.abort();
    // the run is still going, so only a stopped poll explains a count that no longer moves
    let last = -1;
    let stable = 0;
    await until(
      async () => {
        await new Promise((r) => setTimeout(r, 400));
        const now = counting.reads();
        stable = now === last ? stable + 1 : 0;
        last = now;
        return stable >= 2;
      },
      "the stream to stop polling",
    );
    expect((await s.store.getPipelineRun(runId))?.status).toBe("running");
    writeFileSync(gate, "");
    await completed(s, runId);
  });
});

describe("log auth", () => {
  test("401 without credentials; ?access_token= works on the streams only", async () => {
    const runId = await createRun(s, "chatty");
    await completed(s, runId);
    const blockRunId = (await s.store.getBlockRuns(runId))[0]!.id;
    const paths = [`/api/pipeline_runs/${runId}/logs`, `/api/block_runs/${blockRunId}/logs`, `/api/pipeline_runs/${runId}/logs/stream`, `/api/block_runs/${blockRunId}/logs/stream`];
    for (const path of paths) {
      const answer = await s.call("GET", path, { role: null });
      expect([path, answer.status]).toEqual([path, 401]);
    }
    // a key in the URL is not accepted where a header can be sent
    for (const path of paths.slice(0, 2)) {
      const answer = await fetch(`${s.url}${path}?access_token=${s.keys.viewer}`);
      expect([path, answer.status]).toEqual([path, 401]);
    }
    for (const path of paths.slice(2)) {
      const answer = await stream(s, path, { token: s.keys.viewer });
      expect([path, answer.status]).toEqual([path, 200]);
      const all = await readUntil(sseEvents(answer), (e) => e.event === "end", "the end event");
      expect(all.some((e) => e.event === "log")).toBe(true);
      const wrong = await stream(s, path, { token: "kiln_not-a-real-key" });
      expect([path, wrong.status]).toEqual([path, 401]);
      await wrong.body?.cancel();
    }
  });
});

describe("logs of blocks run as child processes", () => {
  let p: ServerFixture;
  beforeAll(async () => {
    p = await serverFixture({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/gated/metadata.yaml": "blocks:\n  - uuid: wait\n    type: data_loader\n",
      "data_loaders/wait.js": GATED_BLOCK.replace("ctx.logger.info('waiting", "console.log('stdout of the block');\n  ctx.logger.info('waiting"),
    });
  });
  afterAll(() => p.close());

  test("the child's logger lines and its stdout reach the stream while it runs", async () => {
    const gate = join(p.root, "gate-child");
    const runId = await createRun(p, "gated", { gate });
    const events = sseEvents(await stream(p, `/api/pipeline_runs/${runId}/logs/stream`, { token: p.keys.viewer }));
    const before = await readUntil(events, (e) => message(e) === "waiting for the gate", "the logger line");
    const stdout = await (async () => before.find((e) => message(e) === "stdout of the block") ?? (await readUntil(events, (e) => message(e) === "stdout of the block", "the stdout line")).pop())();
    expect(JSON.parse(stdout!.data)).toMatchObject({ block_uuid: "wait", level: "stdout" });
    expect((await p.store.getPipelineRun(runId))?.status).toBe("running");
    writeFileSync(gate, "");
    const rest = await readUntil(events, (e) => e.event === "end", "the end event");
    expect(rest.filter((e) => e.event === "log").map(message)).toContain("gate opened");
    expect(JSON.parse(rest[rest.length - 1]!.data)).toEqual({ status: "completed" });
  });
});
