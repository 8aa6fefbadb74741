/**
 * Mage's notification settings as kiln targets: slack_config, teams_config, discord_config,
 * google_chat_config, telegram_config and opsgenie_config are webhooks POSTed in the body each
 * service expects (the shapes Mage sends); email_config is mail over SMTP, sent by a MailSender
 * the entry point provides (core cannot open sockets). message_templates word the title,
 * summary and details, with Mage's `{pipeline_uuid}`-style placeholders.
 */
import type { NotificationEvent, NotificationEventKind } from "./events.ts";

/** Mage's chat channels, each a webhook with its own body shape. */
export const MAGE_CHANNELS = ["slack", "teams", "discord", "google_chat", "telegram", "opsgenie"] as const;
export type MageChannel = (typeof MAGE_CHANNELS)[number];

/** One webhook of a Mage channel. */
export interface ChannelTarget {
  channel: MageChannel;
  url: string;
  /** Opsgenie's `Authorization: GenieKey <api_key>`; not stored in the outbox. */
  headers: Record<string, string>;
  /** Opsgenie's priority, responders, tags and details, sent with every alert. */
  extra: Record<string, unknown>;
}

/** Mage's email_config: mail through an SMTP server. */
export interface EmailTarget {
  host: string;
  port: number;
  user: string | null;
  password: string | null;
  /** STARTTLS when credentials are given (Mage logs in only after STARTTLS). */
  starttls: boolean;
  /** TLS from the first byte (SMTPS, usually port 465). */
  ssl: boolean;
  from: string;
  to: string[];
}

/** One message of Mage's message_templates; an unset part falls back to kiln's default. */
export interface MessageTemplate {
  title?: string;
  summary?: string;
  details?: string;
}

export interface MessageTemplates {
  success?: MessageTemplate;
  failure?: MessageTemplate;
  passedSla?: MessageTemplate;
}

/** A mail to send: what the outbox stores for an email target (no credentials). */
export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

/** Sends one mail through the SMTP server `smtp`; rejects when the server refuses it. */
export type MailSender = (smtp: EmailTarget, message: MailMessage) => Promise<void>;

/** The outbox target of an email setting: names the server and recipients, never the password. */
export function emailTargetOf(email: EmailTarget): string {
  const user = email.user ? `${encodeURIComponent(email.user)}@` : "";
  return `smtp://${user}${email.host}:${email.port}?to=${email.to.map(encodeURIComponent).join(",")}`;
}

const DEFAULTS: Record<NotificationEventKind, Required<MessageTemplate>> = {
  run_succeeded: {
    title: "Pipeline {pipeline_uuid} completed",
    summary: "Pipeline `{pipeline_uuid}` run {pipeline_run_id} ({trigger}) completed for execution time `{execution_time}`.",
    details: "",
  },
  run_failed: {
    title: "Pipeline {pipeline_uuid} failed",
    summary: "Pipeline `{pipeline_uuid}` run {pipeline_run_id} ({trigger}) failed for execution time `{execution_time}`. Error: {error}",
    details: "",
  },
  sla_passed: {
    title: "SLA missed for pipeline {pipeline_uuid}",
    summary: "Pipeline `{pipeline_uuid}` run {pipeline_run_id} ({trigger}) passed its SLA for execution time `{execution_time}`.",
    details: "",
  },
  drift: { title: "kiln scheduler drift", summary: "{message}", details: "" },
};

const TEMPLATE_OF: Partial<Record<NotificationEventKind, keyof MessageTemplates>> = {
  run_succeeded: "success",
  run_failed: "failure",
  sla_passed: "passedSla",
};

/** Python's str.format for named fields: `{name}` is the value, `{{` and `}}` are braces; an unknown name stays. */
export function formatTemplate(text: string, vars: Readonly<Record<string, unknown>>): string {
  return text.replace(/\{\{|\}\}|\{(\w+)\}/g, (match, name: string | undefined) => {
    if (match === "{{") return "{";
    if (match === "}}") return "}";
    if (name === undefined || !(name in vars)) return match;
    const value = vars[name];
    return value === null || value === undefined ? "" : String(value);
  });
}

/** The title, summary and details of an event, from the templates or kiln's defaults. */
export function mageMessage(event: NotificationEvent, templates: MessageTemplates | undefined): Required<MessageTemplate> {
  const p = event.payload;
  const vars: Record<string, unknown> = {
    pipeline_uuid: p.pipeline_uuid,
    pipeline_run_id: p.pipeline_run_id,
    pipeline_schedule_id: p.pipeline_schedule_id,
    pipeline_schedule_name: p.schedule_name ?? "",
    pipeline_schedule_description: p.schedule_description ?? "",
    execution_time: p.execution_date,
    error: p.error ?? "",
    stacktrace: p.error ?? "",
    pipeline_run_url: "",
    message: event.message,
    status: p.status,
    trigger:
      p.pipeline_schedule_id === null
        ? "no trigger"
        : `trigger ${p.pipeline_schedule_id}${typeof p.schedule_name === "string" && p.schedule_name ? ` \`${p.schedule_name}\`` : ""}`,
  };
  const key = TEMPLATE_OF[event.kind];
  const template = key ? templates?.[key] : undefined;
  const defaults = DEFAULTS[event.kind];
  const title = formatTemplate(template?.title ?? defaults.title, vars);
  const summary = formatTemplate(template?.summary ?? defaults.summary, vars);
  const details = template?.details !== undefined ? formatTemplate(template.details, vars) : summary;
  return { title, summary, details };
}

const escapeHtml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The body a channel's webhook expects, for this message. */
export function channelBody(target: ChannelTarget, message: Required<MessageTemplate>): string {
  const { title, summary, details } = message;
  switch (target.channel) {
    case "slack":
      return JSON.stringify({
        blocks: [
          { type: "header", text: { type: "plain_text", text: title } },
          { type: "divider" },
          { type: "section", text: { type: "mrkdwn", text: details } },
        ],
      });
    case "teams":
      return JSON.stringify({ summary: title, sections: [{ activityTitle: title, activitySubtitle: summary }] });
    case "discord":
      return JSON.stringify({ content: `**${title}**\n${summary}` });
    case "google_chat":
      return JSON.stringify({ text: `*${title}*\n${summary}` });
    case "telegram":
      return JSON.stringify({ text: `<b>${escapeHtml(title)}</b>\n\n${escapeHtml(summary)}`, parse_mode: "HTML" });
    case "opsgenie":
      return JSON.stringify({ message: title, description: details, ...target.extra });
  }
}

/** The outbox payload of a mail: the message without any SMTP credential. */
export function mailBody(email: EmailTarget, message: Required<MessageTemplate>): string {
  const mail: MailMessage = { from: email.from, to: email.to, subject: message.title, text: message.details };
  return JSON.stringify(mail);
}
