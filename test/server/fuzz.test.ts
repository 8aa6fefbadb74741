/**
 * Property-based: malformed bodies, paths and queries, sent with an admin key to every route the
 * OpenAPI document lists (so routes added later are fuzzed too). Each request is built to be
 * invalid whatever the route accepts (read from the route's own schema), so every answer must be
 * a 4xx with the error envelope and a message, and the database must not change.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { until } from "../helpers/fixtures.ts";
import { fetchDocument, fillPath, isIdParam, operationsOf, rawRequest, tableOfIdParam, type JsonSchema, type Operation } from "../helpers/openapi.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

/** A short run by default (CI); `bun run chaos -- --fuzz` sends 10,000 (KILN_FUZZ_RUNS) with its own seed. */
const SEED = Number(process.env.KILN_FUZZ_SEED ?? 20_240_415);
const RUNS = Number(process.env.KILN_FUZZ_RUNS ?? 2_000);
/** Every table's digest is compared after each batch this size, so a write is pinned to a few requests. */
const BATCH = 50;
const API_TOKEN = "fuzz-api-token-0123456789";

let s: ServerFixture;
let ops: Operation[];
let apiScheduleId = 0;
/** Real values for path parameters, so a malformed body or query reaches the route's validation. */
const real = new Map<string, Record<string, string>>();

interface FuzzRequest {
  method: string;
  path: string;
  body?: string | Uint8Array;
  /** What was malformed, for the failure message. */
  what: string;
}

// ---------------------------------------------------------------------------------------------
// values of the wrong JSON type for a schema

type JsonType = "string" | "number" | "boolean" | "array" | "object" | "null";

/** The JSON types a schema accepts, or null when it does not say (anything may be accepted). */
function acceptedTypes(schema: JsonSchema): Set<JsonType> | null {
  const out = new Set<JsonType>();
  const add = (s: JsonSchema): boolean => {
    if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf ?? []).every(add);
    const types = s.type === undefined ? (s.enum ? [...new Set(s.enum.map((e) => (e === null ? "null" : typeof e)))] : null) : Array.isArray(s.type) ? s.type : [s.type];
    if (!types) return false;
    for (const t of types) {
      if (t === "integer" || t === "number") out.add("number");
      else if (t === "object") {
        out.add("object");
        // valibot's record takes an array as an object with numeric keys, so arrays are not reliably wrong here
        out.add("array");
      } else out.add(t as JsonType);
    }
    if (s.nullable) out.add("null");
    return true;
  };
  return add(schema) ? out : null;
}

/** Lone surrogates, replacement characters, NULs, right-to-left marks: text that trips up naive code. */
const nastyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("\ud800", "\udfff", "a\ud83d", "\u0000", "\ufffd\ufffd", "\u202e", "'; DROP TABLE users; --", "%00", "../../etc/passwd", "x".repeat(5000)),
);

function deepArray(depth: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

const wrongValue: Record<JsonType, fc.Arbitrary<unknown>> = {
  string: nastyString,
  number: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e308, -1e308, 2 ** 64, Number.MAX_SAFE_INTEGER + 2, -0.5, 0)),
  boolean: fc.boolean(),
  array: fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }), fc.integer({ min: 1, max: 3000 }).map(deepArray)),
  object: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  null: fc.constant(null),
};

/** A value the schema refuses by its type, or null when every type might be accepted. */
function wrongTypeFor(schema: JsonSchema): fc.Arbitrary<unknown> | null {
  const accepted = acceptedTypes(schema);
  if (!accepted) return null;
  const wrong = (Object.keys(wrongValue) as JsonType[]).filter((t) => !accepted.has(t));
  return wrong.length === 0 ? null : fc.oneof(...wrong.map((t) => wrongValue[t]));
}

/** Instants outside kiln's bounds (0001-01-01..9999-12-31 UTC), or not days at all: each once wrote a run with a NaN partition. */
const outOfRangeDate = fc.constantFrom(8640000000000001, -8640000000000001, 1e308, 253402300800000, -62135596800001, 1.5, "+275760-09-13T00:00:00.000Z", "10000-01-01T00:00:00Z", "2024-02-30T00:00:00Z");

/** Properties that take an instant, by their names in kiln's API (execution_date, start_time, start_datetime, ...). */
const DATE_PROPERTY = /(^|_)(date|time|datetime)$/;

/** A key no schema of kiln's declares. */
const unknownKey = fc.string({ minLength: 1, maxLength: 12 }).map((k) => `zz_${k}`);

