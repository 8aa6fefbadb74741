/**
 * The store contract (core's STORE_CONFORMANCE_CASES) on Cloudflare D1, run under workerd: a
 * Worker bundled by wrangler holds the store and the D1 adapter (worker/src/d1-client.ts), and
 * runs one case per request against Miniflare's D1; this file asks for each case by name. The
 * same cases run against a libSQL file and a libSQL server (test/core/store-conformance.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { STORE_CONFORMANCE_CASES } from "@kiln/core/store";
import { REPO_ROOT } from "../helpers/fixtures.ts";
import { bundleWorker } from "../helpers/wrangler.ts";

let dir: string;
let mf: Miniflare | null = null;

const SOURCE = `
import { STORE_CONFORMANCE_CASES } from ${JSON.stringify(join(REPO_ROOT, "core/src/store/index.ts"))};
import { d1Client } from ${JSON.stringify(join(REPO_ROOT, "worker/src/d1-client.ts"))};
export default {
  async fetch(request, env) {
    const name = await request.text();
    const found = STORE_CONFORMANCE_CASES.find((c) => c.name === name);
    if (!found) return Response.json({ error: "no case named " + name }, { status: 404 });
    try {
      await found.run({ client: async () => d1Client(env.DB), emptyDatabase: async () => d1Client(env.EMPTY) });
      return Response.json({ ok: true });
    } catch (error) {
      return Response.json({ error: String(error && error.stack || error) }, { status: 500 });
    }
  },
};
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-d1-store-"));
  writeFileSync(join(dir, "worker.js"), SOURCE);
  writeFileSync(join(dir, "wrangler.toml"), 'name = "kiln-d1-store"\nmain = "worker.js"\ncompatibility_date = "2026-04-01"\ncompatibility_flags = ["nodejs_compat"]\n');
  bundleWorker(dir);
  mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist/worker.js"),
    modulesRoot: join(dir, "dist"),
    compatibilityDate: "2026-04-01",
    compatibilityFlags: ["nodejs_compat"],
    // Miniflare's D1 is the local D1 `wrangler dev` uses: SQLite in workerd, behind the same binding API
    d1Databases: { DB: "kiln-store", EMPTY: "kiln-empty" },
    d1Persist: join(dir, "d1"),
  });
}, 120_000);

afterAll(async () => {
  await mf?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the store contract on D1 under workerd", () => {
  for (const c of STORE_CONFORMANCE_CASES) {
    test(c.name, async () => {
      const response = await mf!.dispatchFetch("http://worker/", { method: "POST", body: c.name });
      const body = (await response.json()) as { ok?: boolean; error?: string };
      expect(body.error ?? null).toBeNull();
      expect(response.status).toBe(200);
    }, 60_000);
  }
});
