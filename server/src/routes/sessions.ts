/**
 * Sessions: `POST /api/sessions` trades a username and password for a signed token (a JWT,
 * HS256) that is sent as `Authorization: Bearer <token>` like an API key; `DELETE /api/sessions`
 * ends the presented one. The signing key lives in the database, so every replica accepts a
 * token any of them issued, and restarts keep sessions alive. A token stops working when it
 * expires, when it is ended, or when its user is deleted; the role is read from the user at each
 * request, not trusted from the token.
 */
import { authenticateUser, liveSessionUser, revokeSession, SessionKeyError, sessionSigningKey, type UserRecord } from "@kiln/core/auth";
import type { Context, Hono } from "hono";
import { jwtVerify, SignJWT } from "jose";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Principal, SessionVerifier } from "../auth.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { one } from "../envelope.ts";
import { ApiError } from "../errors.ts";
import { SignInThrottle } from "../sign-in-throttle.ts";
import { readBody } from "../validate.ts";
import { clientAddress } from "../client-address.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const ISSUER = "kiln";
/** A JWT's three base64url parts; anything else is refused before the key is read. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const Credential = v.pipe(v.string(), v.minLength(1, "expected a non-empty string"), v.maxLength(1024, "expected at most 1024 characters"));

/** `username`, or `email` as Mage's clients send it (kiln's usernames may be email addresses). */
const LoginBody = v.strictObject({
  session: v.pipe(
    v.strictObject({
      username: v.optional(Credential),
      email: v.optional(Credential),
      password: Credential,
    }),
    v.check((s) => (s.username === undefined) !== (s.email === undefined), "expected username (or email), not both"),
  ),
});

const LogoutBody = v.strictObject({});

/** A user as the API shows it (never the password hash). */
export function userJson(user: UserRecord): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    created_at: new Date(user.createdAt).toISOString(),
    updated_at: new Date(user.updatedAt).toISOString(),
  };
}

const keys = new WeakMap<ServerDeps, Promise<Uint8Array>>();

/** The signing key, read once per app; a failure is not cached, so setting KILN_SECRET_KEY and retrying works. */
function signingKey(deps: ServerDeps): Promise<Uint8Array> {
  let key = keys.get(deps);
  if (!key) {
    key = sessionSigningKey(deps.store.client, deps.secretKey, deps.clock.now());
    keys.set(deps, key);
    key.catch(() => keys.delete(deps));
  }
  return key;
}

const throttles = new WeakMap<ServerDeps, SignInThrottle>();

function throttleOf(deps: ServerDeps): SignInThrottle {
  let throttle = throttles.get(deps);
  if (!throttle) throttles.set(deps, (throttle = new SignInThrottle(deps.store.client, deps.signInPolicy)));
  return throttle;
}

