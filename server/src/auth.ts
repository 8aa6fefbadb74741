/**
 * Authentication and roles. Every route needs credentials except the few in PUBLIC (health,
 * login, token-authenticated triggers and events, which check their own token). Reads need the
 * viewer role and writes the editor role unless the route asks for more with requireRole().
 */
import { hasRole, verifyApiKey, type Role } from "@kiln/core/auth";
import type { MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { ApiError } from "./errors.ts";
import type { Env, ServerDeps } from "./deps.ts";

export interface Principal {
  kind: "api_key" | "session" | "anonymous";
  /** The key's name or the user's username. */
  name: string;
  role: Role;
}

/** Routes anyone may call; they authenticate by their own token where they need one. */
const PUBLIC: Array<{ method: string; path: RegExp }> = [
  { method: "GET", path: /^\/api\/health$/ },
  { method: "POST", path: /^\/api\/sessions$/ },
  { method: "POST", path: /^\/api\/pipeline_schedules\/[^/]+\/pipeline_runs\/[^/]+$/ },
  { method: "POST", path: /^\/api\/events$/ },
];

/** Writes any signed-in principal may make: ending one's own session. */
const VIEWER_WRITES: Array<{ method: string; path: RegExp }> = [{ method: "DELETE", path: /^\/api\/sessions$/ }];

/** Whether a request may go through without credentials. */
export function isPublic(method: string, path: string): boolean {
  return PUBLIC.some((route) => route.method === method && route.path.test(path));
}

/**
 * The log streams' `?access_token=<key or session token>` as an Authorization value: EventSource
 * cannot send headers, so these routes alone take credentials in the URL (which ends up in
 * proxies' logs and browser history, hence nowhere else). kiln never logs it.
 */
function streamAccessToken(path: string, token: string | undefined): string | undefined {
  return token !== undefined && /\/logs\/stream$/.test(path) ? `Bearer ${token}` : undefined;
}

/** The web UI's session cookie (HttpOnly, SameSite=Strict): a session token, as from POST /api/sessions. */
export const SESSION_COOKIE = "kiln_session";

/**
 * The web UI's session cookie as an Authorization value, for reads only (GET, HEAD): the UI's
 * pages read the API (and its log streams) with it, while every write through /api/* still needs
 * a header a cross-site page cannot set, so a cookie alone never changes anything here.
 */
function cookieToken(method: string, cookie: string | undefined): string | undefined {
  return cookie !== undefined && (method === "GET" || method === "HEAD") && /^[A-Za-z0-9_.-]{1,4096}$/.test(cookie) ? `Bearer ${cookie}` : undefined;
}

/**
 * Resolves the principal of a session token; set by the sessions module. Kept as a hook so this
 * module does not depend on how sessions are signed.
 */
export type SessionVerifier = (token: string) => Promise<Principal | null>;

/** Reads `Authorization: Bearer <key or session token>` into the `principal` variable; 401 for a bad one. */
export function authenticate(deps: ServerDeps, verifySession: SessionVerifier | null): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (!deps.authEnabled) {
      c.set("principal", { kind: "anonymous", name: "anonymous", role: "admin" });
      return next();
    }
    const header =
      c.req.header("authorization") ?? streamAccessToken(c.req.path, c.req.query("access_token")) ?? cookieToken(c.req.method, getCookie(c, SESSION_COOKIE));
    if (header === undefined) {
      c.set("principal", null);
    } else {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match) throw new ApiError("unauthenticated", "Authorization: expected `Bearer <api key or session token>`");
      const token = match[1] as string;
      let principal: Principal | null = null;
      if (token.startsWith("kiln_")) {
        const key = await verifyApiKey(deps.store.client, token, deps.clock.now());
        if (key) principal = { kind: "api_key", name: key.name, role: key.role };
      } else if (verifySession) {
        principal = await verifySession(token);
      }
      // a public route may take its own token in this header (an event trigger's): it checks it
      if (!principal && !isPublic(c.req.method, c.req.path)) throw new ApiError("unauthenticated", "the API key or session token is not valid");
      c.set("principal", principal);
    }
    const viewerWrite = VIEWER_WRITES.some((route) => route.method === c.req.method && route.path.test(c.req.path));
    const required: Role = c.req.method === "GET" || c.req.method === "HEAD" || viewerWrite ? "viewer" : "editor";
    if (!isPublic(c.req.method, c.req.path)) check(c.get("principal"), required);
    return next();
  };
}

function check(principal: Principal | null, required: Role): void {
  if (!principal) throw new ApiError("unauthenticated", "authentication required: send Authorization: Bearer <api key or session token>");
  if (!hasRole(principal.role, required)) throw new ApiError("forbidden", `this needs the ${required} role; you have ${principal.role}`);
}

/** Requires a role above the default for the method (e.g. admin for secrets). */
export function requireRole(role: Role): MiddlewareHandler<Env> {
  return async (c, next) => {
    check(c.get("principal"), role);
    return next();
  };
}
