/**
 * The kiln server: one Hono app for every runtime (Bun, Deno, Node, Workers). Each route family
 * lives in routes/ and registers itself on the app; this file wires the cross-cutting parts:
 * the body limit, authentication, the error envelope.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiDoc } from "./api-doc.ts";
import { authenticate, type SessionVerifier } from "./auth.ts";
import type { Env, ServerDeps } from "./deps.ts";
import { ApiError, errorResponse, toApiError } from "./errors.ts";
import { routeLabel } from "./route-pattern.ts";
import { backfillRoutes } from "./routes/backfills.ts";
import { blockRunRoutes } from "./routes/block-runs.ts";
import { eventMatcherRoutes } from "./routes/event-matchers.ts";
import { eventRoutes } from "./routes/events.ts";
import { logRoutes } from "./routes/logs.ts";
import { openApiRoutes } from "./routes/openapi.ts";
import { pipelineRunRoutes } from "./routes/pipeline-runs.ts";
import { pipelineRoutes } from "./routes/pipelines.ts";
import { scheduleRoutes } from "./routes/schedules.ts";
import { secretRoutes } from "./routes/secrets.ts";
import { apiKeyRoutes } from "./routes/api-keys.ts";
import { userRoutes } from "./routes/users.ts";
import { sessionRoutes, sessionVerifier } from "./routes/sessions.ts";
import { statusRoutes } from "./routes/status.ts";
import { uiApp } from "./ui/index.tsx";

/** Builds the app over `deps`; serve it with `Bun.serve({ fetch: app.fetch })` or any runtime's equivalent. */
export function createApp(deps: ServerDeps, options: { log?: (message: string) => void } = {}): Hono<Env> {
  const log = options.log ?? ((message: string) => console.error(message));
  const app = new Hono<Env>();
  const verifySession: SessionVerifier = sessionVerifier(deps);
  const doc = new ApiDoc();

  app.onError((error, c) => {
    const apiError = toApiError(error);
    // a 500 is a kiln bug: log it (by route pattern, without the request, which may hold secrets) and answer
    // plainly; a 503 for an unreachable database is no bug (the scheduler's log reports the outage)
    if (apiError.status >= 500 && apiError.code !== "database_unavailable") log(`internal error on ${routeLabel(c)}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return errorResponse(c, apiError);
  });
  app.notFound((c) => errorResponse(c, new ApiError("not_found", `no route ${c.req.method} ${c.req.path}`)));

  app.use(
    "*",
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: () => {
        throw new ApiError("payload_too_large", `the request body is over ${deps.bodyLimitBytes} bytes`);
      },
    }),
  );
  app.use("*", async (c, next) => {
    c.set("trustProxy", deps.trustProxy === true);
    await next();
  });
  app.use("/api/*", authenticate(deps, verifySession));
  app.use("/metrics", authenticate(deps, verifySession));

  pipelineRoutes(app, deps, doc);
  scheduleRoutes(app, deps, doc);
  pipelineRunRoutes(app, deps, doc);
  blockRunRoutes(app, deps, doc);
  backfillRoutes(app, deps, doc);
  logRoutes(app, deps, doc);
  secretRoutes(app, deps, doc);
  sessionRoutes(app, deps, doc);
  userRoutes(app, deps, doc);
  apiKeyRoutes(app, deps, doc);
  eventRoutes(app, deps, doc);
  eventMatcherRoutes(app, deps, doc);
  statusRoutes(app, deps, doc);
  openApiRoutes(app, deps, doc);
  // the web UI signs in with a session cookie and checks its own CSRF token (see ui/session.ts)
  app.route("/ui", uiApp(deps, verifySession, log));
  app.get("/", (c) => c.redirect("/ui", 302));
  return app;
}