/**
 * JSON values the object schema refuses: an unknown key where extra keys are refused, or a known
 * property (at any depth) of the wrong type; the enclosing objects hold only that one key.
 */
function invalidObject(schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> | null {
  const options: fc.Arbitrary<unknown>[] = [];
  if (schema.additionalProperties === false) {
    options.push(fc.tuple(unknownKey, fc.oneof(fc.jsonValue({ maxDepth: 3 }), wrongValue.array)).map(([k, v]) => ({ [k]: v })));
  }
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const wrong = wrongTypeFor(prop);
    if (wrong) options.push(wrong.map((v) => ({ [name]: v })));
    if (DATE_PROPERTY.test(name)) options.push(outOfRangeDate.map((v) => ({ [name]: v })));
    const nested = depth < 4 && acceptedTypes(prop)?.has("object") ? invalidObject(prop, depth + 1) : null;
    if (nested) options.push(nested.map((v) => ({ [name]: v })));
  }
  return options.length === 0 ? null : fc.oneof(...options);
}

/** Bytes that are not JSON, whatever follows: `{'`, a trailing `}{`, invalid UTF-8, too-large bodies. */
const notJson: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: nastyString.map((t) => `{'${t}`) },
  { weight: 4, arbitrary: nastyString.map((t) => `${t}}{`) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 30 }).map((b) => new Uint8Array([0x7b, 0xff, 0xfe, ...b])) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }).map((d) => `${"[".repeat(d)}${"]".repeat(d - 1)}`) },
  { weight: 1, arbitrary: fc.constant(`{"a":"${"x".repeat(1_100_000)}"}`) },
  // valid JSON nested 100,000 deep (arrays, then objects): once a 500 (stack overflow) on token-only routes
  { weight: 1, arbitrary: fc.constantFrom(`{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}`, `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`) },
);

/** Bodies the route's schema refuses. */
function badBodies(op: Operation): fc.Arbitrary<string | Uint8Array> {
  const schema = op.body as JsonSchema;
  const options: fc.Arbitrary<string | Uint8Array>[] = [notJson];
  const accepted = acceptedTypes(schema);
  if (accepted && !accepted.has("array")) options.push(wrongValue.array.map((v) => JSON.stringify(v)));
  if (accepted?.size === 2 && accepted.has("object")) {
    // a top-level scalar: numbers written as JSON text, including ones beyond a double
    options.push(fc.oneof(wrongValue.number.map((n) => JSON.stringify(n)), fc.constantFrom("-1e400", "1e999", "123456789012345678901234567890", "null", "true", '"\\ud800"'), nastyString.map((t) => JSON.stringify(t))));
    const invalid = invalidObject(schema);
    if (invalid) options.push(invalid.map((v) => JSON.stringify(v)));
  }
  return fc.oneof(...options);
}

// ---------------------------------------------------------------------------------------------
// malformed path segments and queries

const BAD_ENCODINGS = ["%ff", "%c3%28", "%e2%82", "%", "%zz", "%00", "%ed%a0%80"];

/** A path segment that is not a canonical positive id (percent-encoded unless it is raw junk). */
const badId = fc.oneof(
  fc.constantFrom("0", "-1", "1.5", "1e3", "007", " 1", "0x10", "99999999999999999999", "9007199254740993", "Infinity", "NaN", "null", "true", "[1]", "%20", "1%00"),
  nastyString.filter((t) => !/^[1-9][0-9]*$/.test(t) && !/^\.*$/.test(t) && t.length > 0).map((t) => encodeURIComponent(t.replace(/[\ud800-\udfff]/g, "\ufffd"))),
  fc.constantFrom(...BAD_ENCODINGS),
);

/** A segment with at least one character kiln's names (uuids, secret names) never have. */
const badName = fc.oneof(
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom(" ", "!", "$", "'", "\"", "<", ">", "é", "\u0000", ":", ";", "/", "\\", "\ufffd"), fc.string({ maxLength: 10 })).map(([a, c, b]) => encodeURIComponent(`${a}${c}${b}`.replace(/[\ud800-\udfff]/g, "\ufffd"))),
  fc.constantFrom(...BAD_ENCODINGS),
  fc.constant("a".repeat(300)),
);

