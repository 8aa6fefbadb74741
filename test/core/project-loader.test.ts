import { afterAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  fanOutSourceOf,
  isFanOutChild,
  loadProject,
  ProjectLoadError,
  type LoadProjectOptions,
  type Project,
} from "../../core/src/project/index.ts";
import { folderSource } from "../../node/src/folder-source.ts";

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

/** Writes a project (project-relative path -> content) to a fresh temp folder. */
async function writeProject(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "kiln-loader-"));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

async function load(files: Record<string, string>, options?: LoadProjectOptions): Promise<Project> {
  return loadProject(folderSource(await writeProject(files)), options);
}

async function loadError(files: Record<string, string>, options?: LoadProjectOptions): Promise<ProjectLoadError> {
  try {
    await load(files, options);
  } catch (error) {
    if (error instanceof ProjectLoadError) return error;
    throw error;
  }
  throw new Error("expected the project to fail to load");
}

async function expectError(
  files: Record<string, string>,
  expected: { file: string; field: string; message: string | string[] },
  options?: LoadProjectOptions,
): Promise<ProjectLoadError> {
  const error = await loadError(files, options);
  expect({ file: error.file, field: error.field }).toEqual({ file: expected.file, field: expected.field });
  for (const part of [expected.message].flat()) expect(error.message).toContain(part);
  expect(error.message.startsWith(expected.field ? `${expected.file}: ${expected.field}: ` : `${expected.file}: `)).toBe(true);
  return error;
}

const MODULE = "export default () => 1;\n";

/** A minimal valid project with one pipeline `p` whose metadata.yaml is given. */
function withPipeline(metadata: string, extra: Record<string, string> = {}): Record<string, string> {
  return { "kiln.yaml": "", "pipelines/p/metadata.yaml": metadata, ...extra };
}

const META = "pipelines/p/metadata.yaml";
const TRIGGERS = "pipelines/p/triggers.yaml";

