/**
 * Delivery of the notification outbox. Each call claims the due rows, POSTs them concurrently,
 * each under its own timeout, and records the outcome row by row. It never throws: a broken
 * target, or even a broken database, is logged, and the scheduler tick that called it goes on.
 *
 * Delivery is at least once: a process that dies between a POST and marking it sent posts it
 * again after the claim lapses. Receivers that care can dedupe on the payload.
 *
 * Retries back off 30 s, 60 s, 120 s... capped at 1 h. After NOTIFICATION_MAX_ATTEMPTS failed
 * attempts the row is given up: it keeps sent_at NULL, its last_error starts with "gave up: "
 * and its next_attempt_at is GAVE_UP_AT (the largest JavaScript date), so it is never due again
 * but stays in the table for an operator to see (and to retry, by resetting next_attempt_at).
 */
import type { Clock } from "../clock.ts";
import { claimDueNotifications, markNotificationSent, recordNotificationFailure, type OutboxRow } from "../store/notifications.ts";
import { isDatabaseUnavailable } from "../store/unavailable.ts";
import type { EmailTarget, MailMessage, MailSender } from "./mage.ts";
import { redactText, redactUrl } from "./redact.ts";
import type { NotifyStore } from "./outbox.ts";

export const NOTIFICATION_MAX_ATTEMPTS = 10;
/** next_attempt_at of a row that was given up: 8.64e15, the largest valid Date, never due. */
export const GAVE_UP_AT = 8.64e15;
/** How a given-up row's last_error starts. */
export const GAVE_UP_PREFIX = "gave up: ";

const FIRST_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 3_600_000;
// Longer than any delivery can take, so a row is only claimed again if its claimer died.
const CLAIM_MARGIN_MS = 60_000;
// Enough of an error response to see why (Slack answers e.g. "invalid_token"), no more.
const MAX_ERROR_BODY = 200;

