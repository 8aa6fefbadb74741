/** Secrets over HTTP: stored encrypted, names listed, values never answered; no key is a 409. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

const VALUE = "postgres://admin:hunter2-very-secret@db.internal:5432/prod";

let s: ServerFixture;
let key: CryptoKey;
beforeAll(async () => {
  key = await importSecretKey(generateSecretKey());
  s = await serverFixture(undefined, { secretKey: key });
});
afterAll(() => s.close());

const fields = (json: Record<string, unknown>) => (json.error as { details: Array<{ field: string }> }).details.map((d) => d.field);

describe("secrets", () => {
  test("set (201, then 200 on replace), list names only, delete; the database holds no plaintext", async () => {
    const created = await s.call("POST", "/api/secrets", { body: { secret: { name: "DB_URL", value: VALUE } } });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ secret: { name: "DB_URL" } });
    const replaced = await s.call("POST", "/api/secrets", { body: { secret: { name: "DB_URL", value: `${VALUE}?v=2` } } });
    expect(replaced.status).toBe(200);
    expect((await s.call("POST", "/api/secrets", { body: { secret: { name: "_token2", value: "" } } })).status).toBe(201);

    const listed = await s.call("GET", "/api/secrets", { role: "editor" });
    expect(listed.status).toBe(200);
    expect(listed.json).toEqual({ secrets: [{ name: "DB_URL" }, { name: "_token2" }], metadata: { count: 2, next: false, after: null } });
    expect(JSON.stringify(listed.json)).not.toContain("hunter2");

    const rows = await s.client.execute("SELECT name, value_encrypted FROM secrets ORDER BY name");
    const stored = String(rows.rows[0]?.value_encrypted);
    expect(stored).toMatch(/^v1:/);
    expect(stored).not.toContain("hunter2");
    expect(stored).not.toContain(btoa(VALUE).slice(0, 16));
    expect(await s.store.getSecret(key, "DB_URL")).toBe(`${VALUE}?v=2`);

    expect((await s.call("DELETE", "/api/secrets/_token2")).status).toBe(200);
    expect((await s.call("DELETE", "/api/secrets/_token2")).status).toBe(404);
    expect(await s.store.listSecretNames()).toEqual(["DB_URL"]);
  });

  test("roles: editors list, only admins set and delete, viewers neither", async () => {
    expect((await s.call("GET", "/api/secrets", { role: "viewer" })).status).toBe(403);
    expect((await s.call("POST", "/api/secrets", { role: "editor", body: { secret: { name: "X", value: "y" } } })).status).toBe(403);
    expect((await s.call("DELETE", "/api/secrets/DB_URL", { role: "editor" })).status).toBe(403);
    expect(await s.store.listSecretNames()).toEqual(["DB_URL"]);
  });

  test("bad names and values are 400 naming the field, and nothing is written", async () => {
    const cases: Array<[unknown, string]> = [
      [{ secret: { name: "1abc", value: "v" } }, "secret.name"],
      [{ secret: { name: "has-dash", value: "v" } }, "secret.name"],
      [{ secret: { name: "a".repeat(129), value: "v" } }, "secret.name"],
      [{ secret: { name: "ok", value: 12 } }, "secret.value"],
      [{ secret: { name: "ok", value: "x".repeat(64 * 1024 + 1) } }, "secret.value"],
      [{ secret: { name: "ok" } }, "secret.value"],
      [{ secret: { name: "ok", value: "v", extra: true } }, "secret.extra"],
      [{ secrets: { name: "ok", value: "v" } }, "secrets"],
    ];
    for (const [body, field] of cases) {
      const answer = await s.call("POST", "/api/secrets", { body });
      expect([field, answer.status]).toEqual([field, 400]);
      expect(fields(answer.json)).toContain(field);
    }
    const badPath = await s.call("DELETE", "/api/secrets/bad%20name");
    expect(badPath.status).toBe(400);
    expect(fields(badPath.json)).toContain("path.name");
    expect(await s.store.listSecretNames()).toEqual(["DB_URL"]);
  });

  test("without KILN_SECRET_KEY setting a secret is a 409 saying so; names still list", async () => {
    const keyless = await serverFixture(undefined, { secretKey: null });
    try {
      const answer = await keyless.call("POST", "/api/secrets", { body: { secret: { name: "X", value: "y" } } });
      expect(answer.status).toBe(409);
      expect((answer.json.error as { message: string }).message).toContain("KILN_SECRET_KEY");
      expect((await keyless.client.execute("SELECT count(*) AS n FROM secrets")).rows[0]?.n).toBe(0);
      expect((await keyless.call("GET", "/api/secrets")).json).toEqual({ secrets: [], metadata: { count: 0, next: false, after: null } });
    } finally {
      await keyless.close();
    }
  });
});
