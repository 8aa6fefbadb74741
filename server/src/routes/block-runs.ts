/**
 * Block runs: a pipeline run's (`/api/pipeline_runs/:id/block_runs`, and Mage's
 * `/api/block_runs?pipeline_run_id=`), newest first and keyset paginated, and one by id.
 */
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { one, paged } from "../envelope.ts";
import { notFound } from "../errors.ts";
import { blockRunViews } from "../run-views.ts";
import { idParam, PageQuery, QueryId, readQuery, pageOf } from "../validate.ts";
import { pipelineRunOr404 } from "./pipeline-runs.ts";

const RunQuery = v.strictObject(PageQuery);
const ListQuery = v.strictObject({ ...PageQuery, pipeline_run_id: QueryId });

export function blockRunRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  async function page(pipelineRunId: number, query: v.InferOutput<typeof RunQuery>) {
    await pipelineRunOr404(deps, pipelineRunId);
    const [found, total] = await Promise.all([deps.store.listBlockRuns(pipelineRunId, pageOf(query)), deps.store.countBlockRuns(pipelineRunId)]);
    return { ...found, total };
  }

  doc.add({ method: "get", path: "/api/pipeline_runs/:id/block_runs", summary: "A pipeline run's block runs", role: "viewer", query: RunQuery, responseKey: "block_runs" });
  app.get("/api/pipeline_runs/:id/block_runs", async (c) => {
    const id = idParam(c);
    const found = await page(id, readQuery(c, RunQuery));
    return paged(c, "block_runs", await blockRunViews(deps, found.items), found.next, found.total);
  });

  doc.add({ method: "get", path: "/api/block_runs", summary: "A pipeline run's block runs (Mage's form)", role: "viewer", query: ListQuery, responseKey: "block_runs" });
  app.get("/api/block_runs", async (c) => {
    const { pipeline_run_id, ...query } = readQuery(c, ListQuery);
    const found = await page(pipeline_run_id, query);
    return paged(c, "block_runs", await blockRunViews(deps, found.items), found.next, found.total);
  });

  doc.add({ method: "get", path: "/api/block_runs/:id", summary: "A block run", role: "viewer", responseKey: "block_run" });
  app.get("/api/block_runs/:id", async (c) => {
    const id = idParam(c);
    const blockRun = await deps.store.getBlockRun(id);
    if (!blockRun) throw notFound("block run", id);
    return one(c, "block_run", (await blockRunViews(deps, [blockRun]))[0]);
  });
}
