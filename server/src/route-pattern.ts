/**
 * How a request is named in a log line: by the pattern of the route that matched
 * (`/api/pipeline_schedules/:id/pipeline_runs/:token`), never by its path, which can carry an
 * API trigger's token or other secrets in its segments and query.
 */
import type { Context } from "hono";
import { routePath } from "hono/route";

/** `POST /api/pipeline_schedules/:id/pipeline_runs/:token`; `(no route)` where none matched. */
export function routeLabel(c: Context): string {
  let pattern = "";
  try {
    pattern = routePath(c, -1);
  } catch {
    pattern = "";
  }
  // a middleware's wildcard is the last match only when no route did
  return `${c.req.method} ${pattern && pattern !== "*" && !pattern.endsWith("/*") ? pattern : "(no route)"}`;
}
