/**
 * Store operations on the notification outbox (`notifications`): rows queued with the state
 * change that caused them, claimed by a delivery pass, marked sent or failed. What to send and
 * when to retry is notify/'s to decide.
 */
import type { InStatement, InValue } from "@libsql/client";
import type { SqlClient } from "./sql-client.ts";

/** One message to queue: where, and the exact body. */
export interface NewNotification {
  target: string;
  body: string;
}

/** A queued notification as delivery needs it. */
export interface OutboxRow {
  id: number;
  kind: string;
  target: string;
  payload: string;
  attempts: number;
}

/** The insert of `entries` of one event kind, due at `now` (null when there are none). */
export function insertNotificationsStatement(kind: string, entries: readonly NewNotification[], now: number): InStatement | null {
  if (entries.length === 0) return null;
  const args: InValue[] = [];
  for (const e of entries) args.push(kind, e.target, e.body, now, now);
  return {
    sql: "INSERT INTO notifications (kind, target, payload, next_attempt_at, created_at) VALUES " + entries.map(() => "(?, ?, ?, ?, ?)").join(", "),
    args,
  };
}

/** Queues `entries` now, outside any batch. */
export async function insertNotifications(client: SqlClient, kind: string, entries: readonly NewNotification[], now: number): Promise<void> {
  const statement = insertNotificationsStatement(kind, entries, now);
  if (statement) await client.execute(statement);
}

/**
 * Takes up to `limit` due rows, oldest due first, by pushing their next_attempt_at to `until` in
 * the same statement: two overlapping passes (or two schedulers) never take one row at once, and
 * a row whose claimer dies becomes due again on its own. Returned in id order.
 */
export async function claimDueNotifications(client: SqlClient, now: number, limit: number, until: number): Promise<OutboxRow[]> {
  const rs = await client.execute({
    sql: `UPDATE notifications SET next_attempt_at = ?
          WHERE id IN (SELECT id FROM notifications WHERE sent_at IS NULL AND next_attempt_at <= ?
                       ORDER BY next_attempt_at, id LIMIT ?)
          RETURNING id, kind, target, payload, attempts`,
    args: [until, now, limit],
  });
  // RETURNING gives no order
  return rs.rows
    .map((r) => ({ id: Number(r.id), kind: String(r.kind), target: String(r.target), payload: String(r.payload), attempts: Number(r.attempts) }))
    .sort((a, b) => a.id - b.id);
}

/** Records a delivered notification. */
export async function markNotificationSent(client: SqlClient, id: number, now: number): Promise<void> {
  await client.execute({ sql: "UPDATE notifications SET sent_at = ?, attempts = attempts + 1 WHERE id = ?", args: [now, id] });
}

/** Records a failed attempt: how many so far, why, and when to try again. */
export async function recordNotificationFailure(client: SqlClient, id: number, attempts: number, error: string, nextAttemptAt: number): Promise<void> {
  await client.execute({
    sql: "UPDATE notifications SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
    args: [attempts, error, nextAttemptAt, id],
  });
}
