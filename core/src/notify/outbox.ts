/**
 * The notification outbox: an event becomes one `notifications` row per target that alerts on
 * it, written in the same transaction as the state change that caused it. Delivery
 * (deliver.ts) happens later, outside the tick, so a slow or failing target never holds up
 * scheduling, and a crash between the status change and the POST loses nothing.
 */
import type { Store } from "../store/index.ts";
import { insertNotifications } from "../store/notifications.ts";
import type { WriteBatch } from "../store/write-batch.ts";
import { alertOnOf, type NotificationConfig } from "./config.ts";
import { ALERT_ON_FOR, slackBody, webhookBody, type NotificationEvent } from "./events.ts";
import { channelBody, emailTargetOf, mageMessage, mailBody } from "./mage.ts";

/** What the outbox needs of a Store (tests and other adapters can pass just this). */
export type NotifyStore = Pick<Store, "client" | "clock">;

/** One POST to make: where, and the exact body. */
export interface OutboxEntry {
  target: string;
  body: string;
}

/** The POSTs an event calls for under a config: one per webhook and Slack target whose alert_on includes it. */
export function outboxEntries(config: NotificationConfig, event: NotificationEvent): OutboxEntry[] {
  const wanted = ALERT_ON_FOR[event.kind];
  const entries: OutboxEntry[] = [];
  for (const w of config.webhooks ?? []) {
    if (alertOnOf(config, w).includes(wanted)) entries.push({ target: w.url, body: webhookBody(event) });
  }
  for (const s of config.slack ?? []) {
    if (alertOnOf(config, s).includes(wanted)) entries.push({ target: s.webhookUrl, body: slackBody(event) });
  }
  // Mage's channels and email follow the config's alert_on, as in Mage
  const mage = { alertOn: null };
  const channels = Object.values(config.channels ?? {}).flat();
  const email = config.email ?? [];
  if ((channels.length > 0 || email.length > 0) && alertOnOf(config, mage).includes(wanted)) {
    const message = mageMessage(event, config.messageTemplates);
    for (const t of channels) entries.push({ target: t.url, body: channelBody(t, message) });
    for (const e of email) entries.push({ target: emailTargetOf(e), body: mailBody(e, message) });
  }
  return entries;
}

/**
 * Queues the event for every matching target; returns how many rows. With a batch, the INSERT
 * is appended to it synchronously (before this returns its promise), so the notification
 * commits, or rolls back, with the status change in that batch; without one, it is inserted now.
 */
export async function enqueueNotifications(
  batch: WriteBatch | null,
  store: NotifyStore,
  config: NotificationConfig,
  event: NotificationEvent,
): Promise<number> {
  const entries = outboxEntries(config, event);
  if (entries.length === 0) return 0;
  if (batch) batch.insertNotifications(event.kind, entries);
  else await insertNotifications(store.client, event.kind, entries, store.clock.now());
  return entries.length;
}
