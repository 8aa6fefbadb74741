/**
 * The `kiln` command, run as a real child process from the repository root: init and run,
 * usage errors (exit 2, one line, nothing written), failing runs (exit 1), variables and their
 * precedence, single-block runs, --skip-sensors, and dynamic blocks across processes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  blockRuns,
  outputFile,
  pipelineRuns,
  printedPartition,
  queryDb,
  readOutput,
  REPO_ROOT,
  runBun,
  runKiln,
  TempDirs,
  withoutUsage,
  type KilnResult,
} from "../helpers/cli.ts";

/** The runtime variables kiln adds to every block's variables, as Mage does (besides the two uuids). */
const RUNTIME_VARIABLE_KEYS = [
  "block_run_id", "ds", "env", "event", "execution_date", "execution_partition", "hr",
  "interval_end_datetime", "interval_seconds", "interval_start_datetime", "interval_start_datetime_previous",
  "pipeline_run_id", "trigger_name",
];

const temp = new TempDirs();
/** Folders the tests leave in the repository's examples (gitignored), removed at the end. */
const repoLeftovers: string[] = [];

afterAll(() => {
  temp.removeAll();
  for (const dir of repoLeftovers) rmSync(dir, { recursive: true, force: true });
});

/** A fresh database path in a fresh folder: the file does not exist yet. */
function freshDb(): string {
  return join(temp.make("kiln-db-"), "kiln.db");
}

function kiln(args: string[], db: string): Promise<KilnResult> {
  return runKiln(args, { KILN_DATABASE_URL: `file:${db}` });
}