describe("a valid project", () => {
  const files: Record<string, string> = {
    "kiln.yaml": `
database_url: file:.kiln/kiln.db
executor_type: local
executor_config: {max_workers: 4}
retry_config: {retries: 2, delay: 5, max_delay: 60, exponential_backoff: true}
concurrency_config: {block_run_limit: 16, pipeline_run_limit: 4, pipeline_run_limit_all_triggers: 8, on_pipeline_run_limit_reached: wait}
variables: {env: dev}
plugins: [some-npm-package]
notification_config: {}
`,
    // A chain listed out of order, with the keys Mage writes (nulls, downstream_blocks, language).
    "pipelines/etl/metadata.yaml": `
uuid: etl
name: ETL
description: Orders, end to end
executor_type: docker
executor_config: null
retry_config: {retries: 1}
concurrency_config: {block_run_limit: 2}
variables: {table: orders}
settings: {allow_blocks_to_fail: false, timeout: 3600, timeout_status: failed}
type: python
blocks:
  - uuid: export_orders
    type: data_exporter
    upstream_blocks: [clean_orders]
    downstream_blocks: []
    language: python
    executor_type: null
    timeout: null
  - uuid: load_orders
    name: Load orders
    type: data_loader
    downstream_blocks: [clean_orders]
    executor_type: local
    executor_config: {in_process: true}
    retry_config: {retries: 3, max_delay: 30, exponential_backoff: false}
    timeout: 30
  - uuid: clean_orders
    type: transformer
    upstream_blocks: [load_orders]
`,
    "data_loaders/load_orders.ts": MODULE,
    "transformers/clean_orders.js": MODULE,
    "data_exporters/export_orders.ts": MODULE,
    "data_exporters/export_orders.js": MODULE,
    // list_files fans out; parse runs per file (also reading settings); count runs per file and
    // reduces; report gets the list of counts.
    "pipelines/fanout/metadata.yaml": `
blocks:
  - uuid: list_files
    type: data_loader
    configuration: {dynamic: true}
  - uuid: settings
    type: data_loader
  - uuid: parse
    type: transformer
    upstream_blocks: [list_files, settings]
  - uuid: count
    type: transformer
    upstream_blocks: [parse]
    configuration: {reduce_output: true, file_source: {path: x}}
  - uuid: report
    type: data_exporter
    upstream_blocks: [count, settings]
`,
    "data_loaders/list_files.ts": MODULE,
    "data_loaders/settings.ts": MODULE,
    "transformers/parse.ts": MODULE,
    "transformers/count.ts": MODULE,
    "data_exporters/report.ts": MODULE,
    "pipelines/scheduled/metadata.yaml": `
blocks:
  - uuid: wait_for_file
    type: sensor
    configuration: {poll_interval: 10}
  - uuid: notify
    type: custom
    upstream_blocks: [wait_for_file]
`,
    "sensors/wait_for_file.ts": MODULE,
    "custom/notify.js": MODULE,
    "pipelines/scheduled/triggers.yaml": `
triggers:
  - name: daily
    schedule_type: time
    schedule_interval: '@daily'
    start_time: 2024-01-01 00:00:00
    timezone: Europe/Paris
    status: active
    variables: {full: false}
    sla: 3600
    settings: {skip_if_previous_running: true, timeout: 600, timeout_status: cancelled, custom_key: 1}
    description: Every day
    last_enabled_at: 2024-01-02T03:04:05.678+02:00
  - name: webhook
    schedule_type: api
    token: abc123
    envs: [prod]
  - name: on_upload
    schedule_type: event
    envs: [dev, prod]
`,
    // Not pipelines: a stray file and an empty folder.
    "pipelines/README.md": "notes\n",
  };

  test("loads the project settings", async () => {
    const project = await load(files);
    expect(project.settings).toEqual({
      databaseUrl: "file:.kiln/kiln.db",
      executorType: "local",
      executorConfig: { max_workers: 4 },
      retryConfig: { retries: 2, delay: 5, maxDelay: 60, exponentialBackoff: true },
      concurrencyConfig: {
        blockRunLimit: 16,
        pipelineRunLimit: 4,
        pipelineRunLimitAllTriggers: 8,
        onPipelineRunLimitReached: "wait",
      },
      variables: { env: "dev" },
      plugins: ["some-npm-package"],
      notificationConfig: {},
      executors: {},
      outputStore: { type: "local" },
    });
    expect([...project.pipelines.keys()]).toEqual(["etl", "fanout", "scheduled"]);
  });

  test("an empty kiln.yaml gives the defaults", async () => {
    const project = await load({ "kiln.yaml": "" });
    expect(project.settings.executorType).toBe("local");
    expect(project.settings.databaseUrl).toBeNull();
    expect(project.pipelines.size).toBe(0);
  });

  test("a chain: order, downstream blocks, modules and defaults", async () => {
    const etl = (await load(files)).pipelines.get("etl");
    if (!etl) throw new Error("etl not loaded");
    expect(etl.name).toBe("ETL");
    expect(etl.description).toBe("Orders, end to end");
    expect(etl.executorType).toBe("docker");
    expect(etl.executorConfig).toEqual({});
    expect(etl.retryConfig).toEqual({ retries: 1 });
    expect(etl.concurrencyConfig).toEqual({ blockRunLimit: 2 });
    expect(etl.variables).toEqual({ table: "orders" });
    expect(etl.settings).toEqual({ allowBlocksToFail: false, timeout: 3600, timeoutStatus: "failed" });
    expect(etl.triggers).toEqual([]);
    expect(etl.blocks.map((b) => b.uuid)).toEqual(["load_orders", "clean_orders", "export_orders"]);
    expect([...etl.blocksByUuid.keys()]).toEqual(["load_orders", "clean_orders", "export_orders"]);

    expect(etl.blocksByUuid.get("load_orders")).toEqual({
      uuid: "load_orders",
      name: "Load orders",
      type: "data_loader",
      upstreamBlocks: [],
      downstreamBlocks: ["clean_orders"],
      executorType: "local",
      executorConfig: { in_process: true },
      retryConfig: { retries: 3, maxDelay: 30, exponentialBackoff: false },
      timeout: 30,
      configuration: {},
      modulePath: "data_loaders/load_orders.ts",
    });
    expect(etl.blocksByUuid.get("export_orders")).toEqual({
      uuid: "export_orders",
      name: "export_orders",
      type: "data_exporter",
      upstreamBlocks: ["clean_orders"],
      downstreamBlocks: [],
      executorType: null,
      executorConfig: {},
      retryConfig: {},
      timeout: null,
      configuration: {},
      modulePath: "data_exporters/export_orders.ts",
    });
    expect(etl.blocksByUuid.get("clean_orders")?.modulePath).toBe("transformers/clean_orders.js");
  });

  test("a dynamic fan-out with a reduce", async () => {
    const fanout = (await load(files)).pipelines.get("fanout");
    if (!fanout) throw new Error("fanout not loaded");
    expect(fanout.name).toBe("fanout");
    expect(fanout.executorType).toBeNull();
    expect(fanout.blocks.map((b) => b.uuid)).toEqual(["list_files", "settings", "parse", "count", "report"]);
    expect(fanout.blocksByUuid.get("settings")?.downstreamBlocks).toEqual(["parse", "report"]);
    expect<unknown>(fanout.blocksByUuid.get("count")?.configuration).toEqual({ reduceOutput: true, file_source: { path: "x" } });

    const sources = fanout.blocks.map((b) => [b.uuid, fanOutSourceOf(fanout, b.uuid)]);
    expect(sources).toEqual([
      ["list_files", null],
      ["settings", null],
      ["parse", "list_files"],
      ["count", "parse"],
      ["report", null],
    ]);
    expect(fanout.blocks.filter((b) => isFanOutChild(fanout, b.uuid)).map((b) => b.uuid)).toEqual(["parse", "count"]);
  });

  test("triggers", async () => {
    const scheduled = (await load(files, { env: "prod" })).pipelines.get("scheduled");
    if (!scheduled) throw new Error("scheduled not loaded");
    expect(scheduled.blocksByUuid.get("wait_for_file")?.configuration).toEqual({ pollInterval: 10 });
    expect(scheduled.blocksByUuid.get("notify")?.modulePath).toBe("custom/notify.js");
    expect(scheduled.triggers.map((t) => t.name)).toEqual(["daily", "webhook", "on_upload"]);
    expect(scheduled.triggers[0]).toEqual({
      name: "daily",
      scheduleType: "time",
      scheduleInterval: "@daily",
      startTime: Date.UTC(2024, 0, 1),
      timezone: "Europe/Paris",
      status: "active",
      variables: { full: false },
      sla: 3600,
      settings: { skipIfPreviousRunning: true, timeout: 600, timeoutStatus: "cancelled", custom_key: 1 },
      description: "Every day",
      token: null,
      envs: [],
      lastEnabledAt: Date.UTC(2024, 0, 2, 1, 4, 5, 678),
      tags: [],
    });
    expect(scheduled.triggers[1]).toMatchObject({
      scheduleType: "api",
      status: "inactive",
      timezone: "UTC",
      token: "abc123",
      startTime: null,
      settings: {},
    });
  });

  test("a trigger's keys and settings kiln does not act on are named in one warning for the file; Mage's pipeline_uuid and invalid_schedule_interval are not", async () => {
    const project = await load({
      ...files,
      "pipelines/scheduled/triggers.yaml": `
triggers:
  - name: daily
    schedule_type: time
    schedule_interval: '@daily'
    pipeline_uuid: scheduled
    repo_path: /home/src/project
    settings: {overlap: skip, invalid_schedule_interval: false, custom_key: 1, retry_on_failure: true}
  - schedule_type: api
    name: hook
    global_data_product_uuid: ''
`,
    });
    expect((project.warnings ?? []).filter((w) => w.includes("triggers.yaml"))).toEqual([
      "pipelines/scheduled/triggers.yaml: kiln does not act on triggers[0] (daily).repo_path, triggers[0] (daily).settings.custom_key, triggers[0] (daily).settings.retry_on_failure; they are ignored",
    ]);
    // the trigger itself loads as written, its unknown settings kept for whoever reads them
    expect(project.pipelines.get("scheduled")?.triggers[0]?.settings).toMatchObject({ overlap: "skip", custom_key: 1 });
  });

  test("env drops triggers limited to other environments", async () => {
    const project = await load(files, { env: "dev" });
    expect(project.pipelines.get("scheduled")?.triggers.map((t) => t.name)).toEqual(["daily", "on_upload"]);
  });

  test("ENV as Mage reads it: unset or unknown is dev, production is prod", async () => {
    const names = async (env: string | undefined) => (await load(files, { env })).pipelines.get("scheduled")?.triggers.map((t) => t.name);
    expect(await names(undefined)).toEqual(["daily", "on_upload"]);
    expect(await names("development")).toEqual(["daily", "on_upload"]);
    expect(await names("production")).toEqual(["daily", "webhook", "on_upload"]);
    expect(await names("staging")).toEqual(["daily"]);
  });

  test("known executor types pass", async () => {
    await load(files, { executorTypes: ["local", "docker"] });
  });
});

