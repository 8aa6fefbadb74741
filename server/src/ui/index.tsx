/** @jsxImportSource hono/jsx */
/**
 * The web UI: server-rendered pages over the same store and core functions the REST API uses,
 * mounted at /ui by createApp. Pages are plain HTML forms (each write a POST with the session's
 * CSRF token); a small script localises times and follows the live streams (Server-Sent Events)
 * the routes serve. No file system and no node: import, so it runs wherever the app does.
 *
 * Laid out as the API is: ui/routes/* register each section's routes on this app (as
 * server/src/routes/* do on the API), ui/pages/* render each section's pages, render.tsx holds
 * what routes share; errors become statuses in server/src/errors.ts.
 */
import { KilnError } from "@kiln/core";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { SessionVerifier } from "../auth.ts";
import type { ServerDeps } from "../deps.ts";
import { statusOf, toApiError } from "../errors.ts";
import { routeLabel } from "../route-pattern.ts";
import { APP_CSS, APP_JS } from "./assets.ts";
import { ErrorPage } from "./pages/error.tsx";
import { page, type UiRoutes } from "./render.tsx";
import { backfillRoutes } from "./routes/backfills.tsx";
import { overviewRoutes } from "./routes/overview.tsx";
import { pipelineRoutes } from "./routes/pipelines.tsx";
import { runRoutes } from "./routes/runs.tsx";
import { secretRoutes } from "./routes/secrets.tsx";
import { signInRoutes, signOutRoutes } from "./routes/session.tsx";
import { triggerRoutes } from "./routes/triggers.tsx";
import { uiAuth, type UiEnv } from "./session.ts";

/** Security headers for every UI answer: no inline script or style, no framing, nothing cached that carries a CSRF token. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

/** The sections behind the session check, in the order their routes are tried. */
const SECTIONS: readonly UiRoutes[] = [signOutRoutes, overviewRoutes, pipelineRoutes, triggerRoutes, runRoutes, backfillRoutes, secretRoutes];

/** A refusal as the page shows it, with the status errors.ts gives its code; null for a kiln bug (a 500). */
function uiErrorOf(error: unknown): { status: ContentfulStatusCode; message: string } | null {
  // the UI's own words and core's are shown as written; the API's envelope would prefix fields
  if (error instanceof KilnError) return { status: statusOf(error.code), message: error.message };
  const api = toApiError(error);
  return api.status < 500 ? { status: api.status, message: api.message } : null;
}

/** Builds the UI's Hono app; createApp mounts it at /ui. */
export function uiApp(deps: ServerDeps, verifySession: SessionVerifier, log: (message: string) => void): Hono<UiEnv> {
  const ui = new Hono<UiEnv>();

  ui.onError(async (error, c) => {
    const known = uiErrorOf(error);
    // a 500 is a kiln bug: logged without the request (a form may hold a password), shown plainly
    if (!known) log(`internal error on ${routeLabel(c)} (web UI): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    const status = known?.status ?? 500;
    return page(c, deps, "Error", "overview", <ErrorPage status={status} message={known?.message ?? "kiln hit an internal error; it was logged on the server."} />, status === 413 ? 400 : status);
  });

  ui.use("*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
    if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
  });

  // the assets are public (the login page needs them) and change only with ASSET_VERSION
  ui.get("/static/app.css", (c) => c.body(APP_CSS, 200, { "content-type": "text/css; charset=utf-8", "cache-control": "public, max-age=86400" }));
  ui.get("/static/app.js", (c) => c.body(APP_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=86400" }));
  signInRoutes(ui, deps, verifySession);

  ui.use("*", uiAuth(deps, verifySession));
  for (const routes of SECTIONS) routes(ui, deps, verifySession);

  ui.all("*", (c) => {
    // /ui/ and /ui/runs/ mean /ui and /ui/runs (the path always starts with /ui, so this stays on site)
    if (c.req.method === "GET" && /^\/ui\/.*\/$|^\/ui\/$/.test(c.req.path)) return c.redirect(c.req.path.replace(/\/+$/, ""), 301);
    throw new KilnError("not_found", "There is no such page.");
  });
  return ui;
}
