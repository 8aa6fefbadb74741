/**
 * `notification_config`, in kiln.yaml and in a pipeline's metadata.yaml:
 *
 *   notification_config:
 *     alert_on: [trigger_failure, trigger_passed_sla, drift]   # the default; trigger_success is opt-in
 *     webhooks:
 *       - url: https://example.com/hooks/kiln
 *         headers: { Authorization: "Bearer ..." }
 *         alert_on: [trigger_failure]                          # optional, overrides the list above
 *     slack:
 *       - webhook_url: https://hooks.slack.com/services/...
 *
 * Input is snake_case YAML; the output is camelCase like the rest of the project types. As in
 * the project schemas, optional keys accept null as well as absence, and unknown keys are
 * ignored (a Mage file carries slack_config, teams_config, message_templates... that kiln does
 * not read).
 */
import * as v from "valibot";
import { emailTargetOf, MAGE_CHANNELS, type ChannelTarget, type EmailTarget, type MageChannel, type MessageTemplates } from "./mage.ts";
import { redactUrl } from "./redact.ts";

/** The events a target can be told about (Mage's alert_on values, plus kiln's scheduler drift). */
export const ALERT_ON = ["trigger_failure", "trigger_success", "trigger_passed_sla", "drift"] as const;
export type AlertOn = (typeof ALERT_ON)[number];

/** What alerts when nothing says otherwise: everything but success, which would be noise for most pipelines. */
export const DEFAULT_ALERT_ON: readonly AlertOn[] = ["trigger_failure", "trigger_passed_sla", "drift"];

/** A generic webhook: the event's JSON payload is POSTed to `url`. */
export interface WebhookTarget {
  url: string;
  /** Sent with every POST; Content-Type is always application/json and cannot be overridden. */
  headers: Record<string, string>;
  /** Overrides the config's alert_on for this target; null means inherit. */
  alertOn: AlertOn[] | null;
}

/** A Slack incoming webhook: `{ "text": <one-line message> }` is POSTed to `webhookUrl` (a secret). */
export interface SlackTarget {
  webhookUrl: string;
  alertOn: AlertOn[] | null;
}

/** A parsed notification_config. A key is absent when the YAML did not set it, so merging can inherit it. */
export interface NotificationConfig {
  alertOn?: AlertOn[];
  webhooks?: WebhookTarget[];
  slack?: SlackTarget[];
  /** Mage's `<channel>_config` webhooks (slack_config, teams_config, ...), by channel. */
  channels?: Partial<Record<MageChannel, ChannelTarget[]>>;
  /** Mage's email_config; an empty list when its to_emails is empty (Mage sends nothing then). */
  email?: EmailTarget[];
  /** Mage's message_templates. */
  messageTemplates?: MessageTemplates;
}

/** A notification_config that does not say what kiln expects; fields are as the loader's ProjectLoadError wants them. */
export class NotificationConfigError extends Error {
  override readonly name = "NotificationConfigError";

