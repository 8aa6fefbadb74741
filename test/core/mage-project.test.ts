/**
 * A project laid out by Mage, loaded as it is: root metadata.yaml and no kiln.yaml, string
 * numbers, nested block uuids, local_python, callbacks and conditionals, every Mage notification
 * setting delivered to local receivers (chat webhooks over HTTP, email to a local SMTP server),
 * and the warning naming the keys kiln does not act on. Blocks are TypeScript here; the Python
 * side has its own tests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { SMTPServer } from "smtp-server";
import { ExecutorRegistry, type BlockRuntime } from "@kiln/core";
import * as notify from "@kiln/core/notify";
import { RunEngine } from "@kiln/core/engine";
import { loadProject, ProjectLoadError, type Project } from "@kiln/core/project";
import { moduleAddonRunner, pythonAddonRunner } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { fileLogSink, fileOutputStore, folderSource, openDatabase, pythonHost, smtpMailSender } from "@kiln/node";
import { localExecutor } from "@kiln/executor-local";
import { notificationConfigOf, notifyRunEnd } from "@kiln/scheduler";
import { CLI_MAIN, writeTempProject } from "../helpers/fixtures.ts";

interface Hit {
  path: string;
  body: Record<string, unknown>;
  authorization: string | null;
}
const hits: Hit[] = [];
const mails: Array<{ from: string; to: string[]; raw: string }> = [];
let http: ReturnType<typeof Bun.serve>;
let smtp: SMTPServer;
let smtpPort = 0;
const roots: string[] = [];

beforeAll(async () => {
  http = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      hits.push({
        path: new URL(request.url).pathname,
        body: (await request.json()) as Record<string, unknown>,
        authorization: request.headers.get("authorization"),
      });
      return new Response("ok", { status: request.url.endsWith("/opsgenie") ? 202 : 200 });
    },
  });
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", () => resolve()));
  smtpPort = (smtp.server.address() as { port: number }).port;
});

afterAll(async () => {
  http.stop(true);
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Mage's root metadata.yaml, with every notification setting pointed at the local receivers. */
function rootMetadata(base: string): string {
  return `project_type: standalone
project_uuid: 7d1f0c5e2b8a4c3f9e6d5a4b3c2d1e0f
variables_dir: ~/.mage_data
help_improve_mage: true
spark_config:
  app_name: 'my spark app'
  spark_master: 'local'
retry_config:
  retries: "0"
  delay: "1"
notification_config:
  alert_on:
    - trigger_failure
    - trigger_success
  slack_config:
    webhook_url: "{{ env_var('MAGE_TEST_SLACK_URL') }}"
  teams_config:
    webhook_url: ${base}/teams
  discord_config:
    webhook_url: ${base}/discord
    username: kiln-bot
  google_chat_config:
    webhook_url: ${base}/google_chat
  telegram_config:
    webhook_url: ${base}/telegram
  opsgenie_config:
    url: ${base}/opsgenie
    api_key: genie-secret
    priority: P2
  email_config:
    smtp_host: 127.0.0.1
    smtp_port: "${smtpPort}"
    smtp_mail_from: mage@example.test
    to_emails:
      - oncall@example.test
  message_templates:
    success:
      title: "Done: {pipeline_uuid}"
      summary: "Run {pipeline_run_id} of {pipeline_uuid} finished at {execution_time}."
`;
}

const PIPELINE = `name: mage etl
type: python
widgets:
  - uuid: row_count_chart
    type: chart
blocks:
  - uuid: load_orders
    type: data_loader
    language: python
    executor_type: local_python
    timeout: "60"
    retry_config:
      retries: "1"
    status: executed
    all_upstream_blocks_executed: true
    downstream_blocks: [cleaning/fill_missing, audit]
    upstream_blocks: []
  - uuid: cleaning/fill_missing
    type: transformer
    upstream_blocks: [load_orders]
  - uuid: export_orders
    type: data_exporter
    upstream_blocks: [cleaning/fill_missing]
    replicated_block: something
  - uuid: audit
    type: custom
    upstream_blocks: [load_orders]
  - uuid: audit_report
    type: custom
    upstream_blocks: [audit]
  - uuid: notes
    type: markdown
callbacks:
  - uuid: record_fill
    type: callback
    upstream_blocks: [cleaning/fill_missing]
conditionals:
  - uuid: has_rows
    type: conditional
    upstream_blocks: [export_orders]
  - uuid: audits/is_audit_day
    type: conditional
    upstream_blocks: [audit]
`;

