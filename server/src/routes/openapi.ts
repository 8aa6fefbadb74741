/** `GET /api/openapi.json`: the OpenAPI document built from the routes' own schemas. */
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { readQuery } from "../validate.ts";

const Query = v.strictObject({});

export function openApiRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/openapi.json", summary: "This API's OpenAPI 3 document", role: "viewer", query: Query });
  // built at the first request, not here: route families registered after this one are in it too
  let document: Record<string, unknown> | null = null;
  app.get("/api/openapi.json", (c) => {
    readQuery(c, Query);
    document ??= doc.document(deps.version);
    return c.json(document);
  });
}
