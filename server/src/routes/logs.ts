/**
 * Block logs over HTTP: a page of history for a pipeline run or one block run, and a live stream
 * (Server-Sent Events) that sends what is logged already, then follows new lines until the run
 * ends. Lines are read back by byte offset through the LogReader port, so neither a page nor a
 * poll rereads a file.
 */
import { parseLogLine, splitLogChunk, type BlockRun, type LogReader, type PipelineRun } from "@kiln/core";
import { isoOrNull } from "@kiln/core/bounds";
import { BLOCK_RUN_TERMINAL, isTerminal } from "@kiln/core/engine";
import type { Context, Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { paged } from "../envelope.ts";
import { ApiError, notFound } from "../errors.ts";
import { idParam, PageQuery, readQuery } from "../validate.ts";
import { liveStream } from "../sse.ts";

/** Bytes asked of the reader at a time: a page or a poll reads whole chunks. */
const CHUNK_BYTES = 64 * 1024;
/** At most this much of one block run's log is held per read round of a stream. */
const POLL_BYTES = 1024 * 1024;
/** How often a stream looks for new lines and for the run's end. */
const POLL_MS = 150;
/** A comment sent when nothing else was, so idle proxies and servers keep the stream open. */
const KEEPALIVE_MS = 5_000;

/** The stream routes' credential for EventSource, which cannot send headers (read by the auth middleware). */
const AccessToken = v.optional(v.pipe(v.string(), v.maxLength(1000)));

/** A pipeline run's cursor: `<block_run_id>:<byte offset>`, the point to continue from. */
const RunCursor = v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,15}:[0-9]{1,15}$/, "expected the cursor given as metadata.after"));

const RunLogsQuery = v.strictObject({ _limit: PageQuery._limit, _after: v.optional(RunCursor) });
/** A block run's cursor is the byte offset to continue from. */
const BlockRunLogsQuery = v.strictObject(PageQuery);
const RunStreamQuery = v.strictObject({ access_token: AccessToken });
const BlockRunStreamQuery = v.strictObject({ access_token: AccessToken, _after: PageQuery._after });

/** One log line as the API shows it. */
function lineJson(run: PipelineRun, blockRun: BlockRun, line: string): Record<string, unknown> {
  const parsed = parseLogLine(line);
  return {
    pipeline_run_id: run.id,
    block_run_id: blockRun.id,
    block_uuid: blockRun.blockUuid,
    at: isoOrNull(parsed.at),
    level: parsed.level,
    message: parsed.message,
    fields: parsed.fields,
  };
}

/** Up to `limit` lines of a block run's log from byte `from`; `next` is the offset after the last one. */
async function readLines(reader: LogReader, run: PipelineRun, blockRun: BlockRun, from: number, limit: number): Promise<{ lines: Record<string, unknown>[]; next: number }> {
  const lines: Record<string, unknown>[] = [];
  let offset = from;
  while (lines.length < limit) {
    const chunk = await reader.read(run.pipelineUuid, run.executionPartition, blockRun.blockUuid, offset, CHUNK_BYTES);
    if (chunk.text === "") break;
    for (const { line, endOffset } of splitLogChunk(chunk, offset)) {
      lines.push(lineJson(run, blockRun, line));
      if (lines.length === limit) return { lines, next: endOffset };
    }
    offset = chunk.nextOffset;
  }
  return { lines, next: offset };
}

/** A block run whose log is complete: it ended and is not waiting to be retried. */
const finished = (blockRun: BlockRun): boolean => BLOCK_RUN_TERMINAL.has(blockRun.status) && blockRun.retryAt === null;

/** What a stream follows, read afresh at each poll. */
interface Snapshot {
  run: PipelineRun;
  blockRuns: BlockRun[];
  /** The status to end with once nothing more will be logged; null while it runs. */
  ended: string | null;
}

/**
 * The SSE response: every line of the snapshot's block runs past `offsets`, polling until the
 * snapshot says the run ended; the status is read before the files, so the lines sent last are
 * its last ones. A failure mid-stream (the database went away) ends it with an error event.
 */
