/** Which errors say the database is out of reach (retried, 503) rather than a statement refused. */
import { describe, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { isDatabaseUnavailable } from "@kiln/core/store";
import { freePort } from "../helpers/ports.ts";

describe("isDatabaseUnavailable", () => {
  test("a libSQL server nobody listens for, through the runtime's own fetch", async () => {
    const client = createClient({ url: `http://127.0.0.1:${await freePort()}` });
    const error = await client.execute("SELECT 1").catch((e: unknown) => e);
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  test("the codes other runtimes give, directly or as the cause (Node's fetch failed), and a locked file", () => {
    const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
    expect(isDatabaseUnavailable(new TypeError("fetch failed", { cause: withCode("connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED") }))).toBe(true);
    expect(isDatabaseUnavailable(withCode("read ECONNRESET", "ECONNRESET"))).toBe(true);
    expect(isDatabaseUnavailable(withCode("SQLITE_BUSY: database is locked", "SQLITE_BUSY"))).toBe(true);
    expect(isDatabaseUnavailable(new Error("Server returned HTTP status 503"))).toBe(true);
    // sqld for a moment after a restart, before it serves its routes
    expect(isDatabaseUnavailable(Object.assign(new Error("SERVER_ERROR: Server returned HTTP status 404"), { code: "SERVER_ERROR" }))).toBe(true);
  });

  test("a statement the database refused is not", () => {
    expect(isDatabaseUnavailable(Object.assign(new Error("SQLITE_CONSTRAINT: UNIQUE constraint failed"), { code: "SQLITE_CONSTRAINT" }))).toBe(false);
    expect(isDatabaseUnavailable(new Error("no such table: x"))).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
    expect(isDatabaseUnavailable("ECONNREFUSED")).toBe(false);
  });
});
