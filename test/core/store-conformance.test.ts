/**
 * The store contract (core's STORE_CONFORMANCE_CASES) on libSQL: a database file through
 * @kiln/node's local client, and a libSQL server (sqld) over HTTP, as a Worker reaches it. The
 * same cases run on Cloudflare D1 under workerd in test/worker/d1-store.test.ts.
 */
import { afterAll, beforeAll, describe, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { runStoreConformance, type SqlClient } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { startLibsqlServer, type LibsqlServer } from "../helpers/libsql-server.ts";

const opened: SqlClient[] = [];
const track = (client: SqlClient) => (opened.push(client), client);
let dir: string;
const servers: LibsqlServer[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-store-conformance-"));
  servers.push(await startLibsqlServer(), await startLibsqlServer());
});

afterAll(() => {
  for (const client of opened) client.close();
  for (const server of servers) server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the store contract on a libSQL file", () => {
  runStoreConformance(test, {
    client: async () => track(await openDatabase(`file:${join(dir, "kiln.db")}`)),
    emptyDatabase: async () => track(await openDatabase(`file:${join(dir, "empty.db")}`)),
  });
});

describe("the store contract on a libSQL server over HTTP", () => {
  runStoreConformance(test, {
    client: async () => track(createClient({ url: servers[0]!.url })),
    emptyDatabase: async () => track(createClient({ url: servers[1]!.url })),
  });
});
