/**
 * The auth matrix, derived from the server's own OpenAPI document so that every route is in it,
 * including routes added after this test was written: no credentials, a bad token, each role,
 * and auth turned off. Then sessions (sign in, use, sign out, expiry, deleted users) and the
 * API-key routes.
 */
import { SIGN_IN_POLICY } from "../../server/src/sign-in-throttle.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { hasRole, type Role } from "@kiln/core/auth";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { createApp, type ServerDeps } from "@kiln/server";
import { SignJWT } from "jose";
import { until } from "../helpers/fixtures.ts";
import { fetchDocument, fillPath, isIdParam, operationsOf, rawRequest, tableOfIdParam, WRITE_METHODS, type Operation, type RawAnswer } from "../helpers/openapi.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

/** Writes that need only a signed-in principal (ending one's own session). */
const VIEWER_WRITES = new Set(["DELETE /api/sessions"]);
const API_TOKEN = "matrix-api-token-0123456789";
const SECRET_NAME = "MATRIX_SECRET";
const PASSWORD = "correct horse battery staple";

let s: ServerFixture;
let ops: Operation[];
let apiScheduleId = 0;
let secretKey: CryptoKey;

/** Real values for a route's path parameters, so reads hit existing records and public routes their real token. */
async function realValues(op: Operation): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const param of op.pathParams) {
    if (param === "uuid" || param === "pipeline_uuid") values[param] = "etl";
    else if (param === "token") values[param] = API_TOKEN;
    else if (param === "name") values[param] = SECRET_NAME;
    else if (op.pathParams.includes("token") && param === "id") values[param] = String(apiScheduleId);
    else if (isIdParam(param)) values[param] = await maxId(tableOfIdParam(op.path, param));
    else values[param] = "x";
  }
  return values;
}

/** Values for writes that must not change anything that exists (an unknown id, a wrong name). */
function dummyValues(op: Operation): Record<string, string> {
  const values: Record<string, string> = {};
  for (const param of op.pathParams) values[param] = isIdParam(param) ? "999999" : param === "uuid" || param === "pipeline_uuid" ? "etl" : "NO_SUCH_THING";
  return values;
}

async function maxId(table: string | null): Promise<string> {
  if (!table) return "1";
  const exists = await s.client.execute({ sql: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", args: [table] });
  if (exists.rows.length === 0) return "1";
  const rs = await s.client.execute(`SELECT max(id) AS id FROM "${table}"`);
  return rs.rows[0]?.id === null || rs.rows[0]?.id === undefined ? "1" : String(rs.rows[0].id);
}

/** Public routes use their real token; reads use existing records; other writes touch nothing real. */
async function urlFor(fx: ServerFixture, op: Operation): Promise<string> {
  const values = op.role === "public" || !WRITE_METHODS.has(op.method) ? await realValues(op) : dummyValues(op);
  return `${fx.url}${fillPath(op.path, values)}`;
}

const label = (op: Operation) => `${op.method} ${op.path}`;
const blockedByMiddleware = (a: RawAnswer) => a.status === 401 && /^authentication required/.test(String(a.error?.message ?? ""));

beforeAll(async () => {
  secretKey = await importSecretKey(generateSecretKey());
  // a first delay of a minute, so a loaded machine's slow requests never outlast it (the default is 1 s)
  s = await serverFixture(undefined, { secretKey, signInPolicy: { ...SIGN_IN_POLICY, baseDelayMs: 60_000 } });
  ops = operationsOf(await fetchDocument(s));
  const created = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", {
    body: { pipeline_schedule: { name: "matrix_api", schedule_type: "api", status: "active", token: API_TOKEN } },
  });
  apiScheduleId = (created.json.pipeline_schedule as { id: number }).id;
  const triggered = await s.call("POST", `/api/pipeline_schedules/${apiScheduleId}/pipeline_runs/${API_TOKEN}`, { role: null, body: {} });
  const runId = (triggered.json.pipeline_run as { id: number }).id;
  // a finished run, so that log streams of it end
  await until(async () => (await s.client.execute({ sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [runId] })).rows[0]?.status === "completed", "the run to complete");
  expect((await s.call("POST", "/api/secrets", { body: { secret: { name: SECRET_NAME, value: "v" } } })).status).toBe(201);
  expect((await s.call("POST", "/api/users", { body: { user: { username: "matrix", password: PASSWORD, role: "viewer" } } })).status).toBe(201);
});
afterAll(() => s.close());

