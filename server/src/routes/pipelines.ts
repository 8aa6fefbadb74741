/**
 * Pipelines, as loaded from the project: a list, one with its blocks and their upstreams, and
 * Mage's bulk actions through its PUT (`status`: active/inactive for every trigger, cancelled,
 * retry, retry_incomplete_block_runs), carried out by core's pipeline-actions service.
 */
import { PIPELINE_BULK_ACTIONS, runPipelineBulkAction } from "@kiln/core/api";
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import { codeTriggerAccess, type Env, type ServerDeps } from "../deps.ts";
import { list, one } from "../envelope.ts";
import { notFound, rethrowUnder, unprocessable } from "../errors.ts";
import { pipelineJson } from "../serialize.ts";
import { parseWith, readBody, readQuery } from "../validate.ts";

const RunRef = v.strictObject({ id: v.pipe(v.number("expected an integer id"), v.integer("expected an integer id"), v.minValue(1, "expected an integer id"), v.maxValue(Number.MAX_SAFE_INTEGER, "expected an integer id")) });
const BulkActionBody = v.strictObject({
  pipeline: v.strictObject({
    status: v.picklist(PIPELINE_BULK_ACTIONS, `expected one of ${PIPELINE_BULK_ACTIONS.join(", ")}`),
    pipeline_runs: v.optional(v.pipe(v.array(RunRef, "expected a list of runs as {\"id\": ...}"), v.maxLength(1000, "expected at most 1000 runs"))),
    pipeline_schedule_id: v.optional(v.pipe(v.number("expected an integer id"), v.integer("expected an integer id"), v.minValue(1, "expected an integer id"))),
  }),
});


const ListQuery = v.strictObject({});
const UuidParam = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,200}$/, "expected a pipeline uuid"));

export function pipelineRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/pipelines", summary: "Every pipeline of the project", role: "viewer", query: ListQuery, responseKey: "pipelines" });
  app.get("/api/pipelines", (c) => {
    readQuery(c, ListQuery);
    const pipelines = [...deps.project().pipelines.values()].sort((a, b) => a.uuid.localeCompare(b.uuid));
    return list(c, "pipelines", pipelines.map((p) => pipelineJson(p, false)));
  });

  doc.add({ method: "get", path: "/api/pipelines/:uuid", summary: "A pipeline with its blocks and their upstreams", role: "viewer", responseKey: "pipeline" });
  app.get("/api/pipelines/:uuid", (c) => {
    const uuid = parseWith(UuidParam, c.req.param("uuid"), "path.uuid");
    const pipeline = deps.project().pipelines.get(uuid);
    if (!pipeline) throw notFound("pipeline", uuid);
    return one(c, "pipeline", pipelineJson(pipeline, true));
  });

  doc.add({
    method: "put",
    path: "/api/pipelines/:uuid",
    summary: "Mage's bulk actions: status active or inactive sets every trigger; cancelled cancels the live runs (or pipeline_runs, or one trigger's); retry retries pipeline_runs; retry_incomplete_block_runs retries every failed run",
    role: "editor",
    body: BulkActionBody,
    responseKey: "pipeline",
  });
  app.put("/api/pipelines/:uuid", async (c) => {
    const uuid = parseWith(UuidParam, c.req.param("uuid"), "path.uuid");
    const { pipeline: body } = await readBody(c, BulkActionBody);
    const pipeline = deps.project().pipelines.get(uuid);
    if (!pipeline) throw notFound("pipeline", uuid);
    if (body.pipeline_schedule_id !== undefined && body.status !== "cancelled") {
      throw unprocessable("pipeline.pipeline_schedule_id", 'only with status "cancelled"');
    }
    if (body.pipeline_runs !== undefined && body.status !== "cancelled" && body.status !== "retry") {
      throw unprocessable("pipeline.pipeline_runs", 'only with status "cancelled" or "retry"');
    }
    const principal = c.get("principal");
    const result = await runPipelineBulkAction(deps.store, deps.project(), uuid, {
      action: body.status,
      ...(body.pipeline_runs ? { pipelineRunIds: body.pipeline_runs.map((r) => r.id) } : {}),
      ...(body.pipeline_schedule_id !== undefined ? { pipelineScheduleId: body.pipeline_schedule_id } : {}),
      ...(deps.engine ? { engine: deps.engine } : {}),
      code: codeTriggerAccess(deps),
      reason: principal ? `cancelled through the API by ${principal.name}` : "cancelled through the API",
    }).catch(rethrowUnder("pipeline"));
    return one(c, "pipeline", {
      ...pipelineJson(pipeline, true),
      bulk_action: {
        status: result.action,
        pipeline_run_ids: result.pipelineRunIds,
        pipeline_schedule_ids: result.pipelineScheduleIds,
        skipped_pipeline_run_ids: result.skippedPipelineRunIds,
      },
    });
  });
}
