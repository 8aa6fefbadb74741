/**
 * Pipeline runs: the list with its filters (keyset paginated, so a deep page costs what the
 * first does), one run with its block runs, and Mage's update: cancel (`status: cancelled`) or
 * retry its failed blocks (`pipeline_run_action: retry_blocks`, optionally `from_block_uuid`).
 */
import { PIPELINE_RUN_STATUSES, type PipelineRun } from "@kiln/core";
import { cancelPipelineRun, retryPipelineRun } from "@kiln/core/api";
import { INSTANT_EXPECTED, parseInstant } from "@kiln/core/bounds";
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { one, paged } from "../envelope.ts";
import { ApiError, notFound, rethrowUnder, unprocessable } from "../errors.ts";
import { pipelineRunDetailView, pipelineRunListViews } from "../run-views.ts";
import { idParam, PageQuery, parseWith, QueryId, readBody, readQuery, pageOf, RepeatedQuery, repeatedQuery } from "../validate.ts";

/** An instant in a query string: epoch milliseconds, or ISO 8601 (a date-time without an offset is UTC), within kiln's bounds. */
const QueryInstant = v.pipe(
  v.string(),
  v.maxLength(64, INSTANT_EXPECTED),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    const ms = parseInstant(/^-?[0-9]{1,16}$/.test(value) ? Number(value) : /^\d{4}-\d\d-\d\d/.test(value) ? value : "");
    if (ms === null) {
      addIssue({ message: INSTANT_EXPECTED });
      return NEVER;
    }
    return ms;
  }),
);

const PipelineUuid = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,200}$/, "expected a pipeline uuid"));
const BlockUuid = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,200}$/, "expected a block uuid"));

const ListQuery = v.strictObject({
  ...PageQuery,
  pipeline_uuid: v.optional(PipelineUuid),
  status: v.optional(v.picklist(PIPELINE_RUN_STATUSES, `expected one of ${PIPELINE_RUN_STATUSES.join(", ")}`)),
  "status[]": RepeatedQuery,
  pipeline_schedule_id: v.optional(QueryId),
  backfill_id: v.optional(QueryId),
  /** Inclusive. */
  execution_date_from: v.optional(QueryInstant),
  /** Inclusive. */
  execution_date_to: v.optional(QueryInstant),
});

/** Mage's update: exactly one of `status: cancelled` and `pipeline_run_action: retry_blocks`. */
const UpdateBody = v.strictObject({
  pipeline_run: v.strictObject({
    status: v.optional(v.literal("cancelled", 'expected "cancelled" (the one status a client may set)')),
    pipeline_run_action: v.optional(v.literal("retry_blocks", 'expected "retry_blocks"')),
    from_block_uuid: v.optional(v.nullable(BlockUuid)),
  }),
});