/** Delay before the retry that follows `attempts` failed attempts: 30 s doubling, at most 1 h. */
export function notificationBackoffMs(attempts: number): number {
  return Math.min(FIRST_BACKOFF_MS * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

export type NotifyLogLevel = "info" | "warn" | "error";
/** Receives delivery log lines; they name targets by redactUrl() only. */
export type NotifyLog = (level: NotifyLogLevel, message: string) => void;

export interface DeliverOptions {
  /** The fetch to POST with (tests inject their own). */
  fetch?: typeof fetch;
  /** Time for due dates and backoff; defaults to the store's clock. */
  clock?: Clock;
  /** Rows per call, oldest due first. */
  limit?: number;
  /** Real milliseconds a POST (response body included) may take; independent of `clock`. */
  timeoutMs?: number;
  log?: NotifyLog;
  /** Extra headers for a target URL (see webhookHeaders()); the outbox stores no headers. */
  headers?: (target: string) => Record<string, string> | undefined;
  /** Failed attempts before a row is given up. */
  maxAttempts?: number;
  /** SMTP settings for an email target (see emailSettings()); the outbox stores no credentials. */
  email?: (target: string) => EmailTarget | undefined;
  /** Sends mail for `smtp://` targets (the entry point's SMTP client); without it they fail, saying so. */
  sendMail?: MailSender;
}

/** What one call did: rows delivered, rows that failed and will be retried, rows given up. */
export interface DeliverySummary {
  sent: number;
  failed: number;
  gaveUp: number;
}

type Outcome = { ok: true } | { ok: false; error: string };

const errorText = (e: unknown): string => (e instanceof Error ? e.message || e.name : String(e));

/** POSTs every due notification (up to `limit`), concurrently; never throws. */
export async function deliverDueNotifications(store: NotifyStore, options: DeliverOptions = {}): Promise<DeliverySummary> {
  const clock = options.clock ?? store.clock;
  const fetchFn = options.fetch ?? globalThis.fetch;
  const limit = options.limit ?? 50;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxAttempts = options.maxAttempts ?? NOTIFICATION_MAX_ATTEMPTS;
  const log: NotifyLog = (level, message) => {
    try {
      options.log?.(level, message);
    } catch {
      // a broken logger must not break delivery (this function never throws)
    }
  };
  const summary: DeliverySummary = { sent: 0, failed: 0, gaveUp: 0 };

  let rows: OutboxRow[];
  try {
    rows = await claimDue(store, clock.now(), limit, timeoutMs + CLAIM_MARGIN_MS);
  } catch (e) {
    // a database out of reach for a moment (a sqld restart) is not kiln's error: the next tick reads the outbox again
    const unavailable = isDatabaseUnavailable(e);
    const why = unavailable ? ", the database cannot be reached (tried again at the next tick)" : "";
    log(unavailable ? "warn" : "error", `notifications: could not read the outbox${why}: ${redactText(errorText(e))}`);
    return summary;
  }

  await Promise.allSettled(
    rows.map(async (row) => {
      const what = `notification ${row.id} (${row.kind}) to ${redactUrl(row.target)}`;
      let outcome: Outcome;
      try {
        outcome = row.target.startsWith("smtp://")
          ? await mail(options, row, timeoutMs)
          : await post(fetchFn, row, options.headers?.(row.target) ?? {}, timeoutMs);
      } catch (e) {
        // post() turns every failure into an outcome; this is a bug guard, not a path
        outcome = { ok: false, error: redactText(errorText(e), row.target) };
      }
      const now = clock.now();
      try {
        if (outcome.ok) {
          summary.sent++;
          await markNotificationSent(store.client, row.id, now);
          log("info", `${what} sent`);
          return;
        }
        const attempts = row.attempts + 1;
        if (attempts >= maxAttempts) {
          summary.gaveUp++;
          await recordNotificationFailure(store.client, row.id, attempts, `${GAVE_UP_PREFIX}${outcome.error}`, GAVE_UP_AT);
          log("error", `${what} failed (attempt ${attempts} of ${maxAttempts}), giving up: ${outcome.error}`);
          return;
        }
        summary.failed++;
        const retryAt = now + notificationBackoffMs(attempts);
        await recordNotificationFailure(store.client, row.id, attempts, outcome.error, retryAt);
        log("warn", `${what} failed (attempt ${attempts} of ${maxAttempts}): ${outcome.error}; retrying at ${new Date(retryAt).toISOString()}`);
      } catch (e) {
        // The claim lapses and the row is tried again: a sent one may be sent twice, never lost.
        log(isDatabaseUnavailable(e) ? "warn" : "error", `${what}: could not record the outcome: ${redactText(errorText(e), row.target)}`);
      }
    }),
  );
  return summary;
}

/** Takes the due rows (claimed past the delivery window, so no other pass takes them meanwhile). */
function claimDue(store: NotifyStore, now: number, limit: number, claimMs: number): Promise<OutboxRow[]> {
  return claimDueNotifications(store.client, now, limit, now + claimMs);
}

/** One mail through its SMTP server, under the same timeout as a POST. */
async function mail(options: DeliverOptions, row: OutboxRow, timeoutMs: number): Promise<Outcome> {
  const smtp = options.email?.(row.target);
  if (!smtp) return { ok: false, error: "no email_config for this target in the project any more" };
  if (!options.sendMail) {
    return { ok: false, error: "this kiln process cannot send mail (email notifications need the Bun, Node or Deno entry point's SMTP client)" };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([options.sendMail(smtp, JSON.parse(row.payload) as MailMessage), timedOut]);
    return { ok: true };
  } catch (e) {
    const secrets = [smtp.password, smtp.user].filter((s): s is string => !!s);
    let text = errorText(e);
    for (const secret of secrets) text = text.split(secret).join("[redacted]");
    return { ok: false, error: redactText(text, row.target) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One POST under a timeout. The AbortController stops the request; the race makes the timeout
 * hold even against a fetch that ignores its signal, so one target cannot delay the others.
 */
async function post(fetchFn: typeof fetch, row: OutboxRow, headers: Record<string, string>, timeoutMs: number): Promise<Outcome> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`timed out after ${timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  const attempt = async (): Promise<Outcome> => {
    const requestHeaders = new Headers(headers);
    // set, not appended, so a configured Content-Type cannot turn the JSON body into something else
    requestHeaders.set("Content-Type", "application/json");
    const response = await fetchFn(row.target, {
      method: "POST",
      headers: requestHeaders,
      body: row.payload,
      signal: controller.signal,
    });
    if (response.ok) {
      // free the connection without waiting for a body nobody reads
      await response.body?.cancel().catch(() => {});
      return { ok: true };
    }
    const text = await response.text().catch(() => "");
    const detail = text.replace(/\s+/g, " ").trim().slice(0, MAX_ERROR_BODY);
    return { ok: false, error: redactText(`HTTP ${response.status}${detail ? `: ${detail}` : ""}`, row.target) };
  };
  try {
    return await Promise.race([attempt(), timedOut]);
  } catch (e) {
    return { ok: false, error: redactText(errorText(e), row.target) };
  } finally {
    clearTimeout(timer);
  }
}
