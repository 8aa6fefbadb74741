/**
 * Sign-in attempts counted per client and username (and per client), shared by every replica,
 * for the sign-in throttle (store/sign-in-attempts.ts). Bounded in rows: see that module.
 */
export const name = "sign_in_attempts";

export const statements: string[] = [
  `CREATE TABLE sign_in_attempts (
    key TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL,
    last_attempt_at INTEGER NOT NULL
  )`,
  // eviction takes the rows with the fewest attempts first, then the oldest
  `CREATE INDEX sign_in_attempts_eviction ON sign_in_attempts (attempts, last_attempt_at)`,
];