const FAILING = `blocks:
  - uuid: boom
    type: custom
    executor_type: local_python
callbacks:
  - uuid: on_boom
    upstream_blocks: [boom]
`;

function files(base: string): Record<string, string> {
  return {
    "metadata.yaml": rootMetadata(base),
    "pipelines/mage_etl/metadata.yaml": PIPELINE,
    "pipelines/failing/metadata.yaml": FAILING,
    "data_loaders/load_orders.ts": "export default (ctx) => [{ id: 1, qty: 2 }, { id: 2, qty: null }];\n",
    "transformers/cleaning/fill_missing.ts": "export default (rows) => rows.map((r) => ({ ...r, qty: r.qty ?? 0 }));\n",
    "data_exporters/export_orders.ts": "export default (rows) => ({ exported: rows.length });\n",
    "custom/audit.ts": "export default () => 'audited';\n",
    "custom/audit_report.ts": "export default () => 'report';\n",
    "custom/boom.ts": "export default () => { throw new Error('warehouse unreachable'); };\n",
    "callbacks/record_fill.ts": [
      'import { writeFileSync } from "node:fs";',
      'import { join } from "node:path";',
      "export function onSuccess(output, ctx) {",
      '  writeFileSync(join(import.meta.dirname, "..", "record_fill.json"), JSON.stringify({ output, parent: ctx.parentBlockUuid, pipeline: ctx.pipelineUuid }));',
      "}",
      "export function onFailure() { throw new Error('not expected'); }",
      "",
    ].join("\n"),
    "callbacks/on_boom.ts": [
      'import { writeFileSync } from "node:fs";',
      'import { join } from "node:path";',
      "export default {",
      "  onFailure(error, ctx) {",
      '    writeFileSync(join(import.meta.dirname, "..", "on_boom.json"), JSON.stringify({ error: error.message, parent: ctx.parentBlockUuid }));',
      "  },",
      "};",
      "",
    ].join("\n"),
    "conditionals/has_rows.ts": "export default (rows, ctx) => rows.length > 0 && ctx.parentBlockUuid === 'export_orders';\n",
    "conditionals/audits/is_audit_day.ts": "export function condition() { return false; }\n",
  };
}

async function loadMage(root: string, environment: Record<string, string> = {}): Promise<Project> {
  return loadProject(folderSource(root), { executorTypes: ["local"], environment });
}

