/** notification_config parsing and merging, event payloads, target selection and URL redaction (no I/O). */
import { describe, expect, test } from "bun:test";
import type { PipelineRun, PipelineSchedule } from "@kiln/core";
import {
  DEFAULT_ALERT_ON,
  drift,
  mergeNotificationConfig,
  NotificationConfigError,
  outboxEntries,
  parseNotificationConfig,
  redactText,
  redactUrl,
  runFailed,
  runSucceeded,
  slackBody,
  slaPassed,
  webhookBody,
  unusedNotificationKeys,
  webhookHeaders,
} from "../../core/src/notify/index.ts";

const SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";

const run: PipelineRun = {
  id: 12,
  pipelineScheduleId: 3,
  pipelineUuid: "orders",
  executionDate: Date.UTC(2026, 0, 2, 3, 0, 0),
  executionPartition: "3/20260102T030000",
  status: "running",
  variables: {},
  event: null,
  metrics: {},
  backfillId: null,
  passedSla: false,
  owner: null,
  startedAt: Date.UTC(2026, 0, 2, 3, 0, 5),
  completedAt: null,
  createdAt: Date.UTC(2026, 0, 2, 3, 0, 0),
  updatedAt: Date.UTC(2026, 0, 2, 3, 0, 5),
};

const schedule: PipelineSchedule = {
  id: 3,
  tags: [],
  name: "hourly",
  pipelineUuid: "orders",
  scheduleType: "time",
  scheduleInterval: "@hourly",
  startTime: null,
  timezone: "UTC",
  status: "active",
  variables: {},
  sla: 600,
  hasToken: false,
  settings: {},
  description: null,
  eventPattern: null,
  lastEnabledAt: null,
  createdAt: 0,
  updatedAt: 0,
};

/** The error parseNotificationConfig throws for `input`. */
function parseError(input: unknown): NotificationConfigError {
  try {
    parseNotificationConfig(input);
  } catch (e) {
    if (e instanceof NotificationConfigError) return e;
    throw e;
  }
  throw new Error("parsed without error");
}

