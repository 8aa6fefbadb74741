/** @jsxImportSource hono/jsx */
/**
 * The web UI: server-rendered pages over the same store and core functions the REST API uses,
 * mounted at /ui by createApp. Pages are plain HTML forms (each write a POST with the session's
 * CSRF token); a small script localises times and follows the live streams (Server-Sent Events)
 * this module serves. No file system and no node: import, so it runs wherever the app does.
 */
import {
  backfillExecutionDates,
  backfillStatus,
  cancelBackfill,
  cancelPipelineRun,
  countBackfillExecutionDates,
  createBackfill,
  createRunForSchedule,
  INTERVAL_TYPES,
  isKilnError,
  KilnError,
  isTerminal,
  listBackfills,
  MAX_BACKFILL_DATES,
  nextPipelineRunDate,
  occurrences,
  PIPELINE_RUN_STATUSES,
  pipelineRunStatuses,
  retryFailedBackfillRuns,
  retryPipelineRun,
  runOverview,
  scheduleSpec,
  schedulingSettings,
  startBackfill,
  updateSchedule,
  type BlockRun,
  type IntervalType,
  type JsonObject,
  type PipelineRun,
  type PipelineRunStatus,
} from "@kiln/core";
import { Hono, type Context } from "hono";
import type { Child } from "hono/jsx";
import { streamSSE } from "hono/streaming";
import type { SessionVerifier } from "../auth.ts";
import type { ServerDeps } from "../deps.ts";
import { ApiError, statusOf, toApiError } from "../errors.ts";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { signIn, signOut, TooManySignInsError } from "../routes/sessions.ts";
import { APP_CSS, APP_JS } from "./assets.ts";
import { Status } from "./components.tsx";
import { Layout, type Section } from "./layout.tsx";
import {
  BackfillLive,
  BackfillPage,
  BackfillPreviewPage,
  BackfillsPage,
  ErrorPage,
  LoginPage,
  OverviewPage,
  PipelinePage,
  PipelinesPage,
  RunLive,
  RunPage,
  RunsPage,
  SecretsPage,
  TriggerPage,
  type BackfillForm,
} from "./pages.tsx";
import { canAct, clearSessionCookie, needRole, safeNext, sameOrigin, sessionCookie, setSessionCookie, uiAuth, type UiEnv } from "./session.ts";
import { sleepUntilAborted } from "../sleep.ts";
import { routeLabel } from "../route-pattern.ts";
import { requestHost, requestProto } from "../forwarded.ts";
import { clientAddress } from "../client-address.ts";

/** How often a live stream re-reads what it follows. */
const STREAM_POLL_MS = 250;
/** While a run or backfill is live, its region is re-sent at least this often, so durations and bars grow. */
const STREAM_TICK_MS = 2_000;
/** A comment line sent when nothing else was, so idle proxies keep the stream open. */
const KEEPALIVE_MS = 10_000;
/** Rows per page of the runs and backfills lists. */
const PAGE_SIZE = 40;
/** How many upcoming execution dates a trigger page lists. */
const NEXT_DATES = 10;
/** How many of a backfill preview's dates are listed (all are counted). */
const PREVIEW_DATES = 100;

const ID = /^[1-9][0-9]{0,15}$/;
const UUID = /^[A-Za-z0-9_.-]{1,200}$/;

/** Security headers for every UI answer: no inline script or style, no framing, nothing cached that carries a CSRF token. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

/** A numeric id from the path, or a 404 page (an id that cannot exist names nothing). */
function idOf(c: Context<UiEnv>, what: string): number {
  const raw = c.req.param("id") ?? "";
  if (!ID.test(raw)) throw new KilnError("not_found", `There is no ${what} ${JSON.stringify(raw.slice(0, 40))}.`);
  return Number(raw);
}

/** The page around `body`, as a complete HTML document. */
async function page(c: Context<UiEnv>, deps: ServerDeps, title: string, section: Section, body: Child, status: ContentfulStatusCode = 200): Promise<Response> {
  const ui = c.get("ui");
  const node = (
    <Layout title={title} section={section} principal={ui?.principal ?? null} csrf={ui?.csrf ?? ""} authEnabled={deps.authEnabled}>
      {body}
    </Layout>
  );
  return c.html(`<!DOCTYPE html>${await node.toString()}`, status);
}