describe("kiln.yaml errors", () => {
  test("missing", async () => {
    const root = await writeProject({ "pipelines/p/metadata.yaml": "blocks: []\n" });
    const error = await loadProject(folderSource(root)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectLoadError);
    const { file, field, message } = error as ProjectLoadError;
    expect({ file, field }).toEqual({ file: "kiln.yaml", field: "" });
    expect(message).toContain(`not a kiln project: ${root} has no kiln.yaml`);
  });

  test("invalid YAML names the line", async () => {
    await expectError({ "kiln.yaml": "variables: {env: dev}\nplugins: [a\n" }, {
      file: "kiln.yaml",
      field: "",
      message: ["expected valid YAML", "line 3"],
    });
  });

  test("variables must be an object", async () => {
    await expectError({ "kiln.yaml": "variables: [1]\n" }, {
      file: "kiln.yaml",
      field: "variables",
      message: "expected an object, got [1]",
    });
  });

  test("block_run_limit must be a positive integer", async () => {
    await expectError({ "kiln.yaml": "concurrency_config: {block_run_limit: -1}\n" }, {
      file: "kiln.yaml",
      field: "concurrency_config.block_run_limit",
      message: "expected a positive integer, got -1",
    });
  });

  test("kiln.yaml is checked before any pipeline", async () => {
    await expectError({ "kiln.yaml": "plugins: 3\n", [META]: "nope\n" }, {
      file: "kiln.yaml",
      field: "plugins",
      message: "expected a list of package names, got 3",
    });
  });
});