describe("a Mage-layout project", () => {
  let root: string;
  let base: string;
  beforeAll(() => {
    base = `http://127.0.0.1:${http.port}`;
    root = writeTempProject(files(base), "kiln-mage-");
    roots.push(root);
  });

  test("loads with no kiln.yaml: root metadata.yaml as the project settings, Mage's names and numbers", async () => {
    const project = await loadMage(root, { MAGE_TEST_SLACK_URL: `${base}/slack` });
    expect(project.settings.file).toBe("metadata.yaml");
    expect(project.settings.projectUuid).toBe("7d1f0c5e2b8a4c3f9e6d5a4b3c2d1e0f");
    expect(project.settings.retryConfig).toEqual({ retries: 0, delay: 1 });
    const etl = project.pipelines.get("mage_etl")!;
    const load = etl.blocksByUuid.get("load_orders")!;
    expect(load.executorType).toBe("local");
    expect(load.timeout).toBe(60);
    expect(load.retryConfig).toEqual({ retries: 1 });
    expect(etl.blocksByUuid.get("cleaning/fill_missing")!.modulePath).toBe("transformers/cleaning/fill_missing.ts");
    expect(etl.blocksByUuid.has("notes")).toBe(false);
    expect(etl.callbacks?.map((c) => [c.uuid, c.parents, c.modulePath])).toEqual([["record_fill", ["cleaning/fill_missing"], "callbacks/record_fill.ts"]]);
    expect(etl.conditionals?.map((c) => [c.uuid, c.parents, c.modulePath])).toEqual([
      ["has_rows", ["export_orders"], "conditionals/has_rows.ts"],
      ["audits/is_audit_day", ["audit"], "conditionals/audits/is_audit_day.ts"],
    ]);
    const config = notify.parseNotificationConfig(project.settings.notificationConfig);
    expect(Object.keys(config.channels ?? {}).sort()).toEqual(["discord", "google_chat", "opsgenie", "slack", "teams", "telegram"]);
    expect(config.email?.[0]).toMatchObject({ host: "127.0.0.1", port: smtpPort, from: "mage@example.test", to: ["oncall@example.test"] });
  });

  test("warns once per file, naming the keys kiln does not act on", async () => {
    const project = await loadMage(root);
    expect(project.warnings).toEqual([
      "metadata.yaml: kiln does not act on spark_config, notification_config.discord_config.username; they are ignored",
      "pipelines/mage_etl/metadata.yaml: kiln does not act on widgets, blocks[2] (export_orders).replicated_block, blocks[5] (notes), a markdown block (Mage does not run those either); they are ignored",
    ]);
  });

  test("an unset env_var() webhook is not configured, as in Mage", async () => {
    const project = await loadMage(root, {});
    expect(notify.parseNotificationConfig(project.settings.notificationConfig).channels?.slack).toEqual([]);
  });

  test("runs: callbacks after their block, a false conditional skips its block and its downstream, every channel notified", async () => {
    // outputs go to Mage's data folder, for the engine here and the block processes alike
    const dataDir = join(root, "mage-data");
    const project = await loadMage(root, { MAGE_TEST_SLACK_URL: `${base}/slack`, MAGE_DATA_DIR: dataDir });
    const outputStore = project.settings.outputStore;
    expect(outputStore).toEqual({ type: "local", path: join(dataDir, basename(root)) });
    const url = `file:${join(root, ".kiln/kiln.db")}`;
    const client = await openDatabase(url);
    const store = await Store.open(client);
    const source = folderSource(root);
    const runtime: BlockRuntime = {
      project,
      source,
      outputs: fileOutputStore(root, outputStore.type === "local" ? outputStore.path : undefined),
      logs: fileLogSink(root),
      secrets: { get: async (name) => `secret:${name}` },
      clock: store.clock,
      store,
    };
    // block runs are child processes (`kiln run-block`), which load this Mage project themselves
    const executors = new ExecutorRegistry().register(
      localExecutor({ runtime, command: [process.execPath, CLI_MAIN], env: { KILN_DATABASE_URL: url, MAGE_DATA_DIR: dataDir } }),
    );
    const engine = new RunEngine({
      store,
      project,
      executors,
      outputs: runtime.outputs,
      logs: runtime.logs,
      addons: moduleAddonRunner(runtime),
      beforeRunEnds: notifyRunEnd(store, () => project),
    });
    try {
      const run = await store.createPipelineRun({ pipelineUuid: "mage_etl", executionDate: Date.UTC(2026, 4, 1) });
      const done = await engine.execute(run!.id);
      expect(done.status).toBe("completed");
      const rows = await client.execute({ sql: "SELECT block_uuid, status FROM block_runs WHERE pipeline_run_id = ? ORDER BY id", args: [run!.id] });
      expect(Object.fromEntries(rows.rows.map((r) => [String(r.block_uuid), String(r.status)]))).toEqual({
        load_orders: "completed",
        "cleaning/fill_missing": "completed",
        export_orders: "completed",
        audit: "condition_failed",
        audit_report: "condition_failed",
      });
      expect(await runtime.outputs.read("mage_etl", done.executionPartition, "export_orders")).toEqual({ exported: 2 });
      expect(JSON.parse(readFileSync(join(root, "record_fill.json"), "utf8"))).toEqual({
        output: [{ id: 1, qty: 2 }, { id: 2, qty: 0 }],
        parent: "cleaning/fill_missing",
        pipeline: "mage_etl",
      });

      const failed = await store.createPipelineRun({ pipelineUuid: "failing", executionDate: Date.UTC(2026, 4, 1) });
      expect((await engine.execute(failed!.id)).status).toBe("failed");
      expect(JSON.parse(readFileSync(join(root, "on_boom.json"), "utf8"))).toEqual({ error: "warehouse unreachable", parent: "boom" });

      // delivery, as the scheduler does it: headers and SMTP settings come from the config, not the outbox
      const configs = [notificationConfigOf(project), ...[...project.pipelines.keys()].map((p) => notificationConfigOf(project, p))];
      const summary = await notify.deliverDueNotifications(store, {
        headers: notify.webhookHeaders(configs),
        email: notify.emailSettings(configs),
        sendMail: smtpMailSender,
      });
      expect(summary).toEqual({ sent: 14, failed: 0, gaveUp: 0 });
      // the outbox holds neither the Opsgenie key nor anything of the SMTP settings but host and recipients
      const outbox = await client.execute("SELECT target, payload FROM notifications");
      expect(JSON.stringify(outbox.rows)).not.toContain("genie-secret");
    } finally {
      client.close();
    }

    // deliveries go out concurrently, so each channel's success and failure may arrive in either
    // order: the success message first, then the failure, by what they say
    const isFailure = (body: unknown) => /failing|unreachable/.test(JSON.stringify(body));
    const by = (path: string) => {
      const bodies = hits.filter((h) => h.path === path).map((h) => h.body);
      return [...bodies.filter((b) => !isFailure(b)), ...bodies.filter(isFailure)];
    };
    // success (message_templates.success) then failure (kiln's default wording), on every channel
    expect(by("/slack")[0]).toEqual({
      blocks: [
        { type: "header", text: { type: "plain_text", text: "Done: mage_etl" } },
        { type: "divider" },
        { type: "section", text: { type: "mrkdwn", text: expect.stringMatching(/^Run \d+ of mage_etl finished at 2026-05-01T00:00:00.000Z\.$/) } },
      ],
    });
    expect(JSON.stringify(by("/slack")[1])).toContain("warehouse unreachable");
    expect(by("/teams")[0]).toMatchObject({ summary: "Done: mage_etl", sections: [{ activityTitle: "Done: mage_etl" }] });
    expect(by("/discord")[0]!.content).toStartWith("**Done: mage_etl**\n");
    expect(by("/google_chat")[0]!.text).toStartWith("*Done: mage_etl*\n");
    expect(by("/telegram")[0]).toMatchObject({ parse_mode: "HTML", text: expect.stringContaining("<b>Done: mage_etl</b>") });
    expect(by("/opsgenie")[1]).toMatchObject({ message: "Pipeline failing failed", priority: "P2", description: expect.stringContaining("warehouse unreachable") });
    expect(hits.find((h) => h.path === "/opsgenie")!.authorization).toBe("GenieKey genie-secret");
    expect(hits.filter((h) => h.path !== "/opsgenie").every((h) => h.authorization === null)).toBe(true);
    expect(mails.map((m) => [m.from, m.to])).toEqual([
      ["mage@example.test", ["oncall@example.test"]],
      ["mage@example.test", ["oncall@example.test"]],
    ]);
    const byOrder = [...mails].sort((a, b) => Number(a.raw.includes("Subject: Pipeline failing failed")) - Number(b.raw.includes("Subject: Pipeline failing failed")));
    expect(byOrder[0]!.raw).toContain("Subject: Done: mage_etl");
    expect(byOrder[1]!.raw).toContain("Subject: Pipeline failing failed");
    expect(byOrder[1]!.raw.replace(/=\r\n/g, "")).toContain("Error: block boom failed: warehouse unreachable");
  });
});

