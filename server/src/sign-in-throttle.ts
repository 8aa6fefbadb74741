/**
 * Slows password guessing without letting anyone lock a user out. Attempts are counted per
 * client and username, and per client (password spraying across usernames): after a few free
 * attempts each further one waits twice as long as the last, up to 15 minutes, and is refused
 * (429, Retry-After) until then. Another client's attempts never slow a user down, so a correct
 * password from a client that has not failed still succeeds whatever a flood elsewhere did.
 * Counts live in the database (every replica shares them) in a bounded table whose eviction a
 * flood of made-up names cannot use to erase the count of a name being guessed at.
 */
import { signInAttempts, type SqlClient } from "@kiln/core/store";

/** Attempts per client and username before waits begin. */
export const FREE_ATTEMPTS_PER_USER = 5;
/** Attempts per client (all usernames together) before waits begin. */
export const FREE_ATTEMPTS_PER_CLIENT = 30;

/** The policy kiln uses: 1 s doubling to 15 min, forgotten after a quiet day, 10,000 rows. */
export const SIGN_IN_POLICY: signInAttempts.SignInPolicy = {
  free: FREE_ATTEMPTS_PER_USER,
  baseDelayMs: 1000,
  maxDelayMs: 15 * 60 * 1000,
  forgetAfterMs: 24 * 60 * 60 * 1000,
  maxRows: 10_000,
};

/** A claimed attempt, to settle once the password was checked. */
export interface SignInClaim {
  /** 0 when the attempt may go ahead; else the milliseconds to wait, and nothing was claimed. */
  retryAfterMs: number;
  /** Records the outcome: a success clears the user's count from this client and gives back the client's. */
  settle(succeeded: boolean): Promise<void>;
}

export class SignInThrottle {
  constructor(
    private readonly client: SqlClient,
    private readonly policy: signInAttempts.SignInPolicy = SIGN_IN_POLICY,
    private readonly perClientFree = FREE_ATTEMPTS_PER_CLIENT,
  ) {}

  /** Claims an attempt by `client` (an address) for `username` (compared case-insensitively). */
  async claim(clientAddress: string, username: string, now: number): Promise<SignInClaim> {
    const userKey = `user:${clientAddress}:${username.toLowerCase()}`;
    const clientKey = `client:${clientAddress}`;
    const noop = async () => {};
    const waits = await Promise.all([signInAttempts.signInWaitMs(this.client, userKey, now), signInAttempts.signInWaitMs(this.client, clientKey, now)]);
    const waiting = Math.max(...waits);
    if (waiting > 0) return { retryAfterMs: waiting, settle: noop };
    const userWait = await signInAttempts.claimSignInAttempt(this.client, userKey, this.policy.free, this.policy, now);
    if (userWait > 0) return { retryAfterMs: userWait, settle: noop };
    const clientWait = await signInAttempts.claimSignInAttempt(this.client, clientKey, this.perClientFree, this.policy, now);
    if (clientWait > 0) {
      await signInAttempts.releaseSignInAttempt(this.client, userKey);
      return { retryAfterMs: clientWait, settle: noop };
    }
    return {
      retryAfterMs: 0,
      settle: async (succeeded) => {
        if (!succeeded) return;
        await signInAttempts.clearSignInAttempts(this.client, userKey);
        await signInAttempts.releaseSignInAttempt(this.client, clientKey);
      },
    };
  }
}