function logStream(c: Context<Env>, reader: LogReader, snapshot: () => Promise<Snapshot | null>, offsets: Map<number, number>, withIds: boolean): Response {
  const drained = new Set<number>();
  const failure = { event: "error", data: { message: "the log stream failed; reconnect to resume" } };
  return liveStream(c, { pollMs: POLL_MS, keepAliveMs: KEEPALIVE_MS, failure }, async (send, gone) => {
    const snap = await snapshot();
    if (!snap) {
      await send("end", { status: null, message: "the run was deleted" });
      return true;
    }
    // A downstream block starts only after its upstream ended, so its lines come after theirs. To
    // keep that order, the files are read newest block run first: a line seen in a downstream
    // file means every upstream line written before it is in the files read after. The lines are
    // then sent in the order the block runs started. A block run with more than POLL_BYTES new bytes is sent up to
    // what was read, and the block runs after it wait for the next round (same poll), so nothing
    // is sent ahead of lines not yet read.
    for (;;) {
      const pending = snap.blockRuns.filter((blockRun) => !(finished(blockRun) && drained.has(blockRun.id))).sort(byStart);
      const read = new Map<number, { lines: Array<{ line: string; endOffset: number }>; to: number; more: boolean }>();
      for (const blockRun of [...pending].reverse()) {
        if (gone.aborted) return true;
        const lines: Array<{ line: string; endOffset: number }> = [];
        let from = offsets.get(blockRun.id) ?? 0;
        let bytes = 0;
        let more = false;
        for (;;) {
          const chunk = await reader.read(snap.run.pipelineUuid, snap.run.executionPartition, blockRun.blockUuid, from, CHUNK_BYTES);
          if (chunk.text === "") break;
          lines.push(...splitLogChunk(chunk, from));
          bytes += chunk.nextOffset - from;
          from = chunk.nextOffset;
          if (bytes >= POLL_BYTES) {
            more = true;
            break;
          }
        }
        read.set(blockRun.id, { lines, to: from, more });
      }
      let cut = false;
      for (const blockRun of pending) {
        const got = read.get(blockRun.id)!;
        for (const { line, endOffset } of got.lines) {
          await send("log", lineJson(snap.run, blockRun, line), withIds ? String(endOffset) : undefined);
        }
        offsets.set(blockRun.id, got.to);
        if (got.more) {
          cut = true;
          break;
        }
        // a block run that ended is read once more, after the snapshot that saw it end, then no more
        if (finished(blockRun)) drained.add(blockRun.id);
        else drained.delete(blockRun.id);
      }
      if (!cut || gone.aborted) break;
    }
    if (snap.ended !== null) {
      await send("end", { status: snap.ended });
      return true;
    }
    return false;
  });
}

/** Block runs in the order they started (those not started last), then by id. */
function byStart(a: BlockRun, b: BlockRun): number {
  return (a.startedAt ?? Number.MAX_SAFE_INTEGER) - (b.startedAt ?? Number.MAX_SAFE_INTEGER) || a.id - b.id;
}

function readerOr404(deps: ServerDeps): LogReader {
  if (!deps.logs) throw new ApiError("not_found", "this server has no access to block logs (no log reader configured)");
  return deps.logs;
}

async function runOr404(deps: ServerDeps, id: number): Promise<PipelineRun> {
  const run = await deps.store.getPipelineRun(id);
  if (!run) throw notFound("pipeline run", id);
  return run;
}

async function blockRunOr404(deps: ServerDeps, id: number): Promise<{ run: PipelineRun; blockRun: BlockRun }> {
  const blockRun = await deps.store.getBlockRun(id);
  if (!blockRun) throw notFound("block run", id);
  return { run: await runOr404(deps, blockRun.pipelineRunId), blockRun };
}