describe("metadata.yaml errors", () => {
  test("not an object", async () => {
    await expectError(withPipeline("- a\n- b\n"), { file: META, field: "", message: 'expected an object, got ["a","b"]' });
  });

  test("blocks missing", async () => {
    await expectError(withPipeline("name: p\n"), {
      file: META,
      field: "blocks",
      message: "expected a list of blocks, got nothing",
    });
  });

  test("blocks not a list", async () => {
    await expectError(withPipeline("blocks: {a: 1}\n"), {
      file: META,
      field: "blocks",
      message: 'expected a list of blocks, got {"a":1}',
    });
  });

  test("a block without uuid", async () => {
    await expectError(withPipeline("blocks:\n  - type: data_loader\n"), {
      file: META,
      field: "blocks[0].uuid",
      message: "expected a block uuid, got nothing",
    });
  });

  test("an unknown block type lists the valid ones", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: dbt}\n"), {
      file: META,
      field: "blocks[0].type",
      message: 'expected one of data_loader, transformer, data_exporter, sensor, custom, got "dbt"',
    });
  });

  test("upstream_blocks not a list", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom}\n  - {uuid: b, type: custom, upstream_blocks: a}\n"), {
      file: META,
      field: "blocks[1].upstream_blocks",
      message: 'expected a list of block uuids, got "a"',
    });
  });

  test("upstream_blocks with a non-string", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom, upstream_blocks: [1]}\n"), {
      file: META,
      field: "blocks[0].upstream_blocks[0]",
      message: "expected a block uuid, got 1",
    });
  });

  test("downstream_blocks, if present, must list strings", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom, downstream_blocks: [{}]}\n"), {
      file: META,
      field: "blocks[0].downstream_blocks[0]",
      message: "expected a block uuid, got {}",
    });
  });

  test("negative retries", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom, retry_config: {retries: -2}}\n"), {
      file: META,
      field: "blocks[0].retry_config.retries",
      message: "expected a non-negative integer, got -2",
    });
  });

  test("timeout not a positive number", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom, timeout: 0}\n"), {
      file: META,
      field: "blocks[0].timeout",
      message: "expected a positive number, got 0",
    });
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom, timeout: soon}\n"), {
      file: META,
      field: "blocks[0].timeout",
      message: 'expected a positive number, got "soon"',
    });
  });

  test("duplicate block uuids", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom}\n  - {uuid: b, type: custom}\n  - {uuid: a, type: custom}\n"), {
      file: META,
      field: "blocks[2].uuid",
      message: 'expected unique block uuids, got "a" at both blocks[0] and blocks[2]',
    });
  });

  test("unknown upstream", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom}\n  - {uuid: b, type: custom, upstream_blocks: [nope]}\n"), {
      file: META,
      field: "blocks[1].upstream_blocks[0]",
      message: ['"nope"', 'block "b"'],
    });
  });

  test("a cycle is named in order", async () => {
    const metadata = `
blocks:
  - {uuid: a, type: custom, upstream_blocks: [c]}
  - {uuid: start, type: custom}
  - {uuid: b, type: custom, upstream_blocks: [a, start]}
  - {uuid: c, type: custom, upstream_blocks: [b]}
  - {uuid: after, type: custom, upstream_blocks: [c]}
`;
    await expectError(withPipeline(metadata), {
      file: META,
      field: "blocks[0].upstream_blocks",
      message: "a -> b -> c -> a",
    });
  });

  test("a block listing itself upstream is a cycle", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom}\n  - {uuid: b, type: custom, upstream_blocks: [b]}\n"), {
      file: META,
      field: "blocks[1].upstream_blocks",
      message: "b -> b",
    });
  });

  test("a missing block module names the paths looked at", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: load, type: data_loader}\n", { "data_loaders/other.ts": MODULE }), {
      file: META,
      field: "blocks[0]",
      message: ['block "load"', "data_loaders/load.ts, data_loaders/load.js or data_loaders/load.py"],
    });
  });

  test("uuid must match the folder", async () => {
    await expectError(withPipeline("uuid: q\nblocks: []\n"), {
      file: META,
      field: "uuid",
      message: `expected the pipeline folder's name "p", got "q"`,
    });
  });

  test("block uuids must not contain ':', nor '/' parts that leave the folder", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: 'a:1', type: custom}\n"), {
      file: META,
      field: "blocks[0].uuid",
      message: ["without ':'", '"a:1"'],
    });
    for (const uuid of ["a/../../b", "/a", "a//b", "./a"]) {
      await expectError(withPipeline(`blocks:\n  - {uuid: '${uuid}', type: custom}\n`), {
        file: META,
        field: "blocks[0].uuid",
        message: JSON.stringify(uuid),
      });
    }
  });

  test("a pipeline folder without metadata.yaml", async () => {
    await expectError({ "kiln.yaml": "", "pipelines/p/metadata.yml": "blocks: []\n" }, {
      file: META,
      field: "",
      message: "metadata.yml",
    });
  });

  test("pipelines are checked in uuid order", async () => {
    await expectError(
      { "kiln.yaml": "", "pipelines/b/metadata.yaml": "blocks: 1\n", "pipelines/a/metadata.yaml": "blocks: 2\n" },
      { file: "pipelines/a/metadata.yaml", field: "blocks", message: "got 2" },
    );
  });

  test("metadata.yaml is checked before triggers.yaml", async () => {
    await expectError(withPipeline("blocks: 1\n", { [TRIGGERS]: "triggers: 1\n" }), {
      file: META,
      field: "blocks",
      message: "got 1",
    });
  });
});