/** Sign-in refused for a while after repeated failures; the answer carries Retry-After. */
export class TooManySignInsError extends ApiError {
  constructor(readonly retryAfterMs: number) {
    super("too_many_requests", `too many sign-in attempts from this client: try again in ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}

interface SessionClaims {
  userId: number;
  jti: string;
  expiresAt: number;
}

/** The claims of a token signed by this server and not expired, else null. */
async function readToken(deps: ServerDeps, token: string): Promise<SessionClaims | null> {
  if (!JWT_SHAPE.test(token)) return null;
  let key: Uint8Array;
  try {
    key = await signingKey(deps);
  } catch (error) {
    if (error instanceof SessionKeyError) return null;
    throw error;
  }
  try {
    // the signature is checked by WebCrypto's HMAC verify, which compares in constant time
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], issuer: ISSUER, currentDate: new Date(deps.clock.now()), requiredClaims: ["sub", "jti", "exp"] });
    const userId = /^[1-9][0-9]{0,15}$/.test(payload.sub ?? "") ? Number(payload.sub) : NaN;
    if (!Number.isSafeInteger(userId) || typeof payload.jti !== "string" || typeof payload.exp !== "number") return null;
    return { userId, jti: payload.jti, expiresAt: payload.exp * 1000 };
  } catch {
    return null;
  }
}

/** Resolves a session token to its user's principal; null for a bad, expired or ended token or a deleted user. */
export function sessionVerifier(deps: ServerDeps): SessionVerifier {
  return async (token: string): Promise<Principal | null> => {
    const claims = await readToken(deps, token);
    if (!claims) return null;
    const user = await liveSessionUser(deps.store.client, claims.userId, claims.jti);
    return user ? { kind: "session", name: user.username, role: user.role } : null;
  };
}

function bearerToken(c: Context): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
  return match ? (match[1] as string) : null;
}

/** A signed-in session: its token (a JWT), when it expires (epoch ms, whole seconds) and its user. */
export interface SignedSession {
  token: string;
  expiresAt: number;
  user: UserRecord;
}

/** Checks a username and password from `client` (its address) and signs a session token; the API's and the web UI's sign-in. */
export async function signIn(deps: ServerDeps, username: string, password: string, client: string): Promise<SignedSession> {
  let key: Uint8Array;
  try {
    key = await signingKey(deps);
  } catch (error) {
    if (error instanceof SessionKeyError) throw new ApiError("conflict", `${error.message}: set KILN_SECRET_KEY to the key the sessions were set up with`);
    throw error;
  }
  const claim = await throttleOf(deps).claim(client, username, deps.clock.now());
  if (claim.retryAfterMs > 0) throw new TooManySignInsError(claim.retryAfterMs);
  const user = await authenticateUser(deps.store.client, username, password, deps.passwordIterations !== undefined ? { iterations: deps.passwordIterations } : {});
  await claim.settle(user !== null);
  // one answer for an unknown user and a wrong password, so usernames cannot be probed
  if (!user) throw new ApiError("unauthenticated", "invalid username or password");
  const now = deps.clock.now();
  const expiresAt = now + (deps.sessionTtlMs ?? DAY_MS);
  const token = await new SignJWT({ role: user.role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(ISSUER)
    .setSubject(String(user.id))
    .setJti(crypto.randomUUID())
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(expiresAt / 1000))
    .sign(key);
  return { token, expiresAt: Math.floor(expiresAt / 1000) * 1000, user };
}

/** Ends the session of `token` if it is a valid one; answers the time it ended, or null for a token that was not a live session. */
export async function signOut(deps: ServerDeps, token: string): Promise<number | null> {
  const claims = await readToken(deps, token);
  if (!claims) return null;
  const now = deps.clock.now();
  await revokeSession(deps.store.client, claims.jti, claims.expiresAt, now);
  return now;
}

export function sessionRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "post", path: "/api/sessions", summary: "Sign in with a username and password; answers a session token", role: "public", body: LoginBody, responseKey: "session" });
  app.post("/api/sessions", async (c) => {
    const { session } = await readBody(c, LoginBody);
    const signed = await signIn(deps, (session.username ?? session.email) as string, session.password, clientAddress(c));
    return one(c, "session", { token: signed.token, expires_at: new Date(signed.expiresAt).toISOString(), user: userJson(signed.user) }, 201);
  });

  // any signed-in user may end their own session, so this write needs only the viewer role
  doc.add({ method: "delete", path: "/api/sessions", summary: "Sign out: end the session whose token authenticates this request", role: "viewer", body: LogoutBody, responseKey: "session" });
  app.delete("/api/sessions", async (c) => {
    await readBody(c, LogoutBody);
    const token = bearerToken(c);
    const claims = token ? await readToken(deps, token) : null;
    if (!claims) {
      throw new ApiError("invalid_request", "DELETE /api/sessions ends the session token sent as Authorization: Bearer <token>; this request carries none (revoke API keys with DELETE /api/api_keys/:id)", [
        { field: "headers.authorization", message: "expected a session token" },
      ]);
    }
    const now = (await signOut(deps, token as string)) ?? deps.clock.now();
    return one(c, "session", { expires_at: new Date(claims.expiresAt).toISOString(), ended_at: new Date(now).toISOString() });
  });
}
