/**
 * Live streams (Server-Sent Events) for the API's log streams and the UI's live regions: one
 * loop that polls what it follows, sends what changed, keeps idle proxies from closing the
 * stream, stops when the client goes away, and ends with a last event when a poll fails (the
 * response is under way, so no status code can tell).
 *
 * ```ts
 * return liveStream(c, { pollMs: 250, keepAliveMs: 10_000, failure: { event: "end", data: {} } }, async (send) => {
 *   const run = await store.getPipelineRun(id);
 *   await send("status", { status: run?.status ?? null });
 *   return run === null || isTerminal("pipeline_run", run.status);   // true: the stream is over
 * });
 * ```
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { sleepUntilAborted } from "./sleep.ts";

/** Sends one event: `data` as JSON, `id` for a client to resume from (Last-Event-ID). */
export type SendEvent = (event: string, data: unknown, id?: string) => Promise<void>;

/** One look at what the stream follows: sends what changed, and resolves true once the stream is over. */
export type Poll = (send: SendEvent, gone: AbortSignal) => Promise<boolean>;

export interface LiveStreamOptions {
  /** How often `poll` runs (ms). */
  pollMs: number;
  /** A comment line goes out when nothing else did for this long (ms). */
  keepAliveMs: number;
  /** The last event when a poll throws. */
  failure: { event: string; data: unknown };
}

/** The SSE response that runs `poll` until it says done or the client goes away. */
export function liveStream(c: Context, options: LiveStreamOptions, poll: Poll): Response {
  return streamSSE(c, async (stream) => {
    const gone = new AbortController();
    stream.onAbort(() => gone.abort());
    let lastSent = Date.now();
    const send: SendEvent = async (event, data, id) => {
      await stream.writeSSE({ event, data: JSON.stringify(data), ...(id !== undefined ? { id } : {}) });
      lastSent = Date.now();
    };
    try {
      while (!gone.signal.aborted) {
        if (await poll(send, gone.signal)) return;
        if (Date.now() - lastSent >= options.keepAliveMs) {
          await stream.write(": keep-alive\n\n");
          lastSent = Date.now();
        }
        await sleepUntilAborted(options.pollMs, gone.signal);
      }
    } catch {
      if (!stream.aborted) await stream.writeSSE({ event: options.failure.event, data: JSON.stringify(options.failure.data) });
    }
  });
}