describe("triggers.yaml errors", () => {
  const valid = "blocks:\n  - {uuid: a, type: custom}\n";
  const withTriggers = (triggers: string) => withPipeline(valid, { "custom/a.ts": MODULE, [TRIGGERS]: triggers });

  test("unknown schedule_type", async () => {
    await expectError(withTriggers("triggers:\n  - {name: t, schedule_type: cron}\n"), {
      file: TRIGGERS,
      field: "triggers[0].schedule_type",
      message: 'expected one of time, event, api, got "cron"',
    });
  });

  test("bad start_time", async () => {
    await expectError(withTriggers("triggers:\n  - {name: t, schedule_type: time, start_time: 2024-02-30 00:00:00}\n"), {
      file: TRIGGERS,
      field: "triggers[0].start_time",
      message: 'got "2024-02-30 00:00:00"',
    });
    await expectError(withTriggers("triggers:\n  - {name: t, schedule_type: time, start_time: tomorrow}\n"), {
      file: TRIGGERS,
      field: "triggers[0].start_time",
      message: "expected a date-time",
    });
  });

  test("unknown timezone", async () => {
    await expectError(withTriggers("triggers:\n  - {name: t, schedule_type: time, timezone: Mars/Olympus}\n"), {
      file: TRIGGERS,
      field: "triggers[0].timezone",
      message: 'expected an IANA time zone such as UTC or Europe/Paris, got "Mars/Olympus"',
    });
  });

  test("duplicate trigger names", async () => {
    await expectError(withTriggers("triggers:\n  - {name: t, schedule_type: api}\n  - {name: t, schedule_type: time}\n"), {
      file: TRIGGERS,
      field: "triggers[1].name",
      message: 'got "t" at both triggers[0] and triggers[1]',
    });
  });

  test("timeout_status must be failed or cancelled", async () => {
    await expectError(withTriggers("triggers:\n  - {name: t, schedule_type: api, settings: {timeout_status: skipped}}\n"), {
      file: TRIGGERS,
      field: "triggers[0].settings.timeout_status",
      message: 'expected one of failed, cancelled, got "skipped"',
    });
  });
});

