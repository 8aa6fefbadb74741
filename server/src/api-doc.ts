/**
 * The OpenAPI document, built from the same valibot schemas the routes validate with: each
 * route family describes its routes here as it registers them, so the document cannot drift
 * from what the server accepts.
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import type { GenericSchema } from "valibot";
import type { Role } from "@kiln/core/auth";

export interface RouteDoc {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** Hono-style path (`/api/pipeline_runs/:id`); written as OpenAPI's `{id}`. */
  path: string;
  summary: string;
  /** The least role that may call it; "public" for routes that take no credentials (or their own token). */
  role: Role | "public";
  body?: GenericSchema;
  query?: GenericSchema;
  /** The top-level key of the answer (`pipeline_run`, `pipeline_runs`). */
  responseKey?: string;
}

/**
 * OpenAPI 3.0 forbids an empty `required` list (3.1 allows it), which the JSON Schema writer
 * emits for objects whose keys are all optional: dropped here, everywhere in a schema.
 */
function withoutEmptyRequired(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutEmptyRequired);
  if (schema === null || typeof schema !== "object") return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "required" && Array.isArray(value) && value.length === 0) continue;
    out[key] = withoutEmptyRequired(value);
  }
  return out;
}

export class ApiDoc {
  readonly routes: RouteDoc[] = [];

  add(route: RouteDoc): void {
    this.routes.push(route);
  }

  /** The OpenAPI 3.0 document. */
  document(version: string): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    const schema = (s: GenericSchema) => withoutEmptyRequired(toJsonSchema(s, { target: "openapi-3.0", errorMode: "ignore", typeMode: "input" })) as Record<string, unknown>;
    for (const route of this.routes) {
      const path = route.path.replace(/:([A-Za-z_]+)/g, "{$1}");
      const parameters: unknown[] = [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
      if (route.query) {
        const q = schema(route.query) as { properties?: Record<string, unknown>; required?: string[] };
        for (const [name, s] of Object.entries(q.properties ?? {})) parameters.push({ name, in: "query", required: q.required?.includes(name) ?? false, schema: s });
      }
      const operation: Record<string, unknown> = {
        summary: route.summary,
        parameters,
        responses: {
          "200": { description: route.responseKey ? `{"${route.responseKey}": ...}` : "OK" },
          "4XX": { description: '{"error": {"code", "message", "details"}}' },
        },
        ...(route.role === "public" ? { security: [] } : { "x-kiln-role": route.role }),
      };
      if (route.body) operation.requestBody = { required: true, content: { "application/json": { schema: schema(route.body) } } };
      (paths[path] ??= {})[route.method] = operation;
    }
    return {
      openapi: "3.0.3",
      info: { title: "kiln", version },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
      paths,
    };
  }
}
