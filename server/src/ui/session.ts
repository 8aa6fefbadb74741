/**
 * The web UI's sign-in: a session token (the same JWT as POST /api/sessions) in an HttpOnly,
 * SameSite=Strict cookie. Every write (a POST) must come from this origin (Origin, or
 * Sec-Fetch-Site, checked when the browser sends them) and carry the CSRF token of the session,
 * which is derived from the session token: a page elsewhere can read neither.
 */
import { KilnError } from "@kiln/core";
import { hasRole, type Role } from "@kiln/core/auth";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { SESSION_COOKIE, type Principal, type SessionVerifier } from "../auth.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { requestHost, requestProto } from "../forwarded.ts";

export interface UiSession {
  principal: Principal;
  /** The token every form posts back as `_csrf`. */
  csrf: string;
}

/** The UI sub-app's context: the API's variables plus the signed-in session. */
export interface UiEnv {
  Variables: Env["Variables"] & { ui: UiSession };
}

const encoder = new TextEncoder();

function base64url(bytes: ArrayBuffer): string {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The CSRF token of a session token: a hash only the holder of the (HttpOnly) token can compute. */
export async function csrfToken(sessionToken: string): Promise<string> {
  return base64url(await crypto.subtle.digest("SHA-256", encoder.encode(`kiln-ui-csrf:${sessionToken}`)));
}

/** Equal strings, compared without an early exit. */
function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Whether a request comes from a page of this server, judged by what the browser says (Origin, Sec-Fetch-Site). */
export function sameOrigin(c: Context): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none") return false;
  const origin = c.req.header("origin");
  if (origin === undefined) return true;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  // behind a TLS-terminating proxy the scheme differs; the host the browser addressed must match
  const addressed = requestHost(c);
  return host === addressed;
}

/** Whether the request came over HTTPS (directly or through a proxy that says so), for the cookie's Secure flag. */
function overHttps(c: Context): boolean {
  return requestProto(c) === "https";
}

/** Stores the session token in the cookie, expiring with the session. */
export function setSessionCookie(c: Context, token: string, expiresAt: number, now: number): void {
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Strict",
    secure: overHttps(c),
    path: "/",
    maxAge: Math.max(0, Math.floor((expiresAt - now) / 1000)),
  });
}

/** Removes the session cookie. */
export function clearSessionCookie(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: overHttps(c), httpOnly: true, sameSite: "Strict" });
}

/** The session token in the request's cookie, if any. */
export function sessionCookie(c: Context): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}

/**
 * A random token for servers without authentication (no session to derive one from), made on
 * first use: Cloudflare Workers refuse random values at module scope.
 */
let anonymousCsrfToken: string | null = null;
function anonymousCsrf(): string {
  anonymousCsrfToken ??= base64url(crypto.getRandomValues(new Uint8Array(32)).buffer);
  return anonymousCsrfToken;
}

/**
 * Resolves the signed-in user from the cookie: a page without one redirects to the login page,
 * any other request gets a 401 page. A POST must pass the origin and CSRF checks.
 */
export function uiAuth(deps: ServerDeps, verifySession: SessionVerifier): MiddlewareHandler<UiEnv> {
  return async (c, next) => {
    let session: UiSession | null = null;
    if (!deps.authEnabled) {
      session = { principal: { kind: "anonymous", name: "anonymous", role: "admin" }, csrf: anonymousCsrf() };
    } else {
      const token = sessionCookie(c);
      const principal = token !== undefined && token.length <= 4096 ? await verifySession(token) : null;
      if (principal && token !== undefined) session = { principal, csrf: await csrfToken(token) };
    }
    if (!session) {
      if (c.req.method === "GET" || c.req.method === "HEAD") {
        const next = c.req.path + (new URL(c.req.url).search || "");
        return c.redirect(`/ui/login?next=${encodeURIComponent(next)}`, 303);
      }
      throw new KilnError("unauthenticated", "Your session has ended: sign in again.");
    }
    c.set("principal", session.principal);
    c.set("ui", session);
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      if (!sameOrigin(c)) throw new KilnError("forbidden", "This form was sent from another site; it was refused.");
      const body = await c.req.parseBody();
      const sent = typeof body._csrf === "string" ? body._csrf : "";
      if (!sameString(sent, session.csrf)) throw new KilnError("forbidden", "The form's security token is missing or out of date: reload the page and try again.");
    }
    return next();
  };
}

/** Refuses the request unless the signed-in user has `role`. */
export function needRole(c: Context<UiEnv>, role: Role): void {
  const principal = c.get("ui").principal;
  if (!hasRole(principal.role, role)) throw new KilnError("forbidden", `This needs the ${role} role; you are signed in as ${principal.role}.`);
}

/** Whether the signed-in user has `role` (to show or hide an action). */
export function canAct(c: Context<UiEnv>, role: Role = "editor"): boolean {
  return hasRole(c.get("ui").principal.role, role);
}

/** A same-site path to return to after signing in; anything else (another host, a scheme) becomes the overview. */
export function safeNext(next: string | undefined): string {
  return next !== undefined && /^\/ui(\/|$|\?)/.test(next) && !next.startsWith("//") && !/[\\\r\n]/.test(next) ? next : "/ui";
}
