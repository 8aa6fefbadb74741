/**
 * Domain errors by code. A refusal kiln expects (bad input, a missing record, a move the state
 * machine forbids) is a KilnError whose `code` says what kind of refusal it is; the server turns
 * the code into an HTTP status in one table (server/src/errors.ts), the CLI into exit code 2.
 * Nothing decides what an error means by reading its message.
 *
 * ```ts
 * throw new KilnError("not_found", `backfill ${id} does not exist`, "id");
 * if (error instanceof KilnError && error.code === "conflict") ...
 * ```
 */

/** What kind of refusal an error is; each has one HTTP status (server/src/errors.ts). */
export const ERROR_CODES = [
  /** Well-formed input that is not acceptable (an unknown pipeline, an end before the start): 422. */
  "invalid_input",
  /** Input that is not what the field takes at all, or outside kiln's bounds: 400. */
  "malformed",
  /** The record asked for does not exist: 404. */
  "not_found",
  /** The record's state refuses the request (a taken name, a running backfill): 409. */
  "conflict",
  /** A status change the state machine forbids, or one that lost a race: 409. */
  "illegal_transition",
  /** No valid credentials: 401. */
  "unauthenticated",
  /** Valid credentials without the role: 403. */
  "forbidden",
  /** Refused for a while (sign-in throttling): 429. */
  "rate_limited",
  /** A request body over the limit: 413. */
  "too_large",
  /** This runtime cannot do what is asked, though another can (Workers' PBKDF2 cap): 409. */
  "unsupported",
  /** A dependency kiln needs is not reachable now: 503. */
  "unavailable",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A refusal with a code; `field` names the offending input (snake_case, as the API spells it), if one does. */
export class KilnError extends Error {
  /** The problem without the field's name (for a per-field list such as the API's `details`). */
  readonly detail: string;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field: string | null = null,
    /** Defaults to the message with a leading `<field>: ` taken off. */
    detail?: string,
  ) {
    super(message);
    this.name = "KilnError";
    this.detail = detail ?? (field !== null && message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message);
  }
}

/** True for a KilnError (of one of `codes`, when given). */
export function isKilnError(error: unknown, ...codes: ErrorCode[]): error is KilnError {
  return error instanceof KilnError && (codes.length === 0 || codes.includes(error.code));
}

/** An error's message, or the thrown value as text when it is not an Error (what logs and stored errors show). */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