describe("Mage pipelines kiln refuses or names", () => {
  test("streaming and integration pipelines are refused, saying why", async () => {
    for (const type of ["streaming", "integration"]) {
      const root = writeTempProject({ "metadata.yaml": "project_type: standalone\n", "pipelines/p/metadata.yaml": `type: ${type}\nblocks: []\n` });
      roots.push(root);
      const error = await loadMage(root).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProjectLoadError);
      expect((error as ProjectLoadError).message).toStartWith(`pipelines/p/metadata.yaml: type: kiln does not run a`);
      expect((error as ProjectLoadError).message).toContain("batch pipelines (type: python");
    }
  });

  test("a callback attached to a block the pipeline lacks is an error naming the field", async () => {
    const root = writeTempProject({
      "metadata.yaml": "",
      "pipelines/p/metadata.yaml": "blocks:\n  - {uuid: a, type: custom}\ncallbacks:\n  - {uuid: cb, upstream_blocks: [b]}\n",
      "custom/a.ts": "export default () => 1;\n",
      "callbacks/cb.ts": "export function onSuccess() {}\n",
    });
    roots.push(root);
    const error = (await loadMage(root).catch((e: unknown) => e)) as ProjectLoadError;
    expect(error.message).toBe('pipelines/p/metadata.yaml: callbacks[0].upstream_blocks[0]: expected the uuid of a block of this pipeline, got "b"');
  });

  test("a root with neither kiln.yaml nor metadata.yaml says both", async () => {
    const root = writeTempProject({ "pipelines/.keep": "" });
    roots.push(root);
    const error = (await loadMage(root).catch((e: unknown) => e)) as ProjectLoadError;
    expect(error.message).toContain("has no kiln.yaml (nor a Mage project's metadata.yaml)");
  });
});

