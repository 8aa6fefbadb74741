/** @jsxImportSource hono/jsx */
/**
 * What the UI's routes share: a page in the layout, a live region's fragment and stream, the
 * redirect after a POST with its notice, and ids from the path. No route logic here.
 */
import type { Context, Hono } from "hono";
import type { Child } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { KilnError } from "@kiln/core";
import type { SessionVerifier } from "../auth.ts";
import type { ServerDeps } from "../deps.ts";
import { liveStream } from "../sse.ts";
import { Layout, type Section } from "./layout.tsx";
import type { UiEnv } from "./session.ts";

/** What each ui/routes/* module exports: it registers its section's routes on the UI app, as server/src/routes/* do on the API. */
export type UiRoutes = (ui: Hono<UiEnv>, deps: ServerDeps, verifySession: SessionVerifier) => void;

/** How often a live region re-reads what it follows. */
const STREAM_POLL_MS = 250;
/** While a run or backfill is live, its region is re-sent at least this often, so durations and bars grow. */
export const STREAM_TICK_MS = 2_000;
/** A comment line sent when nothing else was, so idle proxies keep the stream open. */
const KEEPALIVE_MS = 10_000;
/** Rows per page of the runs and backfills lists. */
export const PAGE_SIZE = 40;

export const ID = /^[1-9][0-9]{0,15}$/;
export const UUID = /^[A-Za-z0-9_.-]{1,200}$/;

/** A numeric id from the path, or a 404 page (an id that cannot exist names nothing). */
export function idOf(c: Context<UiEnv>, what: string): number {
  const raw = c.req.param("id") ?? "";
  if (!ID.test(raw)) throw new KilnError("not_found", `There is no ${what} ${JSON.stringify(raw.slice(0, 40))}.`);
  return Number(raw);
}

/** The page around `body`, as a complete HTML document. */
export async function page(c: Context<UiEnv>, deps: ServerDeps, title: string, section: Section, body: Child, status: ContentfulStatusCode = 200): Promise<Response> {
  const ui = c.get("ui");
  const node = (
    <Layout title={title} section={section} principal={ui?.principal ?? null} csrf={ui?.csrf ?? ""} authEnabled={deps.authEnabled}>
      {body}
    </Layout>
  );
  return c.html(`<!DOCTYPE html>${await node.toString()}`, status);
}

/** Renders a live region to a string, for a stream event. */
export async function fragment(node: Child): Promise<string> {
  return String(await (<>{node}</>).toString());
}

/** Where a POST goes back to, with one of the known outcomes as a message key (never free text from the request). */
export function back(c: Context<UiEnv>, path: string, done?: string): Response {
  return c.redirect(done ? `${path}?done=${done}` : path, 303);
}

const MESSAGES: Record<string, string> = {
  cancelled: "The run was cancelled.",
  retried: "The run is running again: its failed blocks were reset.",
  activated: "The trigger is active.",
  deactivated: "The trigger is inactive: it creates no runs until activated.",
  rotated: "The token was rotated: the old URL no longer works.",
  started: "The backfill started.",
  backfill_cancelled: "The backfill and its live runs were cancelled.",
  backfill_retried: "The failed runs of the backfill run again.",
};

/** The notice for the outcome `back` named, if any. */
export function message(c: Context<UiEnv>): { message?: string } {
  const done = c.req.query("done");
  const text = done !== undefined ? MESSAGES[done] : undefined;
  return text ? { message: text } : {};
}

/** One look at a live region. */
export interface Frame {
  /** Changes whenever the region would render differently. */
  key: string;
  html: string;
  status: string;
  /** The last frame: the stream ends after it. */
  done: boolean;
}

/**
 * Pushes a live region: reads `load` every STREAM_POLL_MS and sends a `fragment` event whenever
 * its key changed, until a frame says done (or `load` finds nothing: `end`) or the client goes
 * away. The database is polled here, once per viewer, so browsers never poll.
 */
export function fragmentStream(c: Context<UiEnv>, load: () => Promise<Frame | null>): Response {
  let last = "";
  const failure = { event: "end", data: { status: null, message: "the stream failed; reload to resume" } };
  return liveStream(c, { pollMs: STREAM_POLL_MS, keepAliveMs: KEEPALIVE_MS, failure }, async (send) => {
    const frame = await load();
    if (!frame) {
      await send("end", { status: null });
      return true;
    }
    if (frame.key !== last) {
      await send("fragment", { html: frame.html, status: frame.status, done: frame.done });
      last = frame.key;
    }
    return frame.done;
  });
}

/** A status list's stream: polls every second (statuses only, cheap), keeping idle proxies open like the others. */
export function statusStream(c: Context<UiEnv>, poll: Parameters<typeof liveStream>[2]): Response {
  return liveStream(c, { pollMs: 1_000, keepAliveMs: KEEPALIVE_MS, failure: { event: "end", data: { message: "the stream failed; reload to resume" } } }, poll);
}

/** The project's pipeline uuids, sorted (the filters' and forms' choices). */
export function pipelineNames(deps: ServerDeps): string[] {
  return [...deps.project().pipelines.keys()].sort();
}