/** Renders a live region to a string, for a stream event. */
async function fragment(node: Child): Promise<string> {
  return String(await (<>{node}</>).toString());
}

/** Where a POST goes back to, with one of the known outcomes as a message key (never free text from the request). */
function back(c: Context<UiEnv>, path: string, done?: string): Response {
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

function message(c: Context<UiEnv>): { message?: string } {
  const done = c.req.query("done");
  const text = done !== undefined ? MESSAGES[done] : undefined;
  return text ? { message: text } : {};
}

/** A refusal as the page shows it, with the status errors.ts gives its code; null for a kiln bug (a 500). */
function uiErrorOf(error: unknown): { status: ContentfulStatusCode; message: string } | null {
  // the UI's own words and core's are shown as written; the API's envelope would prefix fields
  if (error instanceof KilnError) return { status: statusOf(error.code), message: error.message };
  const api = toApiError(error);
  return api.status < 500 ? { status: api.status, message: api.message } : null;
}

interface Frame {
  /** Changes whenever the region would render differently. */
  key: string;
  html: string;
  status: string;
  /** The last frame: the stream ends after it. */
  done: boolean;
}

/**
 * Pushes a live region: reads `load` every STREAM_POLL_MS and sends a `fragment` event whenever
 * its key changed, until a frame says done or the client goes away. The database is polled
 * here, once per viewer, so browsers never poll.
 */
function fragmentStream(c: Context<UiEnv>, load: () => Promise<Frame | null>): Response {
  return streamSSE(c, async (stream) => {
    const gone = new AbortController();
    stream.onAbort(() => gone.abort());
    let last = "";
    let lastSent = Date.now();
    try {
      while (!gone.signal.aborted) {
        const frame = await load();
        if (!frame) {
          await stream.writeSSE({ event: "end", data: JSON.stringify({ status: null }) });
          return;
        }
        if (frame.key !== last) {
          await stream.writeSSE({ event: "fragment", data: JSON.stringify({ html: frame.html, status: frame.status, done: frame.done }) });
          last = frame.key;
          lastSent = Date.now();
        }
        if (frame.done) return;
        if (Date.now() - lastSent >= KEEPALIVE_MS) {
          await stream.write(": keep-alive\n\n");
          lastSent = Date.now();
        }
        await sleepUntilAborted(STREAM_POLL_MS, gone.signal);
      }
    } catch {
      if (!stream.aborted) await stream.writeSSE({ event: "end", data: JSON.stringify({ status: null, message: "the stream failed; reload to resume" }) });
    }
  });
}

/** What makes a run's region differ: the run's and each block run's status and last change. */
function runKey(run: PipelineRun, blockRuns: BlockRun[], now: number): string {
  const live = !isTerminal("pipeline_run", run.status);
  return [run.status, run.updatedAt, ...blockRuns.map((b) => `${b.id}:${b.status}:${b.updatedAt}`), live ? Math.floor(now / STREAM_TICK_MS) : ""].join("|");
}

/** The API-trigger URL as the browser addressed this server (a trusted proxy's forwarded host and scheme win). */
function apiTriggerUrl(c: Context<UiEnv>, scheduleId: number, token: string): string {
  const proto = requestProto(c);
  const host = requestHost(c);
  return `${proto}://${host}/api/pipeline_schedules/${scheduleId}/pipeline_runs/${encodeURIComponent(token)}`;
}

/** An instant typed in a form: a date (UTC midnight), a date-time read as UTC, or one with Z or an offset. */
export function parseFormInstant(raw: string, field: string): number {
  const value = raw.trim();
  let ms = Number.NaN;
  let datePart = value.slice(0, 10);
  if (/^\d{4}-\d\d-\d\d$/.test(value)) ms = Date.parse(`${value}T00:00:00Z`);
  else if (/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?$/.test(value)) ms = Date.parse(`${value.replace(" ", "T")}Z`);
  else if (/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/i.test(value)) {
    ms = Date.parse(value.replace(" ", "T"));
    datePart = "";
  }
  // Date.parse rolls 2026-02-30 over to March 2nd: a day the month lacks is a typo
  if (Number.isFinite(ms) && datePart !== "" && new Date(ms).toISOString().slice(0, 10) !== datePart) ms = Number.NaN;
  if (!Number.isFinite(ms)) throw new KilnError("invalid_input", `${field}: expected a date (2026-01-31), a date-time in UTC (2026-01-31T06:00) or one with an offset (2026-01-31T06:00+02:00), got ${JSON.stringify(value.slice(0, 64))}`);
  return ms;
}

const FORM_FIELDS = ["pipeline_uuid", "name", "start_datetime", "end_datetime", "interval_type", "interval_units", "max_concurrent_runs", "block_uuid"] as const;

/** The backfill form's fields from a query or a form body (missing ones empty, each at most 255 characters). */
function backfillForm(source: Record<string, unknown>): BackfillForm {
  const out = {} as BackfillForm;
  for (const field of FORM_FIELDS) {
    const value = source[field];
    out[field] = typeof value === "string" ? value.slice(0, 255) : "";
  }
  return out;
}

/** A positive whole number typed in a form, or null when left empty (if allowed). */
function positiveInt(raw: string, field: string, optional: boolean): number | null {
  const value = raw.trim();
  if (value === "" && optional) return null;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new KilnError("invalid_input", `${field}: expected a positive whole number, got ${JSON.stringify(value.slice(0, 20))}`);
  return Number(value);
}

interface CheckedBackfill {
  pipelineUuid: string;
  name: string;
  startDatetime: number;
  endDatetime: number;
  intervalType: IntervalType;
  intervalUnits: number;
  maxConcurrentRuns: number | null;
  blockUuid: string | null;
  count: number;
}

/** Checks a backfill form against the project; the same checks preview and create, so a previewed backfill can be created. */
function checkBackfill(deps: ServerDeps, f: BackfillForm): CheckedBackfill {
  const pipeline = deps.project().pipelines.get(f.pipeline_uuid);
  if (!pipeline) throw new KilnError("invalid_input", `pipeline_uuid: the project has no pipeline ${JSON.stringify(f.pipeline_uuid)}`);
  const name = f.name.trim();
  if (name === "") throw new KilnError("invalid_input", "name: give the backfill a name");
  const blockUuid = f.block_uuid.trim() === "" ? null : f.block_uuid.trim();
  if (blockUuid !== null && !pipeline.blocksByUuid.has(blockUuid)) throw new KilnError("invalid_input", `block_uuid: pipeline ${pipeline.uuid} has no block ${JSON.stringify(blockUuid)}`);
  const intervalType = (INTERVAL_TYPES as readonly string[]).includes(f.interval_type) ? (f.interval_type as IntervalType) : null;
  if (intervalType === null) throw new KilnError("invalid_input", `interval_type: expected one of ${INTERVAL_TYPES.join(", ")}`);
  const intervalUnits = positiveInt(f.interval_units || "1", "interval_units", false) as number;
  const maxConcurrentRuns = positiveInt(f.max_concurrent_runs, "max_concurrent_runs", true);
  const startDatetime = parseFormInstant(f.start_datetime, "start_datetime");
  const endDatetime = parseFormInstant(f.end_datetime, "end_datetime");
  if (endDatetime < startDatetime) throw new KilnError("invalid_input", "end_datetime: is before start_datetime");
  const count = countBackfillExecutionDates({ startDatetime, endDatetime, intervalType, intervalUnits });
  if (count > MAX_BACKFILL_DATES) throw new KilnError("invalid_input", `end_datetime: the backfill would have ${count} execution dates, more than the limit of ${MAX_BACKFILL_DATES}; narrow the range or raise the interval`);
  return { pipelineUuid: pipeline.uuid, name, startDatetime, endDatetime, intervalType, intervalUnits, maxConcurrentRuns, blockUuid, count };
}

/** Builds the UI's Hono app; createApp mounts it at /ui. */
export function uiApp(deps: ServerDeps, verifySession: SessionVerifier, log: (message: string) => void): Hono<UiEnv> {
  const ui = new Hono<UiEnv>();
  const pipelineNames = () => [...deps.project().pipelines.keys()].sort();

  ui.onError(async (error, c) => {
    const known = uiErrorOf(error);
    // a 500 is a kiln bug: logged without the request (a form may hold a password), shown plainly
    if (!known) log(`internal error on ${routeLabel(c)} (web UI): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    const status = known?.status ?? 500;
    return page(c, deps, "Error", "overview", <ErrorPage status={status} message={known?.message ?? "kiln hit an internal error; it was logged on the server."} />, status === 413 ? 400 : status);
  });

  ui.use("*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
    if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
  });

  // the assets are public (the login page needs them) and change only with ASSET_VERSION
  ui.get("/static/app.css", (c) => c.body(APP_CSS, 200, { "content-type": "text/css; charset=utf-8", "cache-control": "public, max-age=86400" }));
  ui.get("/static/app.js", (c) => c.body(APP_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=86400" }));

  ui.get("/login", async (c) => {
    if (!deps.authEnabled) return c.redirect("/ui", 303);
    const token = sessionCookie(c);
    const next = safeNext(c.req.query("next"));
    if (token !== undefined && (await verifySession(token))) return c.redirect(next, 303);
    return page(c, deps, "Sign in", "login", <LoginPage next={next} />);
  });

  ui.post("/login", async (c) => {
    if (!sameOrigin(c)) throw new KilnError("forbidden", "This form was sent from another site; it was refused.");
    const body = await c.req.parseBody();
    const username = typeof body.username === "string" ? body.username.slice(0, 1024) : "";
    const password = typeof body.password === "string" ? body.password.slice(0, 1024) : "";
    const next = safeNext(typeof body.next === "string" ? body.next : undefined);
    if (username === "" || password === "") return page(c, deps, "Sign in", "login", <LoginPage next={next} username={username} error="Enter your username and password." />, 400);
    try {
      const session = await signIn(deps, username, password, clientAddress(c));
      setSessionCookie(c, session.token, session.expiresAt, deps.clock.now());
      return c.redirect(next, 303);
    } catch (error) {
      if (error instanceof TooManySignInsError) {
        c.header("retry-after", String(Math.ceil(error.retryAfterMs / 1000)));
        return page(c, deps, "Sign in", "login", <LoginPage next={next} username={username} error={`Too many sign-in attempts from here: try again in ${Math.ceil(error.retryAfterMs / 1000)} s.`} />, 429);
      }
      if (error instanceof ApiError && error.status === 401) return page(c, deps, "Sign in", "login", <LoginPage next={next} username={username} error="Invalid username or password." />, 401);
      throw error;
    }
  });

  ui.use("*", uiAuth(deps, verifySession));

  ui.post("/logout", async (c) => {
    const token = sessionCookie(c);
    if (token !== undefined) await signOut(deps, token);
    clearSessionCookie(c);
    return c.redirect("/ui/login", 303);
  });

  ui.get("/", async (c) => {
    const now = deps.clock.now();
    const overview = await runOverview(deps.store.client, { now });
    return page(c, deps, "Overview", "overview", <OverviewPage overview={overview} now={now} />);
  });

  ui.get("/pipelines", (c) => {
    const pipelines = [...deps.project().pipelines.values()].sort((a, b) => a.uuid.localeCompare(b.uuid));
    return page(c, deps, "Pipelines", "pipelines", <PipelinesPage pipelines={pipelines} />);
  });

  ui.get("/pipelines/:uuid", async (c) => {
    const uuid = c.req.param("uuid");
    const pipeline = UUID.test(uuid) ? deps.project().pipelines.get(uuid) : undefined;
    if (!pipeline) throw new KilnError("not_found", `The project has no pipeline ${JSON.stringify(uuid.slice(0, 200))}.`);
    const now = deps.clock.now();
    const [schedules, runs] = await Promise.all([deps.store.listPipelineSchedules({ pipelineUuid: uuid }, { limit: 200 }), deps.store.listPipelineRuns({ pipelineUuid: uuid }, { limit: 20 })]);
    const nextRunAt = new Map(schedules.items.map((s) => [s.id, s.status === "active" ? nextPipelineRunDate(s, now) : null]));
    return page(c, deps, pipeline.name, "pipelines", <PipelinePage pipeline={pipeline} schedules={schedules.items} nextRunAt={nextRunAt} runs={runs.items} now={now} canEdit={canAct(c)} />);
  });

  ui.get("/triggers/:id", async (c) => {
    const id = idOf(c, "trigger");
    const schedule = await deps.store.getPipelineSchedule(id);
    if (!schedule) throw new KilnError("not_found", `There is no trigger ${id}.`);
    const now = deps.clock.now();
    let nextDates: number[] | null = null;
    let nextDatesError: string | null = null;
    if (schedule.scheduleType === "time") {
      try {
        const settings = schedulingSettings(schedule.settings as JsonObject);
        const spec = scheduleSpec({ interval: schedule.scheduleInterval ?? "", timezone: schedule.timezone, startTime: schedule.startTime, dstGap: settings.dstGap, dstOverlap: settings.dstOverlap });
        // a year ahead covers every expression kiln accepts but @yearly-like ones with a far start time
        nextDates = occurrences(spec, now, now + 366 * 86_400_000, NEXT_DATES);
      } catch (error) {
        nextDatesError = error instanceof Error ? `This trigger's schedule is not valid: ${error.message}` : "This trigger's schedule is not valid.";
      }
    }
    const runs = await deps.store.listPipelineRuns({ pipelineScheduleId: id }, { limit: 20 });
    const canEdit = canAct(c);
    // the token is decrypted for editors only, who are shown the trigger's URL
    const token = schedule.scheduleType === "api" && schedule.hasToken && canEdit ? await deps.store.revealTriggerToken(id) : null;
    const apiUrl = token !== null ? apiTriggerUrl(c, id, token) : null;
    return page(
      c,
      deps,
      `Trigger ${schedule.name}`,
      "pipelines",
      <TriggerPage schedule={schedule} nextDates={nextDates} nextDatesError={nextDatesError} runs={runs.items} apiUrl={apiUrl} now={now} canEdit={canEdit} csrf={c.get("ui").csrf} {...message(c)} />,
    );
  });

  ui.post("/triggers/:id/run", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "trigger");
    if (!(await deps.store.getPipelineSchedule(id))) throw new KilnError("not_found", `There is no trigger ${id}.`);
    const run = await createRunForSchedule(deps.store, id, {});
    deps.onRunsCreated?.();
    return back(c, `/ui/runs/${run.id}`);
  });

  ui.post("/triggers/:id/status", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "trigger");
    const body = await c.req.parseBody();
    const status = body.status;
    if (status !== "active" && status !== "inactive") throw new KilnError("malformed", 'status: expected "active" or "inactive"');
    if (!(await deps.store.getPipelineSchedule(id))) throw new KilnError("not_found", `There is no trigger ${id}.`);
    await updateSchedule(deps.store, id, { status });
    return back(c, `/ui/triggers/${id}`, status === "active" ? "activated" : "deactivated");
  });

  ui.post("/triggers/:id/rotate_token", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "trigger");
    const schedule = await deps.store.getPipelineSchedule(id);
    if (!schedule) throw new KilnError("not_found", `There is no trigger ${id}.`);
    if (schedule.scheduleType === "time") throw new KilnError("conflict", "A time trigger has no token to rotate.");
    await updateSchedule(deps.store, id, { rotateToken: true });
    return back(c, `/ui/triggers/${id}`, "rotated");
  });

  ui.get("/runs", async (c) => {
    const pipelineUuid = c.req.query("pipeline_uuid") || undefined;
    const status = c.req.query("status") || undefined;
    const after = c.req.query("after") || undefined;
    if (pipelineUuid !== undefined && !UUID.test(pipelineUuid)) throw new KilnError("malformed", "pipeline_uuid: expected a pipeline uuid");
    if (status !== undefined && !(PIPELINE_RUN_STATUSES as readonly string[]).includes(status)) throw new KilnError("malformed", `status: expected one of ${PIPELINE_RUN_STATUSES.join(", ")}`);
    if (after !== undefined && !ID.test(after)) throw new KilnError("malformed", "after: expected the cursor of the Older link");
    const runs = await deps.store.listPipelineRuns(
      { ...(pipelineUuid !== undefined ? { pipelineUuid } : {}), ...(status !== undefined ? { status: status as PipelineRunStatus } : {}) },
      { limit: PAGE_SIZE, after: after ?? null },
    );
    return page(
      c,
      deps,
      "Runs",
      "runs",
      <RunsPage runs={runs.items} next={runs.next} after={after} pipelineUuid={pipelineUuid} status={status} pipelines={pipelineNames()} statuses={PIPELINE_RUN_STATUSES} now={deps.clock.now()} />,
    );
  });

  // the statuses of a list's live runs, pushed as they change; ends once all of them ended
  ui.get("/runs/live", (c) => {
    const raw = c.req.query("ids") ?? "";
    if (!/^[1-9][0-9]{0,15}(,[1-9][0-9]{0,15}){0,199}$/.test(raw)) throw new KilnError("malformed", "ids: expected up to 200 run ids, comma-separated");
    const ids = raw.split(",").map(Number);
    return streamSSE(c, async (stream) => {
      const gone = new AbortController();
      stream.onAbort(() => gone.abort());
      const seen = new Map<number, string>();
      try {
        while (!gone.signal.aborted) {
          const statuses = await pipelineRunStatuses(deps.store.client, ids);
          let live = 0;
          for (const [id, { status }] of statuses) {
            if (!isTerminal("pipeline_run", status)) live++;
            if (seen.get(id) === status) continue;
            if (seen.has(id)) await stream.writeSSE({ event: "status", data: JSON.stringify({ id, status, html: await fragment(<Status status={status} />) }) });
            seen.set(id, status);
          }
          if (live === 0) {
            await stream.writeSSE({ event: "end", data: "{}" });
            return;
          }
          await sleepUntilAborted(1_000, gone.signal);
        }
      } catch {
        if (!stream.aborted) await stream.writeSSE({ event: "end", data: JSON.stringify({ message: "the stream failed; reload to resume" }) });
      }
    });
  });

  async function runLiveProps(c: Context<UiEnv>, run: PipelineRun) {
    return { run, blockRuns: await deps.store.getBlockRuns(run.id), pipeline: deps.project().pipelines.get(run.pipelineUuid), now: deps.clock.now(), canEdit: canAct(c), csrf: c.get("ui").csrf };
  }

  ui.get("/runs/:id", async (c) => {
    const id = idOf(c, "run");
    const run = await deps.store.getPipelineRun(id);
    if (!run) throw new KilnError("not_found", `There is no pipeline run ${id}.`);
    const schedule = run.pipelineScheduleId !== null ? await deps.store.getPipelineSchedule(run.pipelineScheduleId) : null;
    return page(c, deps, `Run #${id}`, "runs", <RunPage {...await runLiveProps(c, run)} schedule={schedule} {...message(c)} />);
  });

  ui.get("/runs/:id/events", async (c) => {
    const id = idOf(c, "run");
    if (!(await deps.store.getPipelineRun(id))) throw new KilnError("not_found", `There is no pipeline run ${id}.`);
    return fragmentStream(c, async () => {
      const run = await deps.store.getPipelineRun(id);
      if (!run) return null;
      const props = await runLiveProps(c, run);
      const done = isTerminal("pipeline_run", run.status);
      return { key: runKey(run, props.blockRuns, props.now), html: await fragment(<RunLive {...props} />), status: run.status, done };
    });
  });

  ui.post("/runs/:id/cancel", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "run");
    const who = c.get("ui").principal.name;
    await cancelPipelineRun(deps.store, id, { ...(deps.engine ? { engine: deps.engine } : {}), reason: `cancelled in the web UI by ${who}` });
    return back(c, `/ui/runs/${id}`, "cancelled");
  });

  ui.post("/runs/:id/retry", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "run");
    const body = await c.req.parseBody();
    const from = typeof body.from_block_uuid === "string" && body.from_block_uuid !== "" ? body.from_block_uuid : null;
    if (from !== null && !UUID.test(from)) throw new KilnError("malformed", "from_block_uuid: expected a block uuid");
    await retryPipelineRun(deps.store, deps.project(), id, { fromBlockUuid: from });
    deps.onRunsCreated?.({ resumed: true });
    return back(c, `/ui/runs/${id}`, "retried");
  });

  ui.get("/backfills", async (c) => {
    const after = c.req.query("after") || undefined;
    if (after !== undefined && !ID.test(after)) throw new KilnError("malformed", "after: expected the cursor of the Older link");
    const list = await listBackfills(deps.store, {}, { limit: PAGE_SIZE, after: after ?? null });
    const form = backfillForm({ interval_type: "day", interval_units: "1", pipeline_uuid: pipelineNames()[0] ?? "" });
    return page(c, deps, "Backfills", "backfills", <BackfillsPage backfills={list.items} next={list.next} after={after} pipelines={pipelineNames()} canEdit={canAct(c)} form={form} />);
  });

  ui.get("/backfills/preview", (c) => {
    needRole(c, "editor");
    const form = backfillForm(c.req.query());
    const render = (status: 200 | 422, body: { error: string | null; count: number; dates: number[]; capped: boolean }) =>
      page(c, deps, "New backfill", "backfills", <BackfillPreviewPage form={form} pipelines={pipelineNames()} csrf={c.get("ui").csrf} {...body} />, status);
    // the pipeline page links here with the pipeline alone: show the form, not errors for fields not yet typed
    if (form.start_datetime === "" && form.end_datetime === "" && form.name === "") return render(200, { error: "Fill in the backfill, then preview its runs.", count: 0, dates: [], capped: false });
    let checked: CheckedBackfill;
    try {
      checked = checkBackfill(deps, form);
    } catch (error) {
      if (isKilnError(error, "invalid_input")) return render(422, { error: error.message, count: 0, dates: [], capped: false });
      throw error;
    }
    const dates = backfillExecutionDates(checked).slice(0, PREVIEW_DATES);
    return render(200, { error: null, count: checked.count, dates, capped: checked.count > dates.length });
  });

  ui.post("/backfills", async (c) => {
    needRole(c, "editor");
    const checked = checkBackfill(deps, backfillForm(await c.req.parseBody()));
    const backfill = await createBackfill(deps.store, deps.project(), checked);
    await startBackfill(deps.store, backfill.id);
    deps.onRunsCreated?.();
    return back(c, `/ui/backfills/${backfill.id}`, "started");
  });

  async function backfillLiveProps(c: Context<UiEnv>, id: number) {
    const report = await backfillStatus(deps.store, id);
    const runs = await deps.store.listPipelineRuns({ backfillId: id }, { limit: 20 });
    return { report, runs: runs.items, now: deps.clock.now(), canEdit: canAct(c), csrf: c.get("ui").csrf };
  }

  ui.get("/backfills/:id", async (c) => {
    const id = idOf(c, "backfill");
    const props = await backfillLiveProps(c, id);
    return page(c, deps, `Backfill ${props.report.backfill.name}`, "backfills", <BackfillPage {...props} {...message(c)} />);
  });

  ui.get("/backfills/:id/events", async (c) => {
    const id = idOf(c, "backfill");
    await backfillStatus(deps.store, id);
    return fragmentStream(c, async () => {
      const props = await backfillLiveProps(c, id).catch((error: unknown) => {
        if (isKilnError(error, "not_found")) return null;
        throw error;
      });
      if (!props) return null;
      const b = props.report.backfill;
      const counts = Object.values(props.report.counts).join(",");
      const done = b.status === "completed" || b.status === "failed" || b.status === "cancelled";
      const key = [b.status, b.updatedAt, counts, ...props.runs.map((r) => `${r.id}:${r.status}`), done ? "" : Math.floor(props.now / STREAM_TICK_MS)].join("|");
      return { key, html: await fragment(<BackfillLive {...props} />), status: b.status, done };
    });
  });

  ui.post("/backfills/:id/start", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "backfill");
    await startBackfill(deps.store, id);
    deps.onRunsCreated?.();
    return back(c, `/ui/backfills/${id}`, "started");
  });

  ui.post("/backfills/:id/cancel", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "backfill");
    await cancelBackfill(deps.store, id);
    return back(c, `/ui/backfills/${id}`, "backfill_cancelled");
  });

  ui.post("/backfills/:id/retry", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "backfill");
    await retryFailedBackfillRuns(deps.store, id);
    deps.onRunsCreated?.();
    return back(c, `/ui/backfills/${id}`, "backfill_retried");
  });

  ui.get("/secrets", async (c) => {
    needRole(c, "editor");
    const names = await deps.store.listSecretNames();
    return page(c, deps, "Secrets", "secrets", <SecretsPage names={names} />);
  });

  ui.all("*", (c) => {
    // /ui/ and /ui/runs/ mean /ui and /ui/runs (the path always starts with /ui, so this stays on site)
    if (c.req.method === "GET" && /^\/ui\/.*\/$|^\/ui\/$/.test(c.req.path)) return c.redirect(c.req.path.replace(/\/+$/, ""), 301);
    throw new KilnError("not_found", "There is no such page.");
  });
  return ui;
}