describe("Python callbacks and conditionals", () => {
  test("run through kiln's Python runner with Mage's decorators: @condition, @on_success, @callback('failure')", async () => {
    const root = writeTempProject({
      "metadata.yaml": "project_type: standalone\n",
      "pipelines/py/metadata.yaml": [
        "settings: {allow_blocks_to_fail: true}",
        "blocks:",
        "  - {uuid: numbers, type: data_loader}",
        "  - {uuid: total, type: transformer, upstream_blocks: [numbers]}",
        "  - {uuid: never, type: transformer, upstream_blocks: [numbers]}",
        "  - {uuid: fails, type: custom}",
        "callbacks:",
        "  - {uuid: after_total, upstream_blocks: [total, fails]}",
        "conditionals:",
        "  - {uuid: enough, upstream_blocks: [total]}",
        "  - {uuid: nope, upstream_blocks: [never]}",
        "",
      ].join("\n"),
      "data_loaders/numbers.ts": "export default () => [1, 2, 3];\n",
      "transformers/total.ts": "export default (xs) => xs.reduce((a, b) => a + b, 0);\n",
      "transformers/never.ts": "export default () => 'ran';\n",
      "custom/fails.ts": "export default () => { throw new Error('disk full'); };\n",
      "conditionals/enough.py": [
        "if 'condition' not in globals():",
        "    from mage_ai.data_preparation.decorators import condition",
        "",
        "@condition",
        "def evaluate_condition(numbers, *args, **kwargs) -> bool:",
        "    return len(numbers) == 3 and kwargs['parent_block_uuid'] == 'total'",
        "",
      ].join("\n"),
      "conditionals/nope.py": "from mage_ai.data_preparation.decorators import condition\n\n@condition\ndef evaluate_condition(*args, **kwargs):\n    return False\n",
      "callbacks/after_total.py": [
        "import json, os",
        "if 'on_success' not in globals():",
        "    from mage_ai.data_preparation.decorators import on_success",
        "if 'callback' not in globals():",
        "    from mage_ai.data_preparation.decorators import callback",
        "",
        "@on_success",
        "def success(**kwargs):",
        "    with open(os.path.join(kwargs['repo_path'] if 'repo_path' in kwargs else '.', 'success.json'), 'w') as f:",
        "        json.dump({'parent': kwargs['parent_block_uuid'], 'pipeline': kwargs['pipeline_uuid']}, f)",
        "",
        "@callback('failure')",
        "def failure(*args, **kwargs):",
        "    with open('failure.json', 'w') as f:",
        "        json.dump({'parent': kwargs['parent_block_uuid'], 'error': str(kwargs['__error'])}, f)",
        "",
      ].join("\n"),
    });
    roots.push(root);
    const project = await loadMage(root);
    const client = await openDatabase(`file:${join(root, ".kiln/kiln.db")}`);
    const store = await Store.open(client);
    const runtime: BlockRuntime = {
      project,
      source: folderSource(root),
      outputs: fileOutputStore(root),
      logs: fileLogSink(root),
      secrets: { get: async (name) => `secret:${name}` },
      clock: store.clock,
      store,
      python: pythonHost({ interpreter: process.env.KILN_PYTHON ?? "python3", ownProcessGroup: true }),
    };
    const etl = project.pipelines.get("py")!;
    for (const block of etl.blocks) block.executorConfig = { in_process: true };
    const engine = new RunEngine({
      store,
      project,
      executors: new ExecutorRegistry().register(localExecutor({ runtime, command: [process.execPath, CLI_MAIN] })),
      outputs: runtime.outputs,
      logs: runtime.logs,
      addons: moduleAddonRunner(runtime, pythonAddonRunner),
    });
    try {
      const run = await store.createPipelineRun({ pipelineUuid: "py", executionDate: Date.UTC(2026, 4, 1) });
      const done = await engine.execute(run!.id);
      expect(done.status).toBe("failed");
      const rows = await client.execute({ sql: "SELECT block_uuid, status FROM block_runs WHERE pipeline_run_id = ? ORDER BY id", args: [run!.id] });
      expect(Object.fromEntries(rows.rows.map((r) => [String(r.block_uuid), String(r.status)]))).toEqual({
        numbers: "completed",
        total: "completed",
        never: "condition_failed",
        fails: "failed",
      });
      expect(JSON.parse(readFileSync(join(root, "success.json"), "utf8"))).toEqual({ parent: "total", pipeline: "py" });
      expect(JSON.parse(readFileSync(join(root, "failure.json"), "utf8"))).toEqual({ parent: "fails", error: "disk full" });
    } finally {
      client.close();
    }
  }, 60_000);
});