/** A value outside what a query parameter's schema allows, or null when its schema allows any string. */
function badQueryValue(schema: JsonSchema): fc.Arbitrary<string> | null {
  const pattern = schema.pattern ? new RegExp(schema.pattern) : null;
  if (pattern) return fc.oneof(nastyString, fc.constantFrom("0", "-1", "1.5", "99999999999999999999", "")).filter((t) => !pattern.test(t));
  if (schema.enum) return nastyString.filter((t) => !schema.enum?.includes(t));
  if (schema.maxLength !== undefined) return fc.integer({ min: schema.maxLength + 1, max: schema.maxLength + 100 }).map((n) => "q".repeat(n));
  if (schema.minLength !== undefined && schema.minLength > 0) return fc.constant("");
  return null;
}

const queryString = (pairs: Array<[string, string]>) => new URLSearchParams(pairs).toString();

function requestsFor(op: Operation): fc.Arbitrary<FuzzRequest>[] {
  const values = real.get(`${op.method} ${op.path}`) as Record<string, string>;
  const path = fillPath(op.path, values);
  const arbs: fc.Arbitrary<FuzzRequest>[] = [];
  if (op.body) arbs.push(badBodies(op).map((body) => ({ method: op.method, path, body, what: "body" })));
  for (const param of op.pathParams) {
    const segment = isIdParam(param) ? badId : param === "token" ? fc.constantFrom(...BAD_ENCODINGS, "x", "short") : badName;
    arbs.push(segment.map((bad) => ({ method: op.method, path: fillPath(op.path, { ...Object.fromEntries(Object.entries(values).map(([k, v]) => [k, encodeURIComponent(v)])), [param]: bad }, true), what: `path :${param}` })));
  }
  if (op.query.length > 0) {
    // strict query schemas refuse a key they do not know
    arbs.push(
      fc.tuple(fc.oneof(unknownKey, fc.constantFrom(...BAD_ENCODINGS).map((e) => `zz${e}`)), nastyString).map(([k, v]) => ({
        method: op.method,
        path: `${path}?${k.includes("%") ? `${k}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, "\ufffd"))}` : queryString([[k, v.replace(/[\ud800-\udfff]/g, "\ufffd")]])}`,
        what: "query key",
      })),
    );
    for (const q of op.query) {
      const bad = badQueryValue(q.schema);
      if (bad) arbs.push(bad.map((v) => ({ method: op.method, path: `${path}?${queryString([[q.name, v.replace(/[\ud800-\udfff]/g, "\ufffd")]])}`, what: `query ${q.name}` })));
    }
  }
  return arbs;
}

// ---------------------------------------------------------------------------------------------
// the database, every table, before and after

async function snapshot(): Promise<Record<string, string>> {
  const tables = await s.client.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
  const out: Record<string, string> = {};
  for (const row of tables.rows) {
    const name = String(row.name);
    const rs = await s.client.execute(`SELECT * FROM "${name}"`);
    const rows = rs.rows.map((r) => JSON.stringify(rs.columns.map((c) => (typeof r[c] === "bigint" ? String(r[c]) : r[c])))).sort();
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(rows.join("\n")));
    out[name] = `${rows.length} rows, sha256 ${Buffer.from(digest).toString("hex").slice(0, 16)}`;
  }
  return out;
}

async function maxId(table: string | null): Promise<string> {
  if (!table) return "1";
  const exists = await s.client.execute({ sql: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", args: [table] });
  if (exists.rows.length === 0) return "1";
  const rs = await s.client.execute(`SELECT max(id) AS id FROM "${table}"`);
  return rs.rows[0]?.id === null || rs.rows[0]?.id === undefined ? "1" : String(rs.rows[0].id);
}

beforeAll(async () => {
  s = await serverFixture();
  ops = operationsOf(await fetchDocument(s));
  const created = await s.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "fuzz_api", schedule_type: "api", status: "active", token: API_TOKEN } } });
  apiScheduleId = (created.json.pipeline_schedule as { id: number }).id;
  const run = await s.call("POST", `/api/pipeline_schedules/${apiScheduleId}/pipeline_runs/${API_TOKEN}`, { role: null, body: {} });
  const runId = (run.json.pipeline_run as { id: number }).id;
  await until(async () => (await s.client.execute({ sql: "SELECT status FROM pipeline_runs WHERE id = ?", args: [runId] })).rows[0]?.status === "completed", "the run to complete");
  await s.call("POST", "/api/pipelines/etl/backfills", { body: { backfill: { name: "fuzz", start_datetime: "2024-01-01", end_datetime: "2024-01-03", interval_type: "day" } } });
  await s.call("POST", "/api/secrets", { body: { secret: { name: "FUZZ", value: "v" } } });
  await s.call("POST", "/api/users", { body: { user: { username: "fuzz", password: "fuzz-password", role: "viewer" } } });
  // the session signing key is made on first use: make it now, so it is not counted as a write
  await s.call("GET", "/api/pipelines", { role: null, headers: { authorization: "Bearer a.b.c" } });
  // nothing but the requests may write from here: no scheduler ticking
  await s.scheduler.stop(5_000);
  for (const op of ops) {
    const values: Record<string, string> = {};
    for (const param of op.pathParams) {
      if (param === "uuid" || param === "pipeline_uuid") values[param] = "etl";
      else if (param === "token") values[param] = API_TOKEN;
      else if (param === "name") values[param] = "FUZZ";
      else if (op.pathParams.includes("token") && param === "id") values[param] = String(apiScheduleId);
      else if (isIdParam(param)) values[param] = await maxId(tableOfIdParam(op.path, param));
      else values[param] = "x";
    }
    real.set(`${op.method} ${op.path}`, values);
  }
});
afterAll(() => s.close());

