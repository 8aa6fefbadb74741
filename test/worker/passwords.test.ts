/**
 * Passwords where PBKDF2 is capped (Cloudflare Workers: 100,000 iterations): the server hashes
 * at the cap, a hash made there verifies everywhere, and a costlier hash made on Bun, Deno or
 * Node is refused with a message saying what to do, never a 500 or a silent "wrong password".
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createUser, hashPassword, PasswordCostError, verifyPassword } from "@kiln/core/auth";
import { WORKER_PASSWORD_ITERATIONS } from "@kiln/worker";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

describe("password hashing capped for Workers", () => {
  let s: ServerFixture;
  beforeAll(async () => {
    s = await serverFixture(undefined, { passwordIterations: WORKER_PASSWORD_ITERATIONS });
  });
  afterAll(() => s.close());

  test("verifyPassword refuses a hash above the cap with PasswordCostError, and accepts one at it", async () => {
    const costly = await hashPassword("correct horse battery", { iterations: WORKER_PASSWORD_ITERATIONS + 1 });
    const capped = await hashPassword("correct horse battery", { iterations: WORKER_PASSWORD_ITERATIONS });
    await expect(verifyPassword("correct horse battery", costly, { maxIterations: WORKER_PASSWORD_ITERATIONS })).rejects.toBeInstanceOf(PasswordCostError);
    expect(await verifyPassword("correct horse battery", capped, { maxIterations: WORKER_PASSWORD_ITERATIONS })).toBe(true);
    expect(await verifyPassword("wrong horse battery", capped, { maxIterations: WORKER_PASSWORD_ITERATIONS })).toBe(false);
    // and without a cap (Bun, Deno, Node) the costlier one verifies
    expect(await verifyPassword("correct horse battery", costly)).toBe(true);
  });

  test("a user created through the capped server is hashed at the cap and signs in there and anywhere", async () => {
    const created = await s.call("POST", "/api/users", { body: { user: { username: "edge-user", password: "long enough password", role: "viewer" } } });
    expect(created.status).toBe(201);
    const row = await s.client.execute({ sql: "SELECT password_hash FROM users WHERE username = ?", args: ["edge-user"] });
    const stored = String(row.rows[0]?.password_hash);
    expect(stored).toStartWith(`pbkdf2-sha256$${WORKER_PASSWORD_ITERATIONS}$`);
    expect(await verifyPassword("long enough password", stored)).toBe(true);
    const signedIn = await s.call("POST", "/api/sessions", { role: null, body: { session: { username: "edge-user", password: "long enough password" } } });
    expect(signedIn.status).toBe(201);
  });

  test("a user hashed at the default cost elsewhere gets 409 saying why, not a 500", async () => {
    await createUser(s.client, { username: "bun-user", password: "long enough password", role: "viewer" }, Date.now());
    const refused = await s.call("POST", "/api/sessions", { role: null, body: { session: { username: "bun-user", password: "long enough password" } } });
    expect(refused.status).toBe(409);
    expect((refused.json.error as { message: string }).message).toContain("PBKDF2 iterations, and this runtime computes at most 100000");
    // an unknown user is still a plain 401 (the decoy hash is made at the cap too)
    const unknown = await s.call("POST", "/api/sessions", { role: null, body: { session: { username: "nobody", password: "long enough password" } } });
    expect(unknown.status).toBe(401);
  });
});
