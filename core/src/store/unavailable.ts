/**
 * Whether an error says the database could not be reached (the server down or restarting, the
 * connection dropped, the file locked for too long), as opposed to a statement it refused. Such
 * an error is about this moment, not about the work: a write is tried again once the database
 * answers, and an API request gets a 503 to retry, never a failed run or a 500.
 */

/** Socket and resolver codes of fetch (Bun, Node's undici, Deno) and net errors when a server cannot be reached. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ConnectionRefused",
  "ConnectionClosed",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
  // a libSQL file locked by another process for longer than its busy timeout
  "SQLITE_BUSY",
]);

/**
 * Messages of the same, for runtimes that give no code (Workers' fetch), and the HTTP statuses a
 * libSQL server or a proxy in front of it answers while it starts or stops (sqld answers 404 for
 * a moment after it started listening; SQL errors never come as an HTTP status).
 */
const UNREACHABLE_MESSAGE = /Unable to connect|fetch failed|socket connection was closed|Network connection lost|Server returned HTTP status (404|50[0234])\b|database is locked/i;

/** The error code a database error carries, if any (LibsqlError's code, a system error's code, D1's). */
function codeOf(error: object): string | null {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : null;
}

/** True if `error` (or an error it was caused by) says the database is unreachable right now. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = codeOf(e);
    if (code !== null && (UNREACHABLE_CODES.has(code) || code.startsWith("SQLITE_BUSY"))) return true;
    if (e instanceof Error && UNREACHABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}