  constructor(
    /** Where, e.g. `notification_config.webhooks[0].url`. */
    readonly field: string,
    /** What kiln expected there, e.g. "an http or https URL". */
    readonly expected: string,
    /** What it found, with URLs redacted and header values not shown. */
    readonly got: string,
  ) {
    super(`${field}: expected ${expected}, got ${got}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Schema (each message is the "expected" half of an error, as in project/schema.ts)

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date);
}

function expectedOf(schema: unknown): string {
  const message = (schema as { message?: unknown }).message;
  return typeof message === "string" ? message : "a value";
}

/**
 * A mapping with the given entries. The custom check rejects lists (which valibot's object
 * accepts); the message function reports a missing required key with the key's own expectation
 * rather than the enclosing object's.
 */
function mapping<E extends v.ObjectEntries>(entries: E, expected: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, expected),
    v.object(entries, (issue: v.BaseIssue<unknown>) => {
      const key = issue.path?.[issue.path.length - 1]?.key;
      return typeof key === "string" && key in entries ? expectedOf(entries[key]) : expected;
    }),
  );
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
  } catch {
    return false;
  }
}

const HTTP_URL = "an http or https URL";
const httpUrl = v.pipe(v.string(HTTP_URL), v.check(isHttpUrl, HTTP_URL));

const alertOnList = v.array(v.picklist(ALERT_ON, `one of ${ALERT_ON.join(", ")}`), `a list of events (${ALERT_ON.join(", ")})`);

// RFC 9110 token; a bad name would make every delivery throw, so it is caught at load time instead.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_NAME_MESSAGE = "a header name (letters, digits and !#$%&'*+-.^_`|~)";
const HEADER_VALUE_MESSAGE = "a string header value without line breaks (quote numbers)";
const headers = v.pipe(
  v.custom<Record<string, unknown>>(isPlainObject, "a mapping of header names to strings"),
  v.record(
    v.pipe(v.string(HEADER_NAME_MESSAGE), v.regex(HEADER_NAME, HEADER_NAME_MESSAGE)),
    v.pipe(
      v.string(HEADER_VALUE_MESSAGE),
      v.check((s) => !/[\r\n\0]/.test(s), HEADER_VALUE_MESSAGE),
    ),
  ),
);

const webhook = v.pipe(
  mapping(
    { url: httpUrl, headers: v.nullish(headers, () => ({})), alert_on: v.nullish(alertOnList) },
    "a webhook (an object with url)",
  ),
  v.transform((w): WebhookTarget => ({ url: w.url, headers: w.headers, alertOn: w.alert_on ?? null })),
);

const slack = v.pipe(
  mapping({ webhook_url: httpUrl, alert_on: v.nullish(alertOnList) }, "a Slack target (an object with webhook_url)"),
  v.transform((s): SlackTarget => ({ webhookUrl: s.webhook_url, alertOn: s.alert_on ?? null })),
);

// Mage writes `webhook_url: "{{ env_var('MAGE_SLACK_WEBHOOK_URL') }}"`: unset renders as "" (or
// "None"), which Mage treats as "not configured"; kiln does the same.
const unsetUrl = (value: unknown) => value === null || value === undefined || value === "" || value === "None";
const mageUrl = v.union([v.pipe(v.custom<unknown>(unsetUrl), v.transform(() => null)), httpUrl], HTTP_URL);

function channelSchema(channel: MageChannel) {
  return v.pipe(
    mapping({ webhook_url: v.nullish(mageUrl) }, `a ${channel}_config (an object with webhook_url)`),
    v.transform((c): ChannelTarget[] => (c.webhook_url ? [{ channel, url: c.webhook_url, headers: {}, extra: {} }] : [])),
  );
}

const teamsSchema = v.pipe(
  mapping(
    { webhook_url: v.nullish(v.union([mageUrl, v.array(mageUrl, HTTP_URL)], "an http or https URL, or a list of them")) },
    "a teams_config (an object with webhook_url)",
  ),
  v.transform((c): ChannelTarget[] =>
    [c.webhook_url ?? []].flat().flatMap((url) => (url ? [{ channel: "teams" as const, url, headers: {}, extra: {} }] : [])),
  ),
);

const opsgenieSchema = v.pipe(
  mapping(
    {
      url: v.nullish(mageUrl),
      api_key: v.nullish(v.string("a string api_key")),
      priority: v.nullish(v.string("a priority such as P3"), "P3"),
      responders: v.nullish(v.array(v.custom<Record<string, unknown>>(isPlainObject, "an object"), "a list of responders"), () => []),
      tags: v.nullish(v.array(v.string("a string"), "a list of tags"), () => []),
      details: v.nullish(v.custom<Record<string, unknown>>(isPlainObject, "an object"), () => ({})),
    },
    "an opsgenie_config (an object with url and api_key)",
  ),
  v.transform((c): ChannelTarget[] =>
    c.url && c.api_key && c.api_key !== "None"
      ? [
          {
            channel: "opsgenie",
            url: c.url,
            headers: { Authorization: `GenieKey ${c.api_key}` },
            extra: { priority: c.priority, responders: c.responders, tags: c.tags, details: c.details },
          },
        ]
      : [],
  ),
);

const PORT = "a port number (1-65535)";
const port = v.pipe(
  v.union([v.number(PORT), v.pipe(v.string(PORT), v.regex(/^\s*\d+\s*$/, PORT), v.transform(Number))], PORT),
  v.integer(PORT),
  v.minValue(1, PORT),
  v.maxValue(65535, PORT),
);
const emailSchema = v.pipe(
  mapping(
    {
      smtp_host: v.pipe(v.string("an SMTP host name"), v.minLength(1, "an SMTP host name")),
      smtp_mail_from: v.pipe(v.string("a From address"), v.minLength(1, "a From address")),
      smtp_user: v.nullish(v.string("a string")),
      smtp_password: v.nullish(v.string("a string")),
      smtp_starttls: v.nullish(v.boolean("true or false"), true),
      smtp_ssl: v.nullish(v.boolean("true or false"), false),
      smtp_port: v.nullish(port, 587),
      to_emails: v.nullish(v.union([v.string("an address"), v.array(v.string("an address"), "a list of addresses")], "a list of addresses")),
    },
    "an email_config (an object with smtp_host, smtp_mail_from and to_emails)",
  ),
  v.transform((e): EmailTarget[] => {
    const to = [e.to_emails ?? []].flat().filter((address) => address.trim() !== "");
    // Mage sends no mail when to_emails is empty
    if (to.length === 0) return [];
    return [
      {
        host: e.smtp_host,
        port: e.smtp_port,
        user: e.smtp_user || null,
        password: e.smtp_password || null,
        starttls: e.smtp_starttls,
        ssl: e.smtp_ssl,
        from: e.smtp_mail_from,
        to,
      },
    ];
  }),
);

const messageTemplate = v.pipe(
  mapping(
    { title: v.nullish(v.string("a string")), summary: v.nullish(v.string("a string")), details: v.nullish(v.string("a string")) },
    "a message template (title, summary, details)",
  ),
  v.transform((t) => {
    const out: { title?: string; summary?: string; details?: string } = {};
    if (t.title != null) out.title = t.title;
    if (t.summary != null) out.summary = t.summary;
    if (t.details != null) out.details = t.details;
    return out;
  }),
);
const messageTemplates = v.pipe(
  mapping(
    { success: v.nullish(messageTemplate), failure: v.nullish(messageTemplate), passed_sla: v.nullish(messageTemplate) },
    "message_templates (success, failure, passed_sla)",
  ),
  v.transform((t): MessageTemplates => {
    const out: MessageTemplates = {};
    if (t.success) out.success = t.success;
    if (t.failure) out.failure = t.failure;
    if (t.passed_sla) out.passedSla = t.passed_sla;
    return out;
  }),
);

/** notification_config (snake_case YAML in, NotificationConfig out). Prefer parseNotificationConfig, whose errors redact URLs. */
export const notificationConfigSchema = v.pipe(
  mapping(
    {
      alert_on: v.nullish(alertOnList),
      webhooks: v.nullish(v.array(webhook, "a list of webhooks")),
      slack: v.nullish(v.array(slack, "a list of Slack targets")),
      slack_config: v.nullish(channelSchema("slack")),
      teams_config: v.nullish(teamsSchema),
      discord_config: v.nullish(channelSchema("discord")),
      google_chat_config: v.nullish(channelSchema("google_chat")),
      telegram_config: v.nullish(channelSchema("telegram")),
      opsgenie_config: v.nullish(opsgenieSchema),
      email_config: v.nullish(emailSchema),
      message_templates: v.nullish(messageTemplates),
    },
    "an object (alert_on, webhooks, slack, or Mage's slack_config, teams_config, email_config, ...)",
  ),
  v.transform((c): NotificationConfig => {
    const out: NotificationConfig = {};
    if (c.alert_on) out.alertOn = c.alert_on;
    if (c.webhooks) out.webhooks = c.webhooks;
    if (c.slack) out.slack = c.slack;
    const channels: Partial<Record<MageChannel, ChannelTarget[]>> = {};
    const given = { slack: c.slack_config, teams: c.teams_config, discord: c.discord_config, google_chat: c.google_chat_config, telegram: c.telegram_config, opsgenie: c.opsgenie_config };
    for (const channel of MAGE_CHANNELS) if (given[channel]) channels[channel] = given[channel];
    if (Object.keys(channels).length > 0) out.channels = channels;
    if (c.email_config) out.email = c.email_config;
    if (c.message_templates) out.messageTemplates = c.message_templates;
    return out;
  }),
);

// ---------------------------------------------------------------------------------------------
// Keys kiln does not act on

type KnownKeys = { [key: string]: KnownKeys | "list" | "leaf" } & { "[]"?: KnownKeys };

const CHANNEL_KEYS: KnownKeys = { webhook_url: "leaf" };
const TEMPLATE_KEYS: KnownKeys = { title: "leaf", summary: "leaf", details: "leaf" };

/** The keys notificationConfigSchema reads, nested; `"[]"` describes each entry of a list. */
const NOTIFICATION_KEYS: KnownKeys = {
  alert_on: "leaf",
  webhooks: { "[]": { url: "leaf", headers: "leaf", alert_on: "leaf" } },
  slack: { "[]": { webhook_url: "leaf", alert_on: "leaf" } },
  slack_config: CHANNEL_KEYS,
  teams_config: CHANNEL_KEYS,
  discord_config: CHANNEL_KEYS,
  google_chat_config: CHANNEL_KEYS,
  telegram_config: CHANNEL_KEYS,
  opsgenie_config: { url: "leaf", api_key: "leaf", priority: "leaf", responders: "leaf", tags: "leaf", details: "leaf" },
  email_config: {
    smtp_host: "leaf",
    smtp_mail_from: "leaf",
    smtp_user: "leaf",
    smtp_password: "leaf",
    smtp_starttls: "leaf",
    smtp_ssl: "leaf",
    smtp_port: "leaf",
    to_emails: "leaf",
  },
  message_templates: { success: TEMPLATE_KEYS, failure: TEMPLATE_KEYS, passed_sla: TEMPLATE_KEYS },
};

/**
 * The keys of a notification_config that kiln does not act on, as field paths
 * (`notification_config.slack_config.channel`), so the loader can name them in its warning: the
 * schema drops unknown keys, and a user's alert setting must never vanish without a word.
 */
export function unusedNotificationKeys(input: unknown, field = "notification_config"): string[] {
  const unused: string[] = [];
  const walk = (value: unknown, known: KnownKeys, path: string) => {
    if (Array.isArray(value)) {
      const entry = known["[]"];
      if (entry) value.forEach((item, i) => walk(item, entry, `${path}[${i}]`));
      return;
    }
    if (!isPlainObject(value)) return;
    for (const [key, child] of Object.entries(value)) {
      const rule = known[key];
      if (rule === undefined) {
        if (child !== null && child !== undefined && child !== "") unused.push(`${path}.${key}`);
      } else if (typeof rule === "object") walk(child, rule, `${path}.${key}`);
    }
  };
  walk(input, NOTIFICATION_KEYS, field);
  return unused;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** `notification_config.webhooks[0].url` from valibot's issue path. */
function fieldOf(prefix: string, path: readonly { key: unknown }[]): string {
  return path.reduce<string>(
    (field, { key }) => (typeof key === "number" ? `${field}[${key}]` : field ? `${field}.${String(key)}` : String(key)),
    prefix,
  );
}

/** A short rendering of the offending value that shows no secret: URLs redacted, header values never shown. */
function describe(value: unknown, path: readonly { key: unknown; origin?: unknown }[]): string {
  if (value === undefined) return "nothing";
  const keys = path.map((p) => p.key);
  // a header's value may be a credential; its name (an issue with the key itself) is not
  const isKey = path[path.length - 1]?.origin === "key";
  if (!isKey && keys.includes("headers") && keys.length > keys.indexOf("headers") + 1) {
    return value === null ? "null" : Array.isArray(value) ? "a list" : `a ${typeof value}`;
  }
  const last = keys[keys.length - 1];
  if ((last === "url" || last === "webhook_url") && typeof value === "string") return JSON.stringify(redactUrl(value));
  if (last === "api_key" || last === "smtp_password" || last === "smtp_user") return value === null ? "null" : `a ${typeof value}`;
  // a list or object may hold a URL or headers further down; do not echo it
  if (Array.isArray(value)) return "a list";
  if (value !== null && typeof value === "object") return "an object";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Parses a notification_config value (null or absent means none); throws a
 * NotificationConfigError naming the first bad field, prefixed by `field`.
 */
export function parseNotificationConfig(input: unknown, field = "notification_config"): NotificationConfig {
  if (input === null || input === undefined) return {};
  const result = v.safeParse(notificationConfigSchema, input, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = issue.path ?? [];
  throw new NotificationConfigError(fieldOf(field, path), issue.message, describe(issue.input, path));
}

/**
 * The project's config with the pipeline's laid over it, key by key: a key the pipeline sets
 * (alert_on, webhooks or slack) replaces the project's list whole, and a key it does not set is
 * inherited. So `webhooks: []` in a pipeline silences the project's webhooks for it, and a
 * pipeline that only sets `alert_on` keeps the project's targets. A target's own alert_on still
 * wins over the merged alert_on.
 */
export function mergeNotificationConfig(
  project: NotificationConfig | null | undefined,
  pipeline: NotificationConfig | null | undefined,
): NotificationConfig {
  const out: NotificationConfig = {};
  const alertOn = pipeline?.alertOn ?? project?.alertOn;
  const webhooks = pipeline?.webhooks ?? project?.webhooks;
  const slackTargets = pipeline?.slack ?? project?.slack;
  if (alertOn) out.alertOn = alertOn;
  if (webhooks) out.webhooks = webhooks;
  if (slackTargets) out.slack = slackTargets;
  // Mage merges the two configs key by key too: a pipeline's slack_config replaces the project's
  const channels = { ...project?.channels, ...pipeline?.channels };
  if (Object.keys(channels).length > 0) out.channels = channels;
  const email = pipeline?.email ?? project?.email;
  if (email) out.email = email;
  const templates = pipeline?.messageTemplates ?? project?.messageTemplates;
  if (templates) out.messageTemplates = templates;
  return out;
}

/** The events a target alerts on: its own list, else the config's, else DEFAULT_ALERT_ON. */
export function alertOnOf(config: NotificationConfig, target: { alertOn: AlertOn[] | null }): readonly AlertOn[] {
  return target.alertOn ?? config.alertOn ?? DEFAULT_ALERT_ON;
}

/**
 * Headers by webhook URL over several configs (the project's and every pipeline's), for
 * delivery: the outbox stores URL and body only, so header values (often credentials) never
 * land in the database. Where one URL is listed with different headers, the later config wins.
 */
export function webhookHeaders(configs: Iterable<NotificationConfig | null | undefined>): (target: string) => Record<string, string> {
  const byUrl = new Map<string, Record<string, string>>();
  for (const config of configs) {
    for (const w of config?.webhooks ?? []) byUrl.set(w.url, w.headers);
    for (const targets of Object.values(config?.channels ?? {})) {
      for (const t of targets ?? []) if (Object.keys(t.headers).length > 0) byUrl.set(t.url, t.headers);
    }
  }
  return (target) => byUrl.get(target) ?? {};
}

/**
 * SMTP settings by outbox target over several configs, for delivery: the outbox stores the mail,
 * never the SMTP password, which comes from the config at send time.
 */
export function emailSettings(configs: Iterable<NotificationConfig | null | undefined>): (target: string) => EmailTarget | undefined {
  const byTarget = new Map<string, EmailTarget>();
  for (const config of configs) for (const e of config?.email ?? []) byTarget.set(emailTargetOf(e), e);
  return (target) => byTarget.get(target);
}
