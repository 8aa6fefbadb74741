/**
 * Notifications: run failure, SLA breach, scheduler drift and (opt-in) success, to generic
 * webhooks and Slack incoming webhooks, through an outbox table so that a failing target is
 * retried later and never blocks the tick.
 */
export * from "./config.ts";
export * from "./events.ts";
export * from "./outbox.ts";
export * from "./deliver.ts";
export * from "./redact.ts";
export * from "./mage.ts";