describe("executor types", () => {
  const known = { executorTypes: ["local", "docker"] };

  test("project level", async () => {
    await expectError({ "kiln.yaml": "executor_type: ecs\n" }, {
      file: "kiln.yaml",
      field: "executor_type",
      message: 'expected a registered executor type (one of: docker, local), got "ecs"',
    }, known);
  });

  test("pipeline level", async () => {
    await expectError(withPipeline("executor_type: k8s\nblocks: []\n"), {
      file: META,
      field: "executor_type",
      message: ["docker, local", '"k8s"'],
    }, known);
  });

  test("block level", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom}\n  - {uuid: b, type: custom, executor_type: cloud_run}\n"), {
      file: META,
      field: "blocks[1].executor_type",
      message: ["docker, local", '"cloud_run"'],
    }, known);
  });

  test("not checked without executorTypes", async () => {
    await load(withPipeline("executor_type: anything\nblocks: []\n"));
  });
});

describe("dynamic block limits", () => {
  test("at most one upstream that fans out", async () => {
    const metadata = `
blocks:
  - {uuid: d1, type: data_loader, configuration: {dynamic: true}}
  - {uuid: d2, type: data_loader, configuration: {dynamic: true}}
  - {uuid: join, type: transformer, upstream_blocks: [d1, d2]}
`;
    await expectError(withPipeline(metadata), {
      file: META,
      field: "blocks[2].upstream_blocks",
      message: ["at most one upstream block that fans out", '"d1" and "d2"'],
    });
  });

  test("a fan-out child and its dynamic parent both count", async () => {
    const metadata = `
blocks:
  - {uuid: d, type: data_loader, configuration: {dynamic: true}}
  - {uuid: child, type: transformer, upstream_blocks: [d]}
  - {uuid: both, type: transformer, upstream_blocks: [child, d]}
`;
    await expectError(withPipeline(metadata), {
      file: META,
      field: "blocks[2].upstream_blocks",
      message: '"child" and "d"',
    });
  });

  test("nested fan-out is not supported", async () => {
    const metadata = `
blocks:
  - {uuid: d, type: data_loader, configuration: {dynamic: true}}
  - {uuid: inner, type: transformer, upstream_blocks: [d], configuration: {dynamic: true}}
`;
    await expectError(withPipeline(metadata), {
      file: META,
      field: "blocks[1].configuration.dynamic",
      message: ['block "inner" fans out from "d"', "nested fan-out is not supported yet"],
    });
  });

  test("a dynamic block after a reduce is fine", async () => {
    const metadata = `
blocks:
  - {uuid: d, type: data_loader, configuration: {dynamic: true}}
  - {uuid: child, type: transformer, upstream_blocks: [d], configuration: {reduce_output: true}}
  - {uuid: again, type: transformer, upstream_blocks: [child], configuration: {dynamic: true}}
  - {uuid: last, type: transformer, upstream_blocks: [again]}
`;
    const files = withPipeline(metadata, {
      "data_loaders/d.ts": MODULE,
      "transformers/child.ts": MODULE,
      "transformers/again.ts": MODULE,
      "transformers/last.ts": MODULE,
    });
    const pipeline = (await load(files)).pipelines.get("p");
    if (!pipeline) throw new Error("p not loaded");
    expect(["d", "child", "again", "last"].map((uuid) => fanOutSourceOf(pipeline, uuid))).toEqual([null, "d", null, "again"]);
  });

  test("reduce_output only downstream of a dynamic block", async () => {
    await expectError(withPipeline("blocks:\n  - {uuid: a, type: custom, configuration: {reduce_output: true}}\n"), {
      file: META,
      field: "blocks[0].configuration.reduce_output",
      message: ["reduce_output only on a block downstream of a dynamic block", 'block "a"'],
    });
  });
});

describe("the folder source's modules", () => {
  test("a module is imported once and handed out again; one that failed to load is imported again; paths outside the project are refused", async () => {
    const root = await writeProject({ "custom/ok.js": "export default () => 1;\n", "custom/broken.js": "export default (;\n" });
    const source = folderSource(root);
    const first = await source.importModule("custom/ok.js");
    expect(await source.importModule("custom/ok.js")).toBe(first);
    expect(await source.importModule("custom/../custom/ok.js")).toBe(first);
    await expect(source.importModule("custom/broken.js")).rejects.toBeDefined();
    // fixed: the failure was not kept, the next run of the block imports the fixed file
    await writeFile(join(root, "custom/broken.js"), "export default () => 2;\n");
    expect(((await source.importModule("custom/broken.js")) as { default: () => number }).default()).toBe(2);
    expect(() => source.importModule("../elsewhere.js")).toThrow(/outside the project/);
  });
});
