/** Pipelines, as loaded from the project: a list, and one with its blocks and their upstreams. */
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { list, one } from "../envelope.ts";
import { notFound } from "../errors.ts";
import { pipelineJson } from "../serialize.ts";
import { parseWith, readQuery } from "../validate.ts";

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
}
