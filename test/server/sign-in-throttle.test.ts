/** The sign-in throttle's window, with explicit times (the HTTP behaviour is in auth.test.ts). */
import { expect, test } from "bun:test";
import { SignInThrottle } from "../../server/src/sign-in-throttle.ts";

test("the sixth attempt within the window waits until the oldest of the last five failures leaves it; success clears", () => {
  const throttle = new SignInThrottle(5, 60_000);
  for (let i = 0; i < 5; i++) {
    expect(throttle.retryAfterMs("ana", 1_000 * i)).toBe(0);
    throttle.failed("ana", 1_000 * i);
  }
  expect(throttle.retryAfterMs("ana", 10_000)).toBe(60_000 - 10_000);
  expect(throttle.retryAfterMs("Ana", 10_000)).toBe(50_000);
  expect(throttle.retryAfterMs("bob", 10_000)).toBe(0);
  // the first failure (at 0) leaves the window at 60 s
  expect(throttle.retryAfterMs("ana", 60_000)).toBe(0);
  throttle.failed("ana", 60_500);
  expect(throttle.retryAfterMs("ana", 60_500)).toBe(1_000 + 60_000 - 60_500);
  throttle.succeeded("ANA");
  expect(throttle.retryAfterMs("ana", 60_500)).toBe(0);
});