describe("GET /api/openapi.json", () => {
  test("is an OpenAPI 3 document listing every route the app serves, each with a summary and a role", async () => {
    const document = await fetchDocument(s);
    expect(document.openapi).toMatch(/^3\.0\.\d+$/);
    expect(document.info).toEqual({ title: "kiln", version: "test" });
    expect(document.components).toMatchObject({ securitySchemes: { bearer: { type: "http", scheme: "bearer" } } });
    const paths = document.paths as Record<string, Record<string, { summary?: string; responses?: object; security?: unknown[]; "x-kiln-role"?: string; parameters?: Array<{ name: string; in: string }> }>>;
    for (const [path, methods] of Object.entries(paths)) {
      expect(path).toMatch(/^\//);
      for (const [method, op] of Object.entries(methods)) {
        expect(["get", "post", "put", "patch", "delete"]).toContain(method);
        expect(op.summary?.length ?? 0).toBeGreaterThan(0);
        expect(op.responses).toBeDefined();
        const declared = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name).sort();
        expect([path, declared]).toEqual([path, [...path.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1] as string).sort()]);
        if (!(Array.isArray(op.security) && op.security.length === 0)) expect(["viewer", "editor", "admin"]).toContain(op["x-kiln-role"] as string);
      }
    }
    // every route registered on the app is documented, and nothing documented is missing from the app
    const deps: ServerDeps = { store: s.store, project: () => s.project, clock: s.store.clock, version: "test", authEnabled: true, secretKey, bodyLimitBytes: 1 << 20 };
    // the web UI's pages (/ui, and / redirecting there) are HTML, not API: they are not in the document
    const page = (path: string) => path === "/" || path === "/ui" || path.startsWith("/ui/");
    const served = new Set(createApp(deps, { log: () => {} }).routes.filter((r) => r.method !== "ALL" && !page(r.path)).map((r) => `${r.method} ${r.path}`));
    const documented = new Set(operationsOf(document).map(label));
    expect([...served].filter((r) => !documented.has(r)).sort()).toEqual([]);
    expect([...documented].filter((r) => !served.has(r)).sort()).toEqual([]);
  });
});