export function pipelineRunRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({
    method: "get",
    path: "/api/pipeline_runs",
    summary: "Pipeline runs, newest first, filtered by pipeline, status, trigger, backfill and execution date (inclusive range)",
    role: "viewer",
    query: ListQuery,
    responseKey: "pipeline_runs",
  });
  app.get("/api/pipeline_runs", async (c) => {
    const query = readQuery(c, ListQuery);
    if (query.execution_date_from !== undefined && query.execution_date_to !== undefined && query.execution_date_from > query.execution_date_to) {
      throw unprocessable("query.execution_date_to", "is before execution_date_from");
    }
    const statuses = repeatedQuery(c, "status[]", PIPELINE_RUN_STATUSES);
    const filter = {
      ...(query.pipeline_uuid !== undefined ? { pipelineUuid: query.pipeline_uuid } : {}),
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(statuses !== undefined ? { statuses } : {}),
      ...(query.pipeline_schedule_id !== undefined ? { pipelineScheduleId: query.pipeline_schedule_id } : {}),
      ...(query.backfill_id !== undefined ? { backfillId: query.backfill_id } : {}),
      ...(query.execution_date_from !== undefined ? { executionDateFrom: query.execution_date_from } : {}),
      ...(query.execution_date_to !== undefined ? { executionDateTo: query.execution_date_to } : {}),
    };
    const [page, total] = await Promise.all([
      deps.store.listPipelineRuns(filter, pageOf(query)),
      deps.store.totalPipelineRuns(filter),
    ]);
    return paged(c, "pipeline_runs", await pipelineRunListViews(deps, page.items, c.get("principal")), page.next, total);
  });

  // Mage's route for a pipeline's runs (its UI's runs page)
  const PipelineRunsQuery = v.strictObject({ ...PageQuery, status: ListQuery.entries.status, "status[]": RepeatedQuery });
  doc.add({ method: "get", path: "/api/pipelines/:uuid/pipeline_runs", summary: "A pipeline's runs, newest first (Mage's route)", role: "viewer", query: PipelineRunsQuery, responseKey: "pipeline_runs" });
  app.get("/api/pipelines/:uuid/pipeline_runs", async (c) => {
    const uuid = parseWith(PipelineUuid, c.req.param("uuid"), "path.uuid");
    if (!deps.project().pipelines.has(uuid)) throw notFound("pipeline", uuid);
    const query = readQuery(c, PipelineRunsQuery);
    const statuses = repeatedQuery(c, "status[]", PIPELINE_RUN_STATUSES);
    const filter = { pipelineUuid: uuid, ...(query.status !== undefined ? { status: query.status } : {}), ...(statuses !== undefined ? { statuses } : {}) };
    const [page, total] = await Promise.all([
      deps.store.listPipelineRuns(filter, pageOf(query)),
      deps.store.totalPipelineRuns(filter),
    ]);
    return paged(c, "pipeline_runs", await pipelineRunListViews(deps, page.items, c.get("principal")), page.next, total);
  });

  doc.add({ method: "get", path: "/api/pipeline_runs/:id", summary: "A pipeline run with its block runs", role: "viewer", responseKey: "pipeline_run" });
  app.get("/api/pipeline_runs/:id", async (c) => {
    const run = await pipelineRunOr404(deps, idParam(c));
    return one(c, "pipeline_run", await pipelineRunDetailView(deps, run, c.get("principal")));
  });

  doc.add({
    method: "put",
    path: "/api/pipeline_runs/:id",
    summary: 'Cancel a live run (`{"status": "cancelled"}`) or retry an ended run\'s failed blocks (`{"pipeline_run_action": "retry_blocks", "from_block_uuid"?}`)',
    role: "editor",
    body: UpdateBody,
    responseKey: "pipeline_run",
  });
  app.put("/api/pipeline_runs/:id", async (c) => {
    const id = idParam(c);
    const { pipeline_run: update } = await readBody(c, UpdateBody);
    const cancel = update.status === "cancelled";
    const retry = update.pipeline_run_action === "retry_blocks";
    if (cancel === retry) {
      const message = 'expected either "status": "cancelled" or "pipeline_run_action": "retry_blocks"';
      throw new ApiError("invalid_request", `pipeline_run: ${message}`, [{ field: "pipeline_run", message }]);
    }
    if (!retry && update.from_block_uuid !== undefined) {
      const message = "only with pipeline_run_action retry_blocks";
      throw new ApiError("invalid_request", `pipeline_run.from_block_uuid: ${message}`, [{ field: "pipeline_run.from_block_uuid", message }]);
    }
    await pipelineRunOr404(deps, id);
    let run: PipelineRun;
    if (cancel) {
      const principal = c.get("principal");
      run = await cancelPipelineRun(deps.store, id, {
        ...(deps.engine ? { engine: deps.engine } : {}),
        reason: principal ? `cancelled through the API by ${principal.name}` : "cancelled through the API",
      }).catch(rethrowUnder("pipeline_run"));
    } else {
      run = (await retryPipelineRun(deps.store, deps.project(), id, { fromBlockUuid: update.from_block_uuid ?? null }).catch(rethrowUnder("pipeline_run"))).run;
    }
    return one(c, "pipeline_run", await pipelineRunDetailView(deps, run, c.get("principal")));
  });
}

/** The pipeline run, or a 404. */
export async function pipelineRunOr404(deps: ServerDeps, id: number): Promise<PipelineRun> {
  const run = await deps.store.getPipelineRun(id);
  if (!run) throw notFound("pipeline run", id);
  return run;
}
