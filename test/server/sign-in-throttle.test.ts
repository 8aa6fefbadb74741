/**
 * The sign-in throttle over a real libSQL file, with explicit times (the HTTP behaviour, with
 * real clients at different addresses, is in test/security/sign-in.test.ts).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Store } from "@kiln/core/store";
import { openDatabase } from "@kiln/node";
import { SIGN_IN_POLICY, SignInThrottle } from "../../server/src/sign-in-throttle.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-throttle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function freshThrottle(name: string): Promise<{ throttle: SignInThrottle; rows: () => Promise<number>; close: () => void }> {
  const client = await openDatabase(`file:${join(dir, `${name}.db`)}`);
  await Store.open(client);
  return {
    throttle: new SignInThrottle(client),
    rows: async () => Number((await client.execute("SELECT count(*) AS n FROM sign_in_attempts")).rows[0]?.n),
    close: () => client.close(),
  };
}

/** One failed attempt: answers the wait the claim met (0 when it went ahead and failed). */
async function fail(throttle: SignInThrottle, client: string, username: string, now: number): Promise<number> {
  const claim = await throttle.claim(client, username, now);
  if (claim.retryAfterMs === 0) await claim.settle(false);
  return claim.retryAfterMs;
}

test("waits grow: none for the first five attempts, then 1 s, 2 s, 4 s; a refused attempt is not counted; success clears", async () => {
  const { throttle, close } = await freshThrottle("growing");
  let now = 1_000_000;
  for (let i = 0; i < 5; i++) expect(await fail(throttle, "10.0.0.1", "ana", now)).toBe(0);
  expect(await fail(throttle, "10.0.0.1", "ana", now)).toBe(1000);
  expect(await fail(throttle, "10.0.0.1", "Ana", now + 400)).toBe(600);
  now += 1000;
  expect(await fail(throttle, "10.0.0.1", "ana", now)).toBe(0);
  expect(await fail(throttle, "10.0.0.1", "ana", now)).toBe(2000);
  now += 2000;
  expect(await fail(throttle, "10.0.0.1", "ana", now)).toBe(0);
  expect(await fail(throttle, "10.0.0.1", "ana", now + 1)).toBe(3999);
  now += 4000;
  const right = await throttle.claim("10.0.0.1", "ana", now);
  expect(right.retryAfterMs).toBe(0);
  await right.settle(true);
  for (let i = 0; i < 5; i++) expect(await fail(throttle, "10.0.0.1", "ana", now)).toBe(0);
  close();
});

test("a flood of failures for a user from other clients does not stop a client that has not failed", async () => {
  const { throttle, close } = await freshThrottle("other-client");
  const now = 2_000_000;
  for (let attacker = 0; attacker < 50; attacker++) for (let i = 0; i < 8; i++) await fail(throttle, `203.0.113.${attacker}`, "admin", now);
  expect((await throttle.claim("203.0.113.7", "admin", now)).retryAfterMs).toBeGreaterThan(0);
  const owner = await throttle.claim("192.0.2.10", "admin", now);
  expect(owner.retryAfterMs).toBe(0);
  await owner.settle(true);
  close();
});

test("one client spraying many usernames is slowed too (per client, after 30 attempts)", async () => {
  const { throttle, close } = await freshThrottle("spray");
  const now = 3_000_000;
  for (let i = 0; i < 30; i++) expect(await fail(throttle, "198.51.100.1", `user${i}`, now)).toBe(0);
  expect(await fail(throttle, "198.51.100.1", "user-next", now)).toBe(1000);
  expect((await throttle.claim("198.51.100.2", "user-next", now)).retryAfterMs).toBe(0);
  close();
});

test("10,000 failures for made-up names from as many clients evict their own rows, never a real user's count; the table stays bounded", async () => {
  const { throttle, rows, close } = await freshThrottle("flood");
  const now = 4_000_000;
  for (let i = 0; i < 5; i++) await fail(throttle, "10.1.1.1", "ana", now);
  expect(await fail(throttle, "10.1.1.1", "ana", now)).toBe(1000);
  for (let i = 0; i < 10_000; i++) await fail(throttle, `10.${2 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, `made-up-${i}`, now + 1 + (i % 500));
  expect(await rows()).toBeLessThanOrEqual(SIGN_IN_POLICY.maxRows);
  expect(await fail(throttle, "10.1.1.1", "ana", now + 500)).toBe(500);
  close();
}, 120_000);
