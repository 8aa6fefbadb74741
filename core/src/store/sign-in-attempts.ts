/**
 * Counting sign-in attempts in the database, so every replica sees the same counts. An attempt
 * is counted before the password is checked (a claim), so a burst of parallel guesses cannot
 * all pass before the first failure is written; a success gives its claim back. Each claim is a
 * compare-and-set on the row, retried when another attempt changed it first.
 */
import type { SqlClient } from "./sql-client.ts";

/** How counts turn into waits, and how many rows are kept. */
export interface SignInPolicy {
  /** Attempts allowed before waits begin: the one that reaches it is followed by the first wait. */
  free: number;
  /** The first wait (ms); each further attempt doubles it, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A key with no attempt for this long starts again from zero (ms). */
  forgetAfterMs: number;
  /** Rows kept at most; beyond it the rows with the fewest attempts (then the oldest) go. */
  maxRows: number;
}

/** The wait after the `attempts`-th attempt of a key: none before the `free`-th, then base, doubling. */
export function signInDelayMs(attempts: number, free: number, policy: Pick<SignInPolicy, "baseDelayMs" | "maxDelayMs">): number {
  if (attempts < free) return 0;
  const doublings = Math.min(attempts - free, 40);
  return Math.min(policy.baseDelayMs * 2 ** doublings, policy.maxDelayMs);
}

interface Row {
  attempts: number;
  blockedUntil: number;
  lastAttemptAt: number;
}

async function readRow(client: SqlClient, key: string): Promise<Row | null> {
  const rs = await client.execute({ sql: "SELECT attempts, blocked_until, last_attempt_at FROM sign_in_attempts WHERE key = ?", args: [key] });
  const row = rs.rows[0];
  return row ? { attempts: Number(row.attempts), blockedUntil: Number(row.blocked_until), lastAttemptAt: Number(row.last_attempt_at) } : null;
}

/** Milliseconds until `key` may try again (0: now). */
export async function signInWaitMs(client: SqlClient, key: string, now: number): Promise<number> {
  const row = await readRow(client, key);
  return row && row.blockedUntil > now ? row.blockedUntil - now : 0;
}

/**
 * Claims one attempt for `key`: counted, and its wait set from the new count. Answers 0 when
 * the attempt may go ahead, else the milliseconds to wait (the attempt was not counted).
 */
export async function claimSignInAttempt(client: SqlClient, key: string, free: number, policy: SignInPolicy, now: number): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const row = await readRow(client, key);
    if (row && row.blockedUntil > now) return row.blockedUntil - now;
    const attempts = row && row.lastAttemptAt >= now - policy.forgetAfterMs ? row.attempts + 1 : 1;
    const delay = signInDelayMs(attempts, free, policy);
    const blockedUntil = delay > 0 ? now + delay : 0;
    if (!row) {
      const rs = await client.execute({
        sql: "INSERT INTO sign_in_attempts (key, attempts, blocked_until, last_attempt_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        args: [key, attempts, blockedUntil, now],
      });
      if (rs.rowsAffected === 1) {
        await evict(client, policy, now);
        return 0;
      }
      continue;
    }
    const rs = await client.execute({
      sql: "UPDATE sign_in_attempts SET attempts = ?, blocked_until = ?, last_attempt_at = ? WHERE key = ? AND attempts = ? AND blocked_until = ? AND last_attempt_at = ?",
      args: [attempts, blockedUntil, now, key, row.attempts, row.blockedUntil, row.lastAttemptAt],
    });
    if (rs.rowsAffected === 1) return 0;
  }
  // twenty lost races in a row: the key is under a flood, which is what waiting is for
  return policy.baseDelayMs;
}

/** Gives back a claim that turned out a success: the key's count drops by one, its wait is lifted. */
export async function releaseSignInAttempt(client: SqlClient, key: string): Promise<void> {
  await client.execute({ sql: "UPDATE sign_in_attempts SET attempts = attempts - 1, blocked_until = 0 WHERE key = ? AND attempts > 0", args: [key] });
}

/** Forgets a key (a successful sign-in of that user from that client). */
export async function clearSignInAttempts(client: SqlClient, key: string): Promise<void> {
  await client.execute({ sql: "DELETE FROM sign_in_attempts WHERE key = ?", args: [key] });
}

/**
 * Keeps the table within maxRows: forgotten rows go first, then those with the fewest attempts.
 * A flood of one-off made-up names therefore evicts its own rows, never the count of a name
 * someone is actually guessing at, which is higher.
 */
async function evict(client: SqlClient, policy: SignInPolicy, now: number): Promise<void> {
  const rs = await client.execute("SELECT count(*) AS n FROM sign_in_attempts");
  const excess = Number(rs.rows[0]?.n ?? 0) - policy.maxRows;
  if (excess <= 0) return;
  // down to nine tenths, so a flood pays for an eviction once every maxRows/10 new keys, not each
  const keep = Math.floor(policy.maxRows * 0.9);
  await client.batch(
    [
      { sql: "DELETE FROM sign_in_attempts WHERE last_attempt_at < ? AND blocked_until <= ?", args: [now - policy.forgetAfterMs, now] },
      {
        sql: `DELETE FROM sign_in_attempts WHERE key IN (
                SELECT key FROM sign_in_attempts ORDER BY attempts ASC, last_attempt_at ASC LIMIT max(0, (SELECT count(*) FROM sign_in_attempts) - ?))`,
        args: [keep],
      },
    ],
    "write",
  );
}
