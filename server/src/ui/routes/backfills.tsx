/** @jsxImportSource hono/jsx */
/**
 * The backfills section: the list with the new-backfill form, its preview, one backfill with
 * its live region, and start, cancel and retry. The form's text is decoded here (dates typed in
 * a form, whole numbers, the interval's choice); what a backfill may be is checked by core's
 * checkBackfillInput, the check the API and the CLI go through, so a previewed backfill can be created.
 */
import { INTERVAL_TYPES, isKilnError, KilnError, type IntervalType } from "@kiln/core";
import { backfillExecutionDates, backfillStatus, cancelBackfill, checkBackfillInput, createBackfill, listBackfills, retryFailedBackfillRuns, startBackfill, type BackfillInput, type CheckedBackfillInput } from "@kiln/core/backfill";
import type { Context } from "hono";
import { BackfillLive, BackfillPage, BackfillPreviewPage, BackfillsPage, type BackfillForm } from "../pages/backfills.tsx";
import { back, fragment, fragmentStream, ID, idOf, message, page, PAGE_SIZE, pipelineNames, STREAM_TICK_MS, type UiRoutes } from "../render.tsx";
import { canAct, needRole, type UiEnv } from "../session.ts";

/** How many of a backfill preview's dates are listed (all are counted). */
const PREVIEW_DATES = 100;

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
  if (!Number.isFinite(ms)) {
    throw new KilnError("invalid_input", `${field}: expected a date (2026-01-31), a date-time in UTC (2026-01-31T06:00) or one with an offset (2026-01-31T06:00+02:00), got ${JSON.stringify(value.slice(0, 64))}`, field);
  }
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
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new KilnError("invalid_input", `${field}: expected a positive whole number, got ${JSON.stringify(value.slice(0, 20))}`, field);
  return Number(value);
}

/** The form's text as a backfill request (core checks the request itself). */
function decodeForm(f: BackfillForm): BackfillInput {
  const name = f.name.trim();
  if (name === "") throw new KilnError("invalid_input", "name: give the backfill a name", "name");
  if (!(INTERVAL_TYPES as readonly string[]).includes(f.interval_type)) throw new KilnError("invalid_input", `interval_type: expected one of ${INTERVAL_TYPES.join(", ")}`, "interval_type");
  return {
    name,
    pipelineUuid: f.pipeline_uuid,
    blockUuid: f.block_uuid.trim() === "" ? null : f.block_uuid.trim(),
    intervalType: f.interval_type as IntervalType,
    intervalUnits: positiveInt(f.interval_units || "1", "interval_units", false) as number,
    maxConcurrentRuns: positiveInt(f.max_concurrent_runs, "max_concurrent_runs", true),
    startDatetime: parseFormInstant(f.start_datetime, "start_datetime"),
    endDatetime: parseFormInstant(f.end_datetime, "end_datetime"),
  };
}

/** A refusal of the form worded as the form shows its errors, `field: problem`; anything else as it was. */
function asFormError(error: unknown): unknown {
  return isKilnError(error, "invalid_input") && error.field !== null ? new KilnError(error.code, `${error.field}: ${error.detail}`, error.field) : error;
}

export const backfillRoutes: UiRoutes = (ui, deps) => {
  ui.get("/backfills", async (c) => {
    const after = c.req.query("after") || undefined;
    if (after !== undefined && !ID.test(after)) throw new KilnError("malformed", "after: expected the cursor of the Older link");
    const list = await listBackfills(deps.store, {}, { limit: PAGE_SIZE, after: after ?? null });
    const names = pipelineNames(deps);
    const form = backfillForm({ interval_type: "day", interval_units: "1", pipeline_uuid: names[0] ?? "" });
    return page(c, deps, "Backfills", "backfills", <BackfillsPage backfills={list.items} next={list.next} after={after} pipelines={names} canEdit={canAct(c)} form={form} />);
  });

  ui.get("/backfills/preview", (c) => {
    needRole(c, "editor");
    const form = backfillForm(c.req.query());
    const render = (status: 200 | 422, body: { error: string | null; count: number; dates: number[]; capped: boolean }) =>
      page(c, deps, "New backfill", "backfills", <BackfillPreviewPage form={form} pipelines={pipelineNames(deps)} csrf={c.get("ui").csrf} {...body} />, status);
    // the pipeline page links here with the pipeline alone: show the form, not errors for fields not yet typed
    if (form.start_datetime === "" && form.end_datetime === "" && form.name === "") return render(200, { error: "Fill in the backfill, then preview its runs.", count: 0, dates: [], capped: false });
    let input: CheckedBackfillInput;
    try {
      input = checkBackfillInput(deps.project(), decodeForm(form));
    } catch (error) {
      const refusal = asFormError(error);
      if (isKilnError(refusal, "invalid_input")) return render(422, { error: refusal.message, count: 0, dates: [], capped: false });
      throw refusal;
    }
    const dates = backfillExecutionDates(input).slice(0, PREVIEW_DATES);
    return render(200, { error: null, count: input.count, dates, capped: input.count > dates.length });
  });

  ui.post("/backfills", async (c) => {
    needRole(c, "editor");
    const form = backfillForm(await c.req.parseBody());
    const backfill = await Promise.resolve()
      .then(() => createBackfill(deps.store, deps.project(), decodeForm(form)))
      .catch((error: unknown) => {
        throw asFormError(error);
      });
    await startBackfill(deps.store, backfill.id);
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
    return back(c, `/ui/backfills/${id}`, "backfill_retried");
  });
};
