/**
 * Backfills: list, create (also at Mage's `/api/pipelines/:uuid/backfills`), get with the run
 * counts per status, update while initial, delete when not running, and the actions start,
 * cancel and retry (the failed runs), all through core's backfill service.
 */
import { BACKFILL_STATUSES, PIPELINE_RUN_STATUSES, INTERVAL_TYPES } from "@kiln/core";
import { backfillStatus, cancelBackfill, countBackfills, createBackfill, deleteBackfill, listBackfills, retryFailedBackfillRuns, startBackfill, updateBackfill } from "@kiln/core/backfill";
import { boundedInteger, NameSchema } from "@kiln/core/bound-schemas";
import { INSTANT_EXPECTED, MAX_INSTANT, MAX_SETTING_NUMBER, MIN_INSTANT } from "@kiln/core/bounds";
import type { Context, Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { one, paged } from "../envelope.ts";
import { notFound, rethrowUnder, unprocessable } from "../errors.ts";
import { backfillJson } from "../serialize.ts";
import { idParam, JsonObjectSchema, PageQuery, parseWith, readBody, readQuery, pageOf } from "../validate.ts";

/** The service's refusals as the API answers them, fields named under `backfill.`. */
const backfillError = rethrowUnder("backfill");

const PipelineUuid = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,200}$/, "expected a pipeline uuid"));

/** Epoch ms, an ISO 8601 date, or a date-time with an offset; Mage's `YYYY-MM-DD HH:MM:SS` is UTC. */
const Time = v.pipe(
  v.union(
    [v.pipe(v.number(), v.integer("expected whole epoch milliseconds"), v.minValue(MIN_INSTANT, INSTANT_EXPECTED), v.maxValue(MAX_INSTANT, INSTANT_EXPECTED)), v.pipe(v.string(), v.maxLength(64, "expected an ISO 8601 date-time"))],
    "expected an ISO 8601 date, a date-time with an offset, or epoch milliseconds",
  ),
  // the backfill service refuses a date-time without an offset (ambiguous); Mage sends this form in UTC
  v.transform((value) => (typeof value === "string" && /^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?$/.test(value) ? `${value.replace(" ", "T")}Z` : value)),
);

const Fields = {
  name: NameSchema,
  pipeline_uuid: PipelineUuid,
  start_datetime: Time,
  end_datetime: Time,
  interval_type: v.picklist(INTERVAL_TYPES, `expected one of ${INTERVAL_TYPES.join(", ")}`),
  interval_units: boundedInteger(1, MAX_SETTING_NUMBER, `expected a whole number from 1 to ${MAX_SETTING_NUMBER}`),
  variables: JsonObjectSchema,
  block_uuid: v.nullish(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,200}$/, "expected a block uuid"))),
  max_concurrent_runs: v.nullish(boundedInteger(1, MAX_SETTING_NUMBER, `expected a whole number from 1 to ${MAX_SETTING_NUMBER}, or null`)),
  pipeline_schedule_id: v.nullish(boundedInteger(1, Number.MAX_SAFE_INTEGER, "expected an integer id")),
};

const CreateBody = v.strictObject({
  backfill: v.strictObject({
    ...Fields,
    interval_units: v.optional(Fields.interval_units),
    variables: v.optional(Fields.variables),
  }),
});

/** Under a pipeline (Mage's path) the pipeline comes from the path. */
const CreateUnderPipelineBody = v.strictObject({
  backfill: v.strictObject({
    ...Fields,
    pipeline_uuid: v.optional(Fields.pipeline_uuid),
    interval_units: v.optional(Fields.interval_units),
    variables: v.optional(Fields.variables),
  }),
});

/** Mage starts a backfill with `status: "initial"` and cancels one with `status: "cancelled"` through its PUT. */
const STATUS_ACTIONS = ["initial", "cancelled"] as const;

const UpdateBody = v.strictObject({
  backfill: v.strictObject({
    name: v.optional(Fields.name),
    variables: v.optional(Fields.variables),
    max_concurrent_runs: v.optional(Fields.max_concurrent_runs),
    status: v.optional(v.picklist(STATUS_ACTIONS, 'expected "initial" (start the backfill) or "cancelled" (cancel it), as in Mage')),
  }),
});

