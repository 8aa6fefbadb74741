/**
 * Slows password guessing: after a run of failed sign-ins for one username, further attempts
 * for it are refused (429, Retry-After) until the oldest failure leaves the window. Keyed by
 * username rather than client address, which a proxy hides and a client can forge; the price
 * is that someone can hold a user's sign-in shut for a window (API keys still work), which is
 * the usual trade. Kept in the process: each replica counts its own attempts.
 */

/** Failures allowed per username within the window before sign-in is refused. */
export const MAX_FAILED_SIGN_INS = 5;
/** The window failures are counted in (ms). */
export const SIGN_IN_WINDOW_MS = 15 * 60 * 1000;
/** Usernames tracked at most, so a flood of made-up names cannot grow memory without bound. */
const MAX_TRACKED = 10_000;

export class SignInThrottle {
  readonly #failures = new Map<string, number[]>();

  constructor(
    private readonly limit = MAX_FAILED_SIGN_INS,
    private readonly windowMs = SIGN_IN_WINDOW_MS,
  ) {}

  /** Milliseconds until `username` may try again, or 0 when it may now. */
  retryAfterMs(username: string, now: number): number {
    const recent = this.#recent(username, now);
    if (recent.length < this.limit) return 0;
    return (recent[recent.length - this.limit] as number) + this.windowMs - now;
  }

  /** Counts a failed attempt. */
  failed(username: string, now: number): void {
    const key = username.toLowerCase();
    const recent = this.#recent(key, now);
    recent.push(now);
    this.#failures.delete(key);
    this.#failures.set(key, recent.slice(-this.limit));
    // the map keeps insertion order: the first key is the one that failed longest ago
    if (this.#failures.size > MAX_TRACKED) this.#failures.delete(this.#failures.keys().next().value as string);
  }

  /** A successful sign-in clears the username's failures. */
  succeeded(username: string): void {
    this.#failures.delete(username.toLowerCase());
  }

  #recent(username: string, now: number): number[] {
    return (this.#failures.get(username.toLowerCase()) ?? []).filter((at) => at > now - this.windowMs);
  }
}