describe("parseNotificationConfig", () => {
  test("null, absent and {} are no notifications", () => {
    expect(parseNotificationConfig(null)).toEqual({});
    expect(parseNotificationConfig(undefined)).toEqual({});
    expect(parseNotificationConfig({})).toEqual({});
  });

  test("snake_case in, camelCase out; unset keys stay absent so merging can inherit them", () => {
    const config = parseNotificationConfig({
      alert_on: ["trigger_failure", "trigger_success"],
      webhooks: [
        { url: "https://example.com/hook", headers: { Authorization: "Bearer t" } },
        { url: "http://localhost:9000/x", alert_on: ["drift"], headers: null },
      ],
      slack: [{ webhook_url: SLACK }],
      slack_config: { webhook_url: "" },
    });
    expect(config).toEqual({
      alertOn: ["trigger_failure", "trigger_success"],
      webhooks: [
        { url: "https://example.com/hook", headers: { Authorization: "Bearer t" }, alertOn: null },
        { url: "http://localhost:9000/x", headers: {}, alertOn: ["drift"] },
      ],
      slack: [{ webhookUrl: SLACK, alertOn: null }],
      // Mage's slack_config with an unset env_var() renders as "": not configured, as in Mage
      channels: { slack: [] },
    });
    expect(parseNotificationConfig({ alert_on: null, slack: [] })).toEqual({ slack: [] });
  });

  test.each([
    [[], "notification_config", "an object (alert_on, webhooks, slack, or Mage's slack_config", "a list"],
    [{ alert_on: "trigger_failure" }, "notification_config.alert_on", "a list of events", '"trigger_failure"'],
    [{ alert_on: ["trigger_failure", "on_failure"] }, "notification_config.alert_on[1]", "one of trigger_failure, trigger_success, trigger_passed_sla, drift", '"on_failure"'],
    [{ webhooks: { url: "https://x.test" } }, "notification_config.webhooks", "a list of webhooks", "an object"],
    [{ webhooks: [{}] }, "notification_config.webhooks[0].url", "an http or https URL", "nothing"],
    [{ webhooks: [{ url: "ftp://x.test/a" }] }, "notification_config.webhooks[0].url", "an http or https URL", '"ftp://x.test/***"'],
    [{ webhooks: [{ url: "https://x.test", alert_on: ["nope"] }] }, "notification_config.webhooks[0].alert_on[0]", "one of", '"nope"'],
    [{ webhooks: [{ url: "https://x.test", headers: ["a"] }] }, "notification_config.webhooks[0].headers", "a mapping of header names to strings", "a list"],
    [{ webhooks: [{ url: "https://x.test", headers: { "X-Retries": 3 } }] }, "notification_config.webhooks[0].headers.X-Retries", "a string header value", "a number"],
    [{ webhooks: [{ url: "https://x.test", headers: { "Bad Name": "v" } }] }, "notification_config.webhooks[0].headers", "a header name", '"Bad Name"'],
    [{ slack: [{ webhook_url: SLACK }, "x"] }, "notification_config.slack[1]", "a Slack target (an object with webhook_url)", '"x"'],
    [{ slack: [{ webhook_url: 42 }] }, "notification_config.slack[0].webhook_url", "an http or https URL", "42"],
  ])("%j -> %s: expected %s", (input, field, expected, got) => {
    const error = parseError(input);
    expect(error.field).toStartWith(field);
    expect(error.expected).toContain(expected);
    expect(error.got).toBe(got);
    expect(error.message).toBe(`${error.field}: expected ${error.expected}, got ${error.got}`);
  });

  test("the field prefix is the caller's (the loader wraps the error with its file)", () => {
    expect(() => parseNotificationConfig({ webhooks: [{}] }, "pipelines.orders.notification_config")).toThrow(
      "pipelines.orders.notification_config.webhooks[0].url: expected an http or https URL, got nothing",
    );
  });

  test("an error shows no secret: Slack URLs are redacted, header values not shown", () => {
    const bad = parseError({ slack: [{ webhook_url: "hooks.slack.com/services/T000/B000/XXXXSECRET" }] });
    expect(bad.message).not.toContain("XXXXSECRET");
    const http = parseError({ slack: [{ webhook_url: "ftp://hooks.slack.com/services/T000/B000/XXXXSECRET" }] });
    expect(http.got).toBe('"ftp://hooks.slack.com/***"');
    const header = parseError({ webhooks: [{ url: "https://x.test", headers: { Authorization: "Bearer secret\nX-Evil: 1" } }] });
    expect(header.field).toBe("notification_config.webhooks[0].headers.Authorization");
    expect(header.message).not.toContain("secret");
    const nested = parseError({ webhooks: [{ url: "https://x.test/a", headers: {} }, { url: SLACK, headers: "x" }] });
    expect(nested.message).not.toContain("XXXXSECRET");
  });
});

describe("mergeNotificationConfig", () => {
  const project = parseNotificationConfig({
    alert_on: ["trigger_failure"],
    webhooks: [{ url: "https://project.test/hook" }],
    slack: [{ webhook_url: SLACK }],
  });

  test("a pipeline key replaces the project's list; an unset key is inherited", () => {
    const pipeline = parseNotificationConfig({ webhooks: [{ url: "https://pipeline.test/hook" }] });
    expect(mergeNotificationConfig(project, pipeline)).toEqual({
      alertOn: ["trigger_failure"],
      webhooks: [{ url: "https://pipeline.test/hook", headers: {}, alertOn: null }],
      slack: project.slack,
    });
  });

  test("an empty pipeline list silences the project's targets of that kind", () => {
    expect(mergeNotificationConfig(project, parseNotificationConfig({ slack: [] })).slack).toEqual([]);
  });

  test("a pipeline alert_on keeps the project's targets", () => {
    const merged = mergeNotificationConfig(project, parseNotificationConfig({ alert_on: ["trigger_success"] }));
    expect(merged.alertOn).toEqual(["trigger_success"]);
    expect(merged.webhooks).toEqual(project.webhooks);
    expect(outboxEntries(merged, runSucceeded(run, { uuid: "orders" }))).toHaveLength(2);
  });

  test("no pipeline config is the project's; neither is none", () => {
    expect(mergeNotificationConfig(project, undefined)).toEqual(project);
    expect(mergeNotificationConfig(null, null)).toEqual({});
  });
});