export function logRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({
    method: "get",
    path: "/api/pipeline_runs/:id/logs",
    summary: "A page of a pipeline run's block logs, block run by block run (continue with _after=metadata.after; metadata.count is this page's lines, since a total would read the whole log)",
    role: "viewer",
    query: RunLogsQuery,
    responseKey: "logs",
  });
  app.get("/api/pipeline_runs/:id/logs", async (c) => {
    const id = idParam(c);
    const query = readQuery(c, RunLogsQuery);
    const reader = readerOr404(deps);
    const run = await runOr404(deps, id);
    const limit = query._limit ?? 40;
    const [afterBlockRun, afterOffset] = query._after ? query._after.split(":").map(Number) : [0, 0];
    const lines: Record<string, unknown>[] = [];
    let next: string | null = null;
    for (const blockRun of await deps.store.getBlockRuns(run.id)) {
      if (blockRun.id < (afterBlockRun ?? 0)) continue;
      const from = blockRun.id === afterBlockRun ? (afterOffset ?? 0) : 0;
      const page = await readLines(reader, run, blockRun, from, limit - lines.length);
      lines.push(...page.lines);
      if (lines.length === limit) {
        next = `${blockRun.id}:${page.next}`;
        break;
      }
    }
    // a log's total would mean reading all of it: count is this page's lines (documented on the route)
    return paged(c, "logs", lines, next, lines.length);
  });

  doc.add({ method: "get", path: "/api/block_runs/:id/logs", summary: "A page of a block run's log (continue with _after=metadata.after; metadata.count is this page's lines)", role: "viewer", query: BlockRunLogsQuery, responseKey: "logs" });
  app.get("/api/block_runs/:id/logs", async (c) => {
    const id = idParam(c);
    const query = readQuery(c, BlockRunLogsQuery);
    const reader = readerOr404(deps);
    const { run, blockRun } = await blockRunOr404(deps, id);
    const limit = query._limit ?? 40;
    const page = await readLines(reader, run, blockRun, Number(query._after ?? 0), limit);
    return paged(c, "logs", page.lines, page.lines.length === limit ? String(page.next) : null, page.lines.length);
  });

  doc.add({
    method: "get",
    path: "/api/pipeline_runs/:id/logs/stream",
    summary: "Server-Sent Events: `log` events (one line each) as the run's blocks log them, then `end` with the run's status once it ended; credentials also as ?access_token= (EventSource sends no headers)",
    role: "viewer",
    query: RunStreamQuery,
  });
  app.get("/api/pipeline_runs/:id/logs/stream", async (c) => {
    const id = idParam(c);
    readQuery(c, RunStreamQuery);
    const reader = readerOr404(deps);
    await runOr404(deps, id);
    const snapshot = async (): Promise<Snapshot | null> => {
      const run = await deps.store.getPipelineRun(id);
      if (!run) return null;
      return { run, blockRuns: await deps.store.getBlockRuns(id), ended: isTerminal("pipeline_run", run.status) ? run.status : null };
    };
    return logStream(c, reader, snapshot, new Map(), false);
  });

  doc.add({
    method: "get",
    path: "/api/block_runs/:id/logs/stream",
    summary: "Server-Sent Events: a block run's `log` events (id = byte offset, so Last-Event-ID or _after resumes), then `end` with its status; credentials also as ?access_token=",
    role: "viewer",
    query: BlockRunStreamQuery,
  });
  app.get("/api/block_runs/:id/logs/stream", async (c) => {
    const id = idParam(c);
    const query = readQuery(c, BlockRunStreamQuery);
    const reader = readerOr404(deps);
    const { run: first } = await blockRunOr404(deps, id);
    const lastEventId = c.req.header("last-event-id");
    const resumeAt = query._after ?? (lastEventId !== undefined && /^[0-9]{1,15}$/.test(lastEventId) ? lastEventId : "0");
    const snapshot = async (): Promise<Snapshot | null> => {
      const [run, blockRun] = await Promise.all([deps.store.getPipelineRun(first.id), deps.store.getBlockRun(id)]);
      if (!run || !blockRun) return null;
      // it ends with its block run, or with the pipeline run (which may never start it)
      const ended = finished(blockRun) ? blockRun.status : isTerminal("pipeline_run", run.status) ? blockRun.status : null;
      return { run, blockRuns: [blockRun], ended };
    };
    return logStream(c, reader, snapshot, new Map([[id, Number(resumeAt)]]), true);
  });
}