/** The actions take no parameters; a body, if any, must be empty. */
const ActionBody = v.strictObject({});

const ListQuery = v.strictObject({
  ...PageQuery,
  pipeline_uuid: v.optional(PipelineUuid),
  status: v.optional(v.picklist(BACKFILL_STATUSES, `expected one of ${BACKFILL_STATUSES.join(", ")}`)),
});

/** Under a pipeline (Mage's path) the pipeline comes from the path. */
const PipelineListQuery = v.strictObject({
  ...PageQuery,
  status: v.optional(v.picklist(BACKFILL_STATUSES, `expected one of ${BACKFILL_STATUSES.join(", ")}`)),
});

/** The backfill with its runs per status (each date counted once, by its latest run) and its number of dates. */
async function backfillView(deps: ServerDeps, id: number): Promise<Record<string, unknown>> {
  const report = await backfillStatus(deps.store, id).catch(backfillError);
  return { ...backfillJson(report.backfill), run_status_counts: report.counts, total_run_count: report.totalDates };
}

export function backfillRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  async function create(c: Context, b: v.InferOutput<typeof CreateUnderPipelineBody>["backfill"], pipelineUuid: string): Promise<Response> {
    const created = await createBackfill(deps.store, deps.project(), {
      name: b.name,
      pipelineUuid,
      startDatetime: b.start_datetime,
      endDatetime: b.end_datetime,
      intervalType: b.interval_type,
      ...(b.interval_units !== undefined ? { intervalUnits: b.interval_units } : {}),
      ...(b.variables !== undefined ? { variables: b.variables } : {}),
      blockUuid: b.block_uuid ?? null,
      maxConcurrentRuns: b.max_concurrent_runs ?? null,
      pipelineScheduleId: b.pipeline_schedule_id ?? null,
    }).catch(backfillError);
    return one(c, "backfill", await backfillView(deps, created.id), 201);
  }

  doc.add({ method: "get", path: "/api/backfills", summary: "Backfills, newest first, by pipeline and status", role: "viewer", query: ListQuery, responseKey: "backfills" });
  app.get("/api/backfills", async (c) => {
    const query = readQuery(c, ListQuery);
    const filter = { ...(query.pipeline_uuid !== undefined ? { pipelineUuid: query.pipeline_uuid } : {}), ...(query.status !== undefined ? { status: query.status } : {}) };
    const [page, total] = await Promise.all([listBackfills(deps.store, filter, pageOf(query)), countBackfills(deps.store, filter)]);
    return paged(c, "backfills", page.items.map(backfillJson), page.next, total);
  });

  doc.add({ method: "get", path: "/api/pipelines/:uuid/backfills", summary: "A pipeline's backfills, newest first (Mage's path)", role: "viewer", query: PipelineListQuery, responseKey: "backfills" });
  app.get("/api/pipelines/:uuid/backfills", async (c) => {
    const pipelineUuid = parseWith(PipelineUuid, c.req.param("uuid"), "path.uuid");
    const query = readQuery(c, PipelineListQuery);
    if (!deps.project().pipelines.has(pipelineUuid)) throw notFound("pipeline", pipelineUuid);
    const filter = { pipelineUuid, ...(query.status !== undefined ? { status: query.status } : {}) };
    const [page, total] = await Promise.all([listBackfills(deps.store, filter, pageOf(query)), countBackfills(deps.store, filter)]);
    return paged(c, "backfills", page.items.map(backfillJson), page.next, total);
  });

  doc.add({ method: "post", path: "/api/backfills", summary: "Create a backfill (initial: start it to create its runs)", role: "editor", body: CreateBody, responseKey: "backfill" });
  app.post("/api/backfills", async (c) => {
    const { backfill: b } = await readBody(c, CreateBody);
    return create(c, b, b.pipeline_uuid);
  });

  doc.add({ method: "post", path: "/api/pipelines/:uuid/backfills", summary: "Create a backfill of the pipeline (Mage's path)", role: "editor", body: CreateUnderPipelineBody, responseKey: "backfill" });
  app.post("/api/pipelines/:uuid/backfills", async (c) => {
    const pipelineUuid = parseWith(PipelineUuid, c.req.param("uuid"), "path.uuid");
    const { backfill: b } = await readBody(c, CreateUnderPipelineBody);
    if (!deps.project().pipelines.has(pipelineUuid)) throw notFound("pipeline", pipelineUuid);
    if (b.pipeline_uuid !== undefined && b.pipeline_uuid !== pipelineUuid) {
      throw unprocessable("backfill.pipeline_uuid", `differs from the pipeline in the path (${pipelineUuid})`);
    }
    return create(c, b, pipelineUuid);
  });

  doc.add({ method: "get", path: "/api/backfills/:id", summary: "A backfill with its run counts per status (run_status_counts) and its number of dates (total_run_count)", role: "viewer", responseKey: "backfill" });
  app.get("/api/backfills/:id", async (c) => {
    return one(c, "backfill", await backfillView(deps, idParam(c)));
  });

  doc.add({
    method: "put",
    path: "/api/backfills/:id",
    summary: "Change a backfill's name, variables or max_concurrent_runs (only while initial); status \"initial\" starts it and \"cancelled\" cancels it, as in Mage",
    role: "editor",
    body: UpdateBody,
    responseKey: "backfill",
  });
  app.put("/api/backfills/:id", async (c) => {
    const id = idParam(c);
    const { backfill: b } = await readBody(c, UpdateBody);
    const changes = {
      ...(b.name !== undefined ? { name: b.name } : {}),
      ...(b.variables !== undefined ? { variables: b.variables } : {}),
      ...(b.max_concurrent_runs !== undefined ? { maxConcurrentRuns: b.max_concurrent_runs } : {}),
    };
    // the fields change first (the service refuses them once the backfill has started), then the status acts
    if (Object.keys(changes).length > 0 || b.status === undefined) await updateBackfill(deps.store, id, changes).catch(backfillError);
    if (b.status === "initial") {
      await startBackfill(deps.store, id).catch(backfillError);
    } else if (b.status === "cancelled") {
      await cancelBackfill(deps.store, id).catch(backfillError);
    }
    return one(c, "backfill", await backfillView(deps, id));
  });

  doc.add({ method: "delete", path: "/api/backfills/:id", summary: "Delete a backfill that is not running (its runs stay, with no backfill)", role: "editor", responseKey: "backfill" });
  app.delete("/api/backfills/:id", async (c) => {
    const id = idParam(c);
    const view = await backfillView(deps, id);
    await deleteBackfill(deps.store, id).catch(backfillError);
    return one(c, "backfill", view);
  });

  doc.add({ method: "post", path: "/api/backfills/:id/start", summary: "Start an initial backfill: one run per execution date", role: "editor", body: ActionBody, responseKey: "backfill" });
  app.post("/api/backfills/:id/start", async (c) => {
    const id = idParam(c);
    await readBody(c, ActionBody);
    const started = await startBackfill(deps.store, id).catch(backfillError);
    // just started, every date has one initial run: answered without counting 100,000 rows on the event loop
    const counts = Object.fromEntries(PIPELINE_RUN_STATUSES.map((status) => [status, status === "initial" ? started.totalDates : 0]));
    return one(c, "backfill", { ...backfillJson(started.backfill), run_status_counts: counts, total_run_count: started.totalDates });
  });

  doc.add({ method: "post", path: "/api/backfills/:id/cancel", summary: "Cancel a backfill and its live runs", role: "editor", body: ActionBody, responseKey: "backfill" });
  app.post("/api/backfills/:id/cancel", async (c) => {
    const id = idParam(c);
    await readBody(c, ActionBody);
    // the runs are cancelled in the database; the engine executing one notices and stops its block processes
    await cancelBackfill(deps.store, id).catch(backfillError);
    return one(c, "backfill", await backfillView(deps, id));
  });

  doc.add({ method: "post", path: "/api/backfills/:id/retry", summary: "Run again the dates whose latest run failed or was cancelled", role: "editor", body: ActionBody, responseKey: "backfill" });
  app.post("/api/backfills/:id/retry", async (c) => {
    const id = idParam(c);
    await readBody(c, ActionBody);
    await retryFailedBackfillRuns(deps.store, id).catch(backfillError);
    return one(c, "backfill", await backfillView(deps, id));
  });
}