describe("target selection", () => {
  const config = parseNotificationConfig({
    webhooks: [{ url: "https://a.test/hook" }, { url: "https://b.test/hook", alert_on: ["trigger_success"] }],
    slack: [{ webhook_url: SLACK }],
  });

  test("the default is failure, SLA and drift; success is opt-in", () => {
    expect([...DEFAULT_ALERT_ON]).toEqual(["trigger_failure", "trigger_passed_sla", "drift"]);
    const targets = (event: Parameters<typeof outboxEntries>[1]) => outboxEntries(config, event).map((e) => e.target);
    expect(targets(runFailed(run, { uuid: "orders" }, "boom"))).toEqual(["https://a.test/hook", SLACK]);
    expect(targets(slaPassed(run, 600))).toEqual(["https://a.test/hook", SLACK]);
    expect(targets(drift(schedule, 90_000))).toEqual(["https://a.test/hook", SLACK]);
    expect(targets(runSucceeded(run, { uuid: "orders" }))).toEqual(["https://b.test/hook"]);
  });

  test("webhooks get the JSON payload, Slack gets { text }", () => {
    const event = runFailed(run, { uuid: "orders" }, "boom");
    const [hook, slack] = outboxEntries(config, event);
    expect(JSON.parse(hook!.body)).toEqual(event.payload);
    expect(JSON.parse(slack!.body)).toEqual({ text: event.message });
  });

  test("an empty alert_on sends nothing", () => {
    const quiet = parseNotificationConfig({ alert_on: [], slack: [{ webhook_url: SLACK }] });
    expect(outboxEntries(quiet, runFailed(run, { uuid: "orders" }))).toEqual([]);
  });

  test("webhookHeaders looks headers up by URL, the later config winning", () => {
    const a = parseNotificationConfig({ webhooks: [{ url: "https://a.test/hook", headers: { "X-A": "1" } }] });
    const b = parseNotificationConfig({ webhooks: [{ url: "https://a.test/hook", headers: { "X-A": "2" } }] });
    const headers = webhookHeaders([a, undefined, b]);
    expect(headers("https://a.test/hook")).toEqual({ "X-A": "2" });
    expect(headers("https://unknown.test/")).toEqual({});
  });
});

