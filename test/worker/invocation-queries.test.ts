/**
 * What each Worker invocation asks the database, under workerd with D1: the schema check and the
 * sealing of plaintext trigger tokens run on an isolate's first invocation only, not on every
 * request. The Worker is the benchmark's (bench/worker.ts), built with bench/worker-instrument.ts,
 * which records each invocation's D1 statements.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { generateSecretKey } from "@kiln/core/runtime";
import { buildWorker } from "../../bench/worker.ts";
import type { InvocationRecord } from "../../bench/worker-instrument.ts";
import { REPO_ROOT } from "../helpers/fixtures.ts";

let dir: string;
let mf: Miniflare | null = null;
let url: string;

beforeAll(async () => {
  dir = join(REPO_ROOT, "test-artifacts", `worker-queries-${crypto.randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  const script = buildWorker(dir);
  mf = new Miniflare({
    modules: true,
    scriptPath: script,
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2026-04-01",
    compatibilityFlags: ["nodejs_compat"],
    host: "127.0.0.1",
    port: 0,
    d1Databases: { DB: "kiln" },
    d1Persist: join(dir, "d1"),
    durableObjects: { KILN_SCHEDULER: { className: "KilnScheduler", useSQLite: true } },
    durableObjectsPersist: join(dir, "do"),
    bindings: { KILN_SECRET_KEY: generateSecretKey(), KILN_BENCH_TRACE: "1" },
  });
  url = (await mf.ready).toString().replace(/\/$/, "");
}, 180_000);

afterAll(async () => {
  await mf?.dispose();
  if (dir && !process.env.KILN_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
}, 30_000);

const MIGRATIONS_READ = "SELECT id FROM migrations";
const TOKENS_READ = "SELECT id, token FROM pipeline_schedules WHERE token IS NOT NULL";

describe("a Worker invocation's queries", () => {
  test("the schema check and the token sealing run on the isolate's first request only", async () => {
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}/api/health`)).status).toBe(200);
    const { records } = (await (await fetch(`${url}/__bench/invocations`)).json()) as { records: InvocationRecord[] };
    const requests = records.filter((r) => r.kind === "fetch" && r.path === "/api/health");
    expect(requests).toHaveLength(3);
    const [first, ...later] = requests.map((r) => r.statements ?? []);
    expect(first).toContain(MIGRATIONS_READ);
    expect(first!.some((s) => s.startsWith(TOKENS_READ))).toBe(true);
    for (const statements of later) {
      expect(statements).not.toContain(MIGRATIONS_READ);
      expect(statements.some((s) => s.startsWith(TOKENS_READ))).toBe(false);
      // nothing else a health check would need the database for either
      expect(statements).toEqual([]);
    }
  }, 60_000);
});
