/**
 * The server's routes as its OpenAPI document lists them, for tests that must cover every route
 * (the auth matrix, the fuzz test) including routes added after the tests were written.
 */
import type { ServerFixture } from "./server.ts";

export type DocRole = "public" | "viewer" | "editor" | "admin";

/** A JSON Schema as @valibot/to-json-schema writes it (the parts the tests read). */
export interface JsonSchema {
  type?: string | string[];
  nullable?: boolean;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
}

export interface Operation {
  method: string;
  /** Hono-style: `/api/pipeline_runs/:id`. */
  path: string;
  role: DocRole;
  pathParams: string[];
  query: Array<{ name: string; schema: JsonSchema }>;
  body: JsonSchema | null;
}

export const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

interface OpenApiOperation {
  security?: unknown[];
  "x-kiln-role"?: DocRole;
  parameters?: Array<{ name: string; in: string; schema: JsonSchema }>;
  requestBody?: { content?: { "application/json"?: { schema?: JsonSchema } } };
}

/** Every operation of the document, with its role ("public" for `security: []`). */
export function operationsOf(document: Record<string, unknown>): Operation[] {
  const paths = document.paths as Record<string, Record<string, OpenApiOperation>>;
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const role: DocRole = Array.isArray(op.security) && op.security.length === 0 ? "public" : (op["x-kiln-role"] ?? "viewer");
      const params = op.parameters ?? [];
      ops.push({
        method: method.toUpperCase(),
        path: path.replace(/\{([A-Za-z_]+)\}/g, ":$1"),
        role,
        pathParams: params.filter((p) => p.in === "path").map((p) => p.name),
        query: params.filter((p) => p.in === "query").map((p) => ({ name: p.name, schema: p.schema })),
        body: op.requestBody?.content?.["application/json"]?.schema ?? null,
      });
    }
  }
  return ops;
}

/** The document as the server serves it. */
export async function fetchDocument(s: ServerFixture): Promise<Record<string, unknown>> {
  const answer = await s.call("GET", "/api/openapi.json", { role: "viewer" });
  if (answer.status !== 200) throw new Error(`GET /api/openapi.json answered ${answer.status}`);
  return answer.json;
}

/** `/api/pipeline_runs/:id` with its parameters replaced (each value URI-encoded unless `raw`). */
export function fillPath(path: string, values: Record<string, string>, raw = false): string {
  return path.replace(/:([A-Za-z_]+)/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for :${name} in ${path}`);
    return raw ? value : encodeURIComponent(value);
  });
}

/** The table an id parameter refers to: `:id` after `/pipeline_runs/`, or `:pipeline_run_id`. */
export function tableOfIdParam(path: string, param: string): string | null {
  if (param === "id") {
    const match = new RegExp(`/([a-z_]+)/:id(?:/|$)`).exec(path);
    return match ? (match[1] as string) : null;
  }
  const match = /^([a-z_]+)_id$/.exec(param);
  return match ? `${match[1]}s` : null;
}

/** Whether a parameter holds an integer id (by kiln's naming: `id` or `<thing>_id`). */
export function isIdParam(param: string): boolean {
  return param === "id" || /_id$/.test(param);
}

export interface RawAnswer {
  status: number;
  contentType: string;
  /** The parsed JSON of an error answer (status >= 400); null otherwise or when not JSON. */
  error: { code?: unknown; message?: unknown } | null;
  json: unknown;
  headers: Headers;
}

/**
 * A request that does not wait for the body of a successful answer (a log stream never ends
 * while its run goes on): the body is read for errors only, and every request has a deadline.
 */
export async function rawRequest(
  url: string,
  method: string,
  options: { token?: string | null; body?: string | Uint8Array; headers?: Record<string, string>; readOk?: boolean } = {},
): Promise<RawAnswer> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(10_000), ...(options.body !== undefined ? { body: options.body } : {}) });
  const contentType = response.headers.get("content-type") ?? "";
  let json: unknown = null;
  if ((response.status >= 400 || options.readOk) && contentType.includes("application/json")) {
    try {
      json = await response.json();
    } catch {
      json = null;
    }
  } else {
    await response.body?.cancel();
  }
  const error = response.status >= 400 && json && typeof json === "object" && "error" in json ? ((json as { error: RawAnswer["error"] }).error ?? null) : null;
  return { status: response.status, contentType, error, json, headers: response.headers };
}