describe("the auth matrix, from /api/openapi.json", () => {
  test("the document lists every route family, and every write needs editor or more unless public", () => {
    const paths = new Set(ops.map(label));
    for (const expected of ["GET /api/pipelines", "POST /api/pipelines/:uuid/pipeline_schedules", "POST /api/sessions", "DELETE /api/sessions", "GET /api/secrets", "POST /api/secrets", "GET /api/openapi.json", "GET /api/api_keys", "POST /api/users"]) {
      expect(paths).toContain(expected);
    }
    const loose = ops.filter((op) => WRITE_METHODS.has(op.method) && op.role === "viewer" && !VIEWER_WRITES.has(label(op))).map(label);
    expect(loose).toEqual([]);
  });

  test("without credentials every route answers 401, except the public ones, which the middleware lets through", async () => {
    const wrong: string[] = [];
    for (const op of ops) {
      const answer = await rawRequest(await urlFor(s, op), op.method, { token: null });
      if (op.role === "public" ? blockedByMiddleware(answer) : answer.status !== 401) wrong.push(`${label(op)} (${op.role}): ${answer.status}`);
      if (op.role !== "public" && (answer.error?.code !== "unauthenticated" || !String(answer.error?.message ?? ""))) wrong.push(`${label(op)}: no error envelope`);
    }
    expect(wrong).toEqual([]);
  });

  test("a bad bearer token is 401 on every non-public route", async () => {
    const bad = ["kiln_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "kiln_nonsense", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "plain-garbage"];
    const wrong: string[] = [];
    for (const op of ops.filter((o) => o.role !== "public")) {
      for (const token of bad) {
        const answer = await rawRequest(await urlFor(s, op), op.method, { token });
        if (answer.status !== 401) wrong.push(`${label(op)} with ${token}: ${answer.status}`);
      }
      const basic = await rawRequest(await urlFor(s, op), op.method, { headers: { authorization: `Basic ${btoa("admin:admin")}` } });
      if (basic.status !== 401) wrong.push(`${label(op)} with Basic auth: ${basic.status}`);
      // routes that take credentials in the URL (log streams, for EventSource) check them the same way
      if (op.query.some((q) => q.name === "access_token")) {
        const inUrl = await rawRequest(`${await urlFor(s, op)}?access_token=${bad[0]}`, op.method, { token: null });
        if (inUrl.status !== 401) wrong.push(`${label(op)} with a bad ?access_token=: ${inUrl.status}`);
        const good = await rawRequest(`${await urlFor(s, op)}?access_token=${s.keys.viewer}`, op.method, { token: null });
        if (good.status === 401 || good.status === 403) wrong.push(`${label(op)} with a viewer's ?access_token=: ${good.status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("each role gets 403 exactly on the non-public routes that need more (a viewer on every write), and passes the others", async () => {
    const wrong: string[] = [];
    let forbiddenWrites = 0;
    // admin last: its writes are the only ones that go through, on dummy ids
    for (const role of ["viewer", "editor", "admin"] as const) {
      // public routes check their own tokens (and may take keys of some role): the first test covers them
      for (const op of ops.filter((o) => o.role !== "public")) {
        const answer = await rawRequest(await urlFor(s, op), op.method, { token: s.keys[role] });
        const allowed = op.role !== "public" && hasRole(role, op.role);
        if (allowed && (answer.status === 403 || answer.status === 401)) wrong.push(`${role} ${label(op)}: ${answer.status}, expected to pass`);
        if (!allowed && answer.status !== 403) wrong.push(`${role} ${label(op)}: ${answer.status}, expected 403`);
        if (!allowed && answer.error?.code !== "forbidden") wrong.push(`${role} ${label(op)}: no forbidden envelope`);
        if (role === "viewer" && WRITE_METHODS.has(op.method) && !allowed) forbiddenWrites++;
      }
    }
    expect(wrong).toEqual([]);
    const viewerWrites = ops.filter((op) => WRITE_METHODS.has(op.method) && op.role !== "public" && !VIEWER_WRITES.has(label(op)));
    expect(forbiddenWrites).toBe(viewerWrites.length);
    expect(viewerWrites.length).toBeGreaterThan(5);
  });

  test("auth is off only with authEnabled: false, and then every route passes without credentials", async () => {
    const open = await serverFixture(undefined, { authEnabled: false });
    try {
      const openOps = operationsOf(await fetchDocument(open));
      expect(openOps.length).toBe(ops.length);
      const wrong: string[] = [];
      for (const op of openOps) {
        const values = dummyValues(op);
        const answer = await rawRequest(`${open.url}${fillPath(op.path, values)}`, op.method, { token: null });
        // the API trigger refuses a wrong token by its own check, which auth settings do not change
        if (answer.status === 403 || (answer.status === 401 && op.role !== "public")) wrong.push(`${label(op)}: ${answer.status}`);
      }
      expect(wrong).toEqual([]);
    } finally {
      await open.close();
    }
  });
});

async function login(fx: ServerFixture, session: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  return fx.call("POST", "/api/sessions", { role: null, body: { session } });
}

describe("sessions", () => {
  test("sign in, use the token with the user's role, sign out; the token then stops working", async () => {
    const signedIn = await login(s, { username: "matrix", password: PASSWORD });
    expect(signedIn.status).toBe(201);
    const session = signedIn.json.session as { token: string; expires_at: string; user: Record<string, unknown> };
    expect(session.user).toMatchObject({ username: "matrix", role: "viewer" });
    expect(session.user).not.toHaveProperty("password_hash");
    const ttl = Date.parse(session.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(23 * 3600_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3600_000);

    const read = await rawRequest(`${s.url}/api/pipelines`, "GET", { token: session.token, readOk: true });
    expect(read.status).toBe(200);
    expect((read.json as { pipelines: unknown[] }).pipelines.length).toBe(1);
    const write = await rawRequest(`${s.url}/api/pipelines/etl/pipeline_schedules`, "POST", { token: session.token, body: JSON.stringify({ pipeline_schedule: { name: "x" } }) });
    expect(write.status).toBe(403);

    const out = await rawRequest(`${s.url}/api/sessions`, "DELETE", { token: session.token, readOk: true });
    expect(out.status).toBe(200);
    expect(Date.parse(String((out.json as { session: { ended_at: string } }).session.ended_at))).toBeGreaterThan(0);
    expect((await rawRequest(`${s.url}/api/pipelines`, "GET", { token: session.token })).status).toBe(401);
    // another session of the same user is not ended with it
    const again = (await login(s, { email: "matrix", password: PASSWORD })).json.session as { token: string };
    expect((await rawRequest(`${s.url}/api/pipelines`, "GET", { token: again.token })).status).toBe(200);
  });

  test("a wrong password and an unknown user get the same 401; malformed sign-ins are 400 naming the field", async () => {
    const wrongPassword = await login(s, { username: "matrix", password: "not the password" });
    const unknownUser = await login(s, { username: "nobody", password: PASSWORD });
    expect(wrongPassword.status).toBe(401);
    expect(unknownUser.status).toBe(401);
    expect(wrongPassword.json).toEqual(unknownUser.json);
    expect((wrongPassword.json.error as { message: string }).message).toBe("invalid username or password");

    const missing = await login(s, { username: "matrix" });
    expect(missing.status).toBe(400);
    expect((missing.json.error as { details: Array<{ field: string }> }).details.map((d) => d.field)).toContain("session.password");
    const both = await login(s, { username: "matrix", email: "matrix", password: PASSWORD });
    expect(both.status).toBe(400);
    expect((await s.call("DELETE", "/api/sessions", { role: "viewer", body: {} })).status).toBe(400);
  });

  test("five wrong passwords for a username from one client shut that client's sign-in for it for a while (429, Retry-After), even with the right password; other users are not affected", async () => {
    expect((await s.call("POST", "/api/users", { body: { user: { username: "guessed", password: PASSWORD, role: "viewer" } } })).status).toBe(201);
    for (let i = 0; i < 5; i++) expect((await login(s, { username: "guessed", password: `guess ${i}` })).status).toBe(401);
    const refused = await rawRequest(`${s.url}/api/sessions`, "POST", { body: JSON.stringify({ session: { username: "guessed", password: PASSWORD } }), readOk: true });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(String((refused.json as { error: { message: string } }).error.message)).toMatch(/too many sign-in attempts/);
    // the username is matched without case, so changing it does not start a fresh count
    expect((await login(s, { username: "GUESSED", password: PASSWORD })).status).toBe(429);
    expect((await login(s, { username: "matrix", password: PASSWORD })).status).toBe(201);
  });

  test("a deleted user's token stops working; tokens not signed by this server, or with alg none, are refused", async () => {
    const user = (await s.call("POST", "/api/users", { body: { user: { username: "leaving", password: PASSWORD, role: "admin" } } })).json.user as { id: number };
    const token = ((await login(s, { username: "leaving", password: PASSWORD })).json.session as { token: string }).token;
    expect((await rawRequest(`${s.url}/api/users`, "GET", { token })).status).toBe(200);
    expect((await s.call("DELETE", `/api/users/${user.id}`)).status).toBe(200);
    expect((await rawRequest(`${s.url}/api/users`, "GET", { token })).status).toBe(401);

    const matrixId = ((await s.call("GET", "/api/users")).json.users as Array<{ id: number; username: string }>).find((u) => u.username === "matrix")?.id;
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const forged = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setIssuer("kiln").setSubject(String(matrixId)).setJti("forged").setExpirationTime(exp).sign(new Uint8Array(32));
    expect((await rawRequest(`${s.url}/api/pipelines`, "GET", { token: forged })).status).toBe(401);
    const b64 = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const none = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: String(matrixId), iss: "kiln", jti: "none", exp })}.`;
    expect((await rawRequest(`${s.url}/api/pipelines`, "GET", { token: none })).status).toBe(401);
    expect((await rawRequest(`${s.url}/api/pipelines`, "GET", { token: `${none}x` })).status).toBe(401);
  });

  test("the signing key is kept in the database, sealed under KILN_SECRET_KEY: another server over it accepts the token", async () => {
    const token = ((await login(s, { username: "matrix", password: PASSWORD })).json.session as { token: string }).token;
    const stored = await s.client.execute("SELECT value FROM server_settings WHERE key = 'session_signing_key'");
    expect(String(stored.rows[0]?.value)).toMatch(/^v1:/);
    // a second app over the same database and key, as a replica or a restarted server would be
    const deps: ServerDeps = { store: s.store, project: () => s.project, clock: s.store.clock, version: "test", authEnabled: true, secretKey, bodyLimitBytes: 1 << 20 };
    const app = createApp(deps, { log: () => {} });
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
    try {
      expect((await rawRequest(`http://127.0.0.1:${server.port}/api/pipelines`, "GET", { token })).status).toBe(200);
      expect((await rawRequest(`http://127.0.0.1:${server.port}/api/pipelines`, "GET", { token: `${token.slice(0, -2)}AA` })).status).toBe(401);
    } finally {
      server.stop(true);
    }
  });

  test("an expired token is refused", async () => {
    const short = await serverFixture(undefined, { sessionTtlMs: 2500 });
    try {
      expect((await short.call("POST", "/api/users", { body: { user: { username: "brief", password: PASSWORD, role: "viewer" } } })).status).toBe(201);
      const token = ((await login(short, { username: "brief", password: PASSWORD })).json.session as { token: string }).token;
      expect((await rawRequest(`${short.url}/api/pipelines`, "GET", { token })).status).toBe(200);
      await until(async () => (await rawRequest(`${short.url}/api/pipelines`, "GET", { token })).status === 401, "the session to expire", 10_000);
    } finally {
      await short.close();
    }
  });
});

describe("API keys over the API (admin)", () => {
  test("create (the key shown once), use, list without secrets, revoke; editors get 403", async () => {
    const created = await s.call("POST", "/api/api_keys", { body: { api_key: { name: "ci", role: "editor" } } });
    expect(created.status).toBe(201);
    const apiKey = created.json.api_key as { id: number; key: string; role: Role };
    expect(apiKey.key).toMatch(new RegExp(`^kiln_${apiKey.id}_[A-Za-z0-9_-]{43}$`));
    expect((await rawRequest(`${s.url}/api/pipelines`, "GET", { token: apiKey.key })).status).toBe(200);

    const listed = await s.call("GET", "/api/api_keys");
    const used = (listed.json.api_keys as Array<{ id: number; last_used_at: string | null }>).find((k) => k.id === apiKey.id);
    expect(Date.parse(String(used?.last_used_at))).toBeGreaterThan(0);
    const text = JSON.stringify(listed.json);
    expect(text).not.toContain(apiKey.key);
    expect(text).not.toContain("key_hash");
    expect((listed.json.api_keys as Array<{ id: number }>).map((k) => k.id)).toContain(apiKey.id);
    expect((await s.call("GET", "/api/api_keys", { role: "editor" })).status).toBe(403);

    expect((await s.call("DELETE", `/api/api_keys/${apiKey.id}`)).status).toBe(200);
    expect((await rawRequest(`${s.url}/api/pipelines`, "GET", { token: apiKey.key })).status).toBe(401);
    expect((await s.call("DELETE", `/api/api_keys/${apiKey.id}`)).status).toBe(404);
    const bad = await s.call("POST", "/api/api_keys", { body: { api_key: { name: "x", role: "owner" } } });
    expect(bad.status).toBe(400);
    expect((bad.json.error as { details: Array<{ field: string }> }).details.map((d) => d.field)).toContain("api_key.role");
  });
});