describe("fuzz", () => {
  test(`${RUNS} malformed bodies, paths and queries on every documented route: only 4xx with a message, nothing written`, async () => {
    const fuzzable = ops.filter((op) => requestsFor(op).length > 0);
    // a route that takes no input at all has nothing to malform; every other one is in
    expect(ops.filter((op) => !fuzzable.includes(op)).every((op) => op.pathParams.length === 0 && op.query.length === 0 && !op.body)).toBe(true);
    expect(fuzzable.length).toBeGreaterThan(20);
    const before = await snapshot();
    const seen = new Map<string, number>();
    const statuses = new Map<number, number>();
    let sent = 0;
    let batch: string[] = [];
    let digests = 0;
    /** Every table as it was before the first request, or an error naming the batch that changed one. */
    const checkUnchanged = async () => {
      const now = await snapshot();
      digests++;
      const changed = Object.keys({ ...before, ...now }).filter((t) => before[t] !== now[t]);
      if (changed.length > 0) {
        throw new Error(`tables ${changed.map((t) => `${t} (${before[t] ?? "absent"} -> ${now[t] ?? "absent"})`).join(", ")} changed during the batch of 4xx requests:\n${batch.join("\n")}`);
      }
      batch = [];
    };
    await fc.assert(
      fc.asyncProperty(fc.oneof(...fuzzable.flatMap(requestsFor)), async (request) => {
        sent++;
        const answer = await rawRequest(`${s.url}${request.path}`, request.method, { token: s.keys.admin, ...(request.body !== undefined ? { body: request.body } : {}) });
        const where = `${request.method} ${request.path.slice(0, 200)} (${request.what}${typeof request.body === "string" ? `: ${request.body.slice(0, 200)}` : ""})`;
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        batch.push(`${where} -> ${answer.status}`);
        if (answer.status < 400 || answer.status >= 500) throw new Error(`${where} answered ${answer.status}`);
        if (!answer.contentType.includes("application/json")) throw new Error(`${where} answered ${answer.status} without JSON`);
        if (typeof answer.error?.code !== "string" || typeof answer.error.message !== "string" || answer.error.message.length === 0) {
          throw new Error(`${where} answered ${answer.status} without {"error": {"code", "message"}}: ${JSON.stringify(answer.json)?.slice(0, 200)}`);
        }
        seen.set(request.what.split(" ")[0] as string, (seen.get(request.what.split(" ")[0] as string) ?? 0) + 1);
        if (batch.length >= BATCH) await checkUnchanged();
      }),
      // no shrinking: a batch's digest depends on every request before it, so a shrunk replay would mislead
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    if (batch.length > 0) await checkUnchanged();
    const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status}: ${n}`).join(", ");
    console.log(`fuzz: seed ${SEED}, ${sent} requests to ${fuzzable.length} routes, ${digests} table digests compared; answers ${byStatus}; 5xx: ${[...statuses].filter(([st]) => st >= 500).reduce((n, [, c]) => n + c, 0)}`);
    expect(sent).toBe(RUNS);
    expect(sent).toBeGreaterThanOrEqual(1000);
    expect([...statuses.keys()].filter((status) => status >= 500)).toEqual([]);
    // each kind of malformation was exercised
    expect(seen.get("body") ?? 0).toBeGreaterThan(100);
    expect(seen.get("path") ?? 0).toBeGreaterThan(100);
    expect(seen.get("query") ?? 0).toBeGreaterThan(100);
    expect(await snapshot()).toEqual(before);
  });
});