/** The run whose partition `kiln run` printed, and its block runs. */
async function printedRun(db: string, result: KilnResult) {
  const partition = printedPartition(result.stdout);
  const run = (await pipelineRuns(db)).find((r) => r.execution_partition === partition);
  if (!run) throw new Error(`no pipeline run with partition ${partition}; stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  return { partition, run, blocks: await blockRuns(db, run.id) };
}

describe("kiln init and kiln run", () => {
  test("init makes a project whose example pipeline runs and stores the three outputs", async () => {
    const project = join(temp.make("kiln-init-"), "proj");
    const init = await runKiln(["init", project]);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain(`created a kiln project in ${project}`);

    // the default database, <project>/.kiln/kiln.db
    const result = await runKiln(["run", project, "example"], { KILN_DATABASE_URL: undefined });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const partition = printedPartition(result.stdout);
    for (const block of ["load_numbers", "square_numbers", "export_numbers"]) {
      expect(existsSync(outputFile(project, "example", partition, block))).toBe(true);
    }
    expect(readOutput(project, "example", partition, "load_numbers")).toEqual([1, 2, 3, 4]);
    expect(readOutput(project, "example", partition, "square_numbers")).toEqual([1, 4, 9, 16]);
    expect(readOutput(project, "example", partition, "export_numbers")).toEqual({ count: 4, sum: 30 });

    const db = join(project, ".kiln/kiln.db");
    expect(existsSync(db)).toBe(true);
    const { run, blocks } = await printedRun(db, result);
    expect(run.status).toBe("completed");
    expect(blocks.map((b) => [b.block_uuid, b.status])).toEqual([
      ["load_numbers", "completed"],
      ["square_numbers", "completed"],
      ["export_numbers", "completed"],
    ]);
  });

  test("init refuses a folder that is not empty", async () => {
    const project = temp.project({ "something.txt": "x" });
    const result = await runKiln(["init", project]);
    expect(result.code).toBe(2);
    expect(result.stderr).toStartWith("kiln: ");
  });

  test("`bun run kiln run examples/etl etl` completes and stores three outputs", async () => {
    const db = freshDb();
    const result = await runBun(["run", "kiln", "run", "examples/etl", "etl"], { KILN_DATABASE_URL: `file:${db}` });
    expect(result.code).toBe(0);
    const partition = printedPartition(result.stdout);
    const root = join(REPO_ROOT, "examples/etl");
    repoLeftovers.push(join(root, ".variables/pipelines/etl", partition), join(root, ".logs/pipelines/etl", partition));
    for (const block of ["load_orders", "total_by_customer", "export_report"]) {
      expect(existsSync(outputFile(root, "etl", partition, block))).toBe(true);
    }
    expect((readOutput(root, "etl", partition, "load_orders") as unknown[]).length).toBe(12);
    const report = readOutput(root, "etl", partition, "export_report") as { lines: string[] };
    expect(report.lines.length).toBeGreaterThan(0);
    for (const line of report.lines) expect(line).toMatch(/^\w+: \d+ EUR$/);
    const { run } = await printedRun(db, result);
    expect(run.status).toBe("completed");
  });
});

describe("usage errors: exit 2, one line on stderr, nothing written", () => {
  let project: string;
  let cyclic: string;

  beforeAll(() => {
    project = temp.project({
      "kiln.yaml": "executor_type: local\n",
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: a\n    type: data_loader\n  - uuid: b\n    type: transformer\n    upstream_blocks: [a]\n",
      "data_loaders/a.js": "export default function a(ctx) { return 1; }\n",
      "transformers/b.js": "export default function b(x, ctx) { return x + 1; }\n",
    });
    cyclic = temp.project({
      "kiln.yaml": "",
      "pipelines/loop/metadata.yaml":
        "blocks:\n  - uuid: a\n    type: transformer\n    upstream_blocks: [b]\n  - uuid: b\n    type: transformer\n    upstream_blocks: [a]\n",
      "transformers/a.js": "export default function a(x, ctx) { return x; }\n",
      "transformers/b.js": "export default function b(x, ctx) { return x; }\n",
    });
  });

  const cases: Array<{ name: string; args: () => string[]; message: RegExp; needsDatabase?: boolean }> = [
    { name: "bad JSON in --runtime-vars", args: () => ["run", project, "p", "--runtime-vars", "{x: 1"], message: /--runtime-vars: .*invalid JSON/ },
    { name: "--runtime-vars '[1]'", args: () => ["run", project, "p", "--runtime-vars", "[1]"], message: /--runtime-vars: expected a JSON object, got an array/ },
    { name: "an unknown project path", args: () => ["run", join(project, "no-such-project"), "p"], message: /no project at .*no-such-project/ },
    { name: "an unknown pipeline", args: () => ["run", project, "nope"], message: /no pipeline nope .*\(pipelines: p\)/ },
    { name: "an unknown --block-uuid", args: () => ["run", project, "p", "--block-uuid", "zz"], message: /--block-uuid: pipeline p has no block zz/ },
    { name: "an unknown --executor-type", args: () => ["run", project, "p", "--executor-type", "nomad"], message: /--executor-type: unknown executor nomad \(known: local, .*docker.*\)/ },
    { name: "a pipeline with a cycle", args: () => ["run", cyclic, "loop"], message: /a -> b -> a/ },
    { name: "an unknown flag", args: () => ["run", project, "p", "--frobnicate"], message: /--frobnicate/ },
    {
      name: "--block-uuid of a block whose upstream never completed",
      args: () => ["run", project, "p", "--block-uuid", "b"],
      message: /--block-uuid: upstream a has never completed/,
      // the check reads earlier runs, so the database is opened (but no run is created)
      needsDatabase: true,
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const db = freshDb();
      const result = await kiln(c.args(), db);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      // one line (a flag mistake adds the command's usage after it)
      const lines = withoutUsage(result.stderr).split("\n");
      expect(lines.at(-1)).toBe(""); // ends with a newline
      expect(lines.length).toBe(2); // exactly one line
      expect(lines[0]).toStartWith("kiln: ");
      expect(lines[0]).toMatch(c.message);
      if (c.needsDatabase) {
        if (existsSync(db)) expect(await queryDb(db, "SELECT id FROM pipeline_runs")).toEqual([]);
      } else {
        expect(existsSync(db)).toBe(false);
      }
      // the default database in the project was not created either
      expect(existsSync(join(project, ".kiln"))).toBe(false);
      expect(existsSync(join(cyclic, ".kiln"))).toBe(false);
    });
  }
});

describe("kiln run outcomes", () => {
  test("a failing pipeline exits 1 and says failed", async () => {
    const project = temp.project({
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: bad\n    type: data_loader\n  - uuid: later\n    type: transformer\n    upstream_blocks: [bad]\n",
      "data_loaders/bad.js": 'export default function bad(ctx) { throw new Error("no data today"); }\n',
      "transformers/later.js": "export default function later(x, ctx) { return x; }\n",
    });
    const db = freshDb();
    const result = await kiln(["run", project, "p"], db);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^pipeline run \d+ failed in [\d.]+ s: .*no data today/m);
    expect(result.stdout).toMatch(/bad failed: no data today/);
    const { run, blocks } = await printedRun(db, result);
    expect(run.status).toBe("failed");
    expect(Object.fromEntries(blocks.map((b) => [b.block_uuid, b.status]))).toEqual({ bad: "failed", later: "upstream_failed" });
    expect(blocks.find((b) => b.block_uuid === "bad")!.error).toBe("no data today");
  });

  test("an in_process block that never settles and has no timeout: kiln run does not exit 0", async () => {
    const project = temp.project({
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: stuck\n    type: custom\n    executor_config:\n      in_process: true\n",
      "custom/stuck.js": "export default async function stuck(ctx) { await new Promise(() => {}); }\n",
    });
    const result = await kiln(["run", project, "p"], freshDb());
    expect(result.code).not.toBe(0);
    expect(result.code).toBe(70);
    expect(result.stderr).toContain("never settled");
  });
});

describe("variables", () => {
  test("runtime vars reach ctx.variables; kiln.yaml < pipeline < runtime, in a process and in_process", async () => {
    const project = temp.project({
      "kiln.yaml": "variables:\n  a: project\n  b: project\n  c: project\n",
      "pipelines/p/metadata.yaml": `variables:
  b: pipeline
  c: pipeline
blocks:
  - uuid: vars_process
    type: custom
  - uuid: vars_inline
    type: custom
    executor_config:
      in_process: true
`,
      "custom/vars_process.js": "export default function vars(ctx) { return ctx.variables; }\n",
      "custom/vars_inline.js": "export default function vars(ctx) { return ctx.variables; }\n",
    });
    const db = freshDb();
    const result = await kiln(["run", project, "p", "--runtime-vars", '{"x": 5, "c": "runtime"}'], db);
    expect(result.code).toBe(0);
    const partition = printedPartition(result.stdout);
    const expected = { a: "project", b: "pipeline", c: "runtime", x: 5 };
    // Mage's runtime variables (issue 19) sit beside the merged ones; the merge is what this checks
    const merged = (blockUuid: string, output: unknown): Record<string, unknown> => {
      const { block_uuid, pipeline_uuid, ...rest } = output as Record<string, unknown>;
      expect(block_uuid).toBe(blockUuid);
      expect(pipeline_uuid).toBe("p");
      for (const key of RUNTIME_VARIABLE_KEYS) delete rest[key];
      return rest;
    };
    expect(merged("vars_process", readOutput(project, "p", partition, "vars_process"))).toEqual(expected);
    expect(merged("vars_inline", readOutput(project, "p", partition, "vars_inline", db))).toEqual(expected);

    const plain = await kiln(["run", project, "p"], db);
    expect(plain.code).toBe(0);
    expect(merged("vars_process", readOutput(project, "p", printedPartition(plain.stdout), "vars_process"))).toEqual({ a: "project", b: "pipeline", c: "pipeline" });
  });
});

describe("--block-uuid", () => {
  test("after a full run, runs only that block, reading its upstream's output from the earlier partition", async () => {
    const project = temp.project({
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: a\n    type: data_loader\n  - uuid: b\n    type: transformer\n    upstream_blocks: [a]\n",
      "data_loaders/a.js": "export default function a(ctx) { return ctx.variables.n; }\n",
      "transformers/b.js": "export default function b(x, ctx) { return { got: x, n: ctx.variables.n }; }\n",
    });
    const db = freshDb();
    const full = await kiln(["run", project, "p", "--runtime-vars", '{"n": 7}'], db);
    expect(full.code).toBe(0);
    const first = printedPartition(full.stdout);
    expect(readOutput(project, "p", first, "b")).toEqual({ got: 7, n: 7 });

    const single = await kiln(["run", project, "p", "--block-uuid", "b", "--runtime-vars", '{"n": 8}'], db);
    expect(single.code).toBe(0);
    const { partition, run, blocks } = await printedRun(db, single);
    expect(partition).not.toBe(first);
    expect(run.status).toBe("completed");
    expect(blocks.map((b) => [b.block_uuid, b.status])).toEqual([["b", "completed"]]);
    // a's output came from the first run; a did not run again
    expect(readOutput(project, "p", partition, "b")).toEqual({ got: 7, n: 8 });
    expect(existsSync(outputFile(project, "p", partition, "a"))).toBe(false);
    expect(await pipelineRuns(db)).toHaveLength(2);
  });
});

describe("--skip-sensors", () => {
  let project: string;

  beforeAll(() => {
    project = temp.project({
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml": `blocks:
  - uuid: never
    type: sensor
    timeout: 2
    configuration:
      poll_interval: 0.2
  - uuid: after
    type: custom
    upstream_blocks: [never]
`,
      "sensors/never.js": "export default function never(ctx) { return false; }\n",
      "custom/after.js": "export default function after(ready, ctx) { return { ready }; }\n",
    });
  });

  test("without it, the sensor holds the run until its timeout", async () => {
    const db = freshDb();
    const result = await kiln(["run", project, "p"], db);
    expect(result.code).toBe(1);
    const { blocks } = await printedRun(db, result);
    const never = blocks.find((b) => b.block_uuid === "never")!;
    expect(never.status).toBe("failed");
    expect(never.error).toContain("timed out");
  });

  test("with it, the run completes and the sensor's block run is marked skipped", async () => {
    const db = freshDb();
    const result = await kiln(["run", project, "p", "--skip-sensors"], db);
    expect(result.code).toBe(0);
    const { partition, run, blocks } = await printedRun(db, result);
    expect(run.status).toBe("completed");
    const byUuid = Object.fromEntries(blocks.map((b) => [b.block_uuid, b]));
    expect(byUuid.never!.status).toBe("completed");
    expect(JSON.parse(byUuid.never!.metrics)).toMatchObject({ skipped: true });
    expect(byUuid.after!.status).toBe("completed");
    expect(readOutput(project, "p", partition, "after")).toEqual({ ready: true });
  });
});

describe("dynamic blocks in processes", () => {
  test("a dynamic loader fans out to per-item runs whose reduced outputs reach the exporter", async () => {
    const project = temp.project({
      "kiln.yaml": "executor_type: local\nexecutor_config:\n  in_process: false\n",
      "pipelines/p/metadata.yaml": `blocks:
  - uuid: numbers
    type: data_loader
    configuration:
      dynamic: true
  - uuid: double
    type: transformer
    upstream_blocks: [numbers]
    configuration:
      reduce_output: true
  - uuid: total
    type: data_exporter
    upstream_blocks: [double]
`,
      "data_loaders/numbers.js": "export default function numbers(ctx) { return [1, 2, 3]; }\n",
      "transformers/double.js": "export default function double(n, ctx) { return { value: n * 2, pid: process.pid }; }\n",
      "data_exporters/total.js": "export default function total(items, ctx) { return items.reduce((sum, item) => sum + item.value, 0); }\n",
    });
    const db = freshDb();
    const result = await kiln(["run", project, "p"], db);
    expect(result.code).toBe(0);
    const { partition, run, blocks } = await printedRun(db, result);
    expect(run.status).toBe("completed");
    const statuses = Object.fromEntries(blocks.map((b) => [b.block_uuid, b.status]));
    expect(statuses).toEqual({
      numbers: "completed",
      double: "completed",
      "double:0": "completed",
      "double:1": "completed",
      "double:2": "completed",
      total: "completed",
    });
    expect(readOutput(project, "p", partition, "total")).toBe(12);
    const items = [0, 1, 2].map((i) => readOutput(project, "p", partition, `double:${i}`) as { value: number; pid: number });
    expect(items.map((i) => i.value)).toEqual([2, 4, 6]);
    // each item ran in a process of its own, not in the test's or kiln's
    expect(new Set(items.map((i) => i.pid)).size).toBe(3);
    expect(items.map((i) => i.pid)).not.toContain(process.pid);
  });
});
