/**
 * Sign-in throttling over real HTTP from two client addresses (127.0.0.2 and 127.0.0.1, both
 * loopback): a flood of failures for a user locks out only the client that sent it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { request } from "node:http";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

let s: ServerFixture;
beforeAll(async () => {
  s = await serverFixture();
});
afterAll(() => s.close());

const PASSWORD = "correct horse battery staple";

/** POST /api/sessions from the given local address. */
function signInFrom(localAddress: string, username: string, password: string): Promise<{ status: number; retryAfter: string | undefined }> {
  const url = new URL("/api/sessions", s.url);
  const body = JSON.stringify({ session: { username, password } });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST", localAddress, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("a flood of failures for a user from one client does not stop that user's correct sign-in from another client", async () => {
  expect((await s.call("POST", "/api/users", { body: { user: { username: "victim", password: PASSWORD, role: "admin" } } })).status).toBe(201);
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await signInFrom("127.0.0.2", "victim", `guess ${i}`)).status);
  expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
  expect(statuses).toContain(429);
  // the attacker's client is held off even with the right password, and told for how long
  const held = await signInFrom("127.0.0.2", "victim", PASSWORD);
  expect(held.status).toBe(429);
  expect(Number(held.retryAfter)).toBeGreaterThan(0);
  // the user, from a client that has not failed, signs in at once
  expect((await signInFrom("127.0.0.1", "victim", PASSWORD)).status).toBe(201);
});