describe("events", () => {
  test("runFailed: the payload's fields and a one-line message; status is failed before the run's row says so", () => {
    const event = runFailed(run, { uuid: "orders", name: "Orders" }, "block load failed:\n  Error: boom\n    at x.ts:1");
    expect(event.kind).toBe("run_failed");
    expect(event.message).toBe(
      "Pipeline Orders (orders) run 12 failed (execution date 2026-01-02T03:00:00.000Z): block load failed: Error: boom at x.ts:1",
    );
    expect(event.payload).toEqual({
      event: "run_failed",
      pipeline_uuid: "orders",
      pipeline_run_id: 12,
      pipeline_schedule_id: 3,
      execution_date: "2026-01-02T03:00:00.000Z",
      status: "failed",
      message: event.message,
      pipeline_name: "Orders",
      error: "block load failed:\n  Error: boom\n    at x.ts:1",
      started_at: "2026-01-02T03:00:05.000Z",
      completed_at: null,
    });
    expect(webhookBody(event)).toBe(JSON.stringify(event.payload));
  });

  test("runSucceeded has status completed", () => {
    const event = runSucceeded({ ...run, completedAt: run.startedAt! + 1000 }, { uuid: "orders" });
    expect(event.payload).toMatchObject({ event: "run_succeeded", status: "completed", completed_at: "2026-01-02T03:00:06.000Z" });
    expect(event.message).toBe("Pipeline orders run 12 completed (execution date 2026-01-02T03:00:00.000Z)");
  });

  test("slaPassed: the deadline is the execution date plus the SLA seconds", () => {
    const event = slaPassed(run, 600);
    expect(event.payload).toMatchObject({ event: "sla_passed", status: "running", sla_seconds: 600, deadline: "2026-01-02T03:10:00.000Z" });
    expect(event.message).toContain("passed its SLA of 600 s");
  });

  test("drift names the trigger and how late it is", () => {
    const event = drift(schedule, 3_723_000, Date.UTC(2026, 0, 2, 4));
    expect(event.payload).toMatchObject({
      event: "drift",
      pipeline_uuid: "orders",
      pipeline_run_id: null,
      pipeline_schedule_id: 3,
      execution_date: "2026-01-02T04:00:00.000Z",
      status: "active",
      late_by_ms: 3_723_000,
    });
    expect(event.message).toBe("Trigger hourly of pipeline orders is running 1h 2m 3s late for execution date 2026-01-02T04:00:00.000Z");
    expect(drift(schedule, 45_000).payload.execution_date).toBeNull();
  });

  test("Slack text escapes &, < and > (Slack would read them as markup)", () => {
    const event = runFailed(run, { uuid: "orders" }, "x < 1 && y > 2 <!channel>");
    expect(JSON.parse(slackBody(event)).text).toEndWith("x &lt; 1 &amp;&amp; y &gt; 2 &lt;!channel&gt;");
  });

  test("a huge failure detail is bounded in the payload and in the message", () => {
    const event = runFailed(run, { uuid: "orders" }, "e".repeat(50_000));
    expect((event.payload.error as string).length).toBe(10_000);
    expect(event.message.length).toBeLessThan(500);
  });
});

describe("redaction", () => {
  test("redactUrl keeps scheme and host only", () => {
    expect(redactUrl(SLACK)).toBe("https://hooks.slack.com/***");
    expect(redactUrl("http://user:pw@localhost:8080/a?token=1")).toBe("http://localhost:8080/***");
    expect(redactUrl("https://example.com")).toBe("https://example.com");
    expect(redactUrl("not a url")).toBe("<invalid URL>");
  });

  test("redactText removes URLs and a secret URL's path wherever it appears", () => {
    expect(redactText(`failed to POST ${SLACK}: refused`)).toBe("failed to POST https://hooks.slack.com/***: refused");
    expect(redactText("no route to /services/T000/B000/XXXXSECRET", SLACK)).toBe("no route to /***");
    expect(redactText("HTTP 500", SLACK)).toBe("HTTP 500");
  });
});

describe("keys kiln does not act on", () => {
  test("are named with their path, nested and in lists; known and empty keys are not", () => {
    expect(
      unusedNotificationKeys({
        alert_on: ["trigger_failure"],
        slack_config: { webhook_url: "https://hooks.example/a", channel: "#alerts", username: "" },
        webhooks: [{ url: "https://a.example", method: "PUT" }],
        email_config: { smtp_host: "mail", smtp_mail_from: "a@b", to_emails: ["c@d"], cc_emails: ["e@f"] },
        message_templates: { failure: { title: "t", footer: "x" }, retry: { title: "r" } },
        pagerduty_config: { routing_key: "k" },
        ntfy_config: null,
      }),
    ).toEqual([
      "notification_config.slack_config.channel",
      "notification_config.webhooks[0].method",
      "notification_config.email_config.cc_emails",
      "notification_config.message_templates.failure.footer",
      "notification_config.message_templates.retry",
      "notification_config.pagerduty_config",
    ]);
  });
  test("a config kiln reads in full names nothing", () => {
    expect(
      unusedNotificationKeys({
        alert_on: ["trigger_success"],
        teams_config: { webhook_url: ["https://a.example", "https://b.example"] },
        opsgenie_config: { url: "https://api.opsgenie.com/v2/alerts", api_key: "k", priority: "P1", responders: [], tags: ["x"], details: {} },
        slack: [{ webhook_url: "https://hooks.example", alert_on: ["trigger_failure"] }],
      }),
    ).toEqual([]);
  });
});
