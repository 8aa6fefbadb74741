/**
 * Small outputs of in-process block runs kept as block_outputs rows, committed with the block
 * run's completion (kiln.yaml `output_store.inline_max_bytes`), through the wiring `kiln run`
 * uses (cli/src/project.ts): a real project folder, a real libSQL file, real block processes.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RunEngine } from "@kiln/core/engine";
import { databaseOutputStore } from "@kiln/core/output-store";
import { fileOutputStore } from "@kiln/node";
import { loadUserProject, openProject, type OpenProject } from "../../cli/src/project.ts";
import { CLI_MAIN, outputFile, queryDb, REPO_ROOT, runKiln, TempDirs, waitFor } from "../helpers/cli.ts";

const temp = new TempDirs();
afterAll(() => temp.removeAll());

/** The value, which must be there (a run created for a date that has none). */
function must<T>(value: T | null): T {
  if (value === null) throw new Error("expected a value");
  return value;
}

const IN_PROCESS = "executor_config:\n  in_process: true\n";

interface Opened extends OpenProject {
  root: string;
  engine: RunEngine;
  /** Runs the pipeline once (a run created now) and returns its partition. */
  run(pipelineUuid: string, executionDate?: number): Promise<{ partition: string; status: string }>;
  /** The block's row in block_outputs, parsed, or undefined. */
  row(pipelineUuid: string, partition: string, blockUuid: string): Promise<unknown>;
}

async function open(files: Record<string, string>): Promise<Opened> {
  const root = temp.project(files);
  const project = await loadUserProject(root);
  const opened = await openProject(project);
  const engine = new RunEngine({ store: opened.store, project, executors: opened.executors, outputs: opened.runtime.outputs, addons: opened.addons, pollIntervalMs: 50 });
  return {
    ...opened,
    root,
    engine,
    async run(pipelineUuid, executionDate = Date.now()) {
      const created = must(await opened.store.createPipelineRun({ pipelineUuid, executionDate }));
      const final = await engine.execute(created.id);
      return { partition: final.executionPartition, status: final.status };
    },
    async row(pipelineUuid, partition, blockUuid) {
      const rs = await opened.store.client.execute({
        sql: "SELECT value FROM block_outputs WHERE pipeline_uuid = ? AND execution_partition = ? AND block_uuid = ?",
        args: [pipelineUuid, partition, blockUuid],
      });
      const value = rs.rows[0]?.value;
      return value === undefined ? undefined : JSON.parse(String(value));
    },
  };
}

const CHAIN = "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: add\n    type: transformer\n    upstream_blocks: [load]\n";

describe("in-process outputs as rows", () => {
  test("a small output is a row, no file; the downstream block reads it; the output store reads it back", async () => {
    const p = await open({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": CHAIN,
      "data_loaders/load.js": "export default () => ({ n: 41, word: 'héllo' });\n",
      "transformers/add.js": "export default (input) => ({ n: input.n + 1, word: input.word });\n",
    });
    try {
      const { partition, status } = await p.run("p");
      expect(status).toBe("completed");
      expect(await p.row("p", partition, "load")).toEqual({ n: 41, word: "héllo" });
      expect(await p.row("p", partition, "add")).toEqual({ n: 42, word: "héllo" });
      expect(existsSync(outputFile(p.root, "p", partition, "load"))).toBe(false);
      expect(existsSync(outputFile(p.root, "p", partition, "add"))).toBe(false);
      expect(await p.runtime.outputs.read("p", partition, "add")).toEqual({ n: 42, word: "héllo" });
      // its size is the UTF-8 JSON's (é is two bytes)
      const size = await p.store.client.execute({ sql: "SELECT size_bytes FROM block_outputs WHERE block_uuid = 'load'", args: [] });
      expect(Number(size.rows[0]?.size_bytes)).toBe(new TextEncoder().encode(JSON.stringify({ n: 41, word: "héllo" })).byteLength);
    } finally {
      p.close();
    }
  });

  test("downstream in-process jobs carry the rows their run's engine just committed: no read back, and each block gets its own copy", async () => {
    const p = await open({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml":
        "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: left\n    type: transformer\n    upstream_blocks: [load]\n  - uuid: right\n    type: transformer\n    upstream_blocks: [load]\n  - uuid: both\n    type: transformer\n    upstream_blocks: [left, right]\n",
      "data_loaders/load.js": "export default () => ({ items: [1, 2] });\n",
      // each side changes what it was given: the other side must not see it
      "transformers/left.js": "export default (input) => { input.items.push('left'); return input.items; };\n",
      "transformers/right.js": "export default (input) => { input.items.push('right'); return input.items; };\n",
      "transformers/both.js": "export default (left, right) => ({ left, right });\n",
    });
    try {
      const client = p.store.client;
      const execute = client.execute.bind(client);
      let outputReads = 0;
      client.execute = ((stmt: string | { sql: string }) => {
        if (/FROM block_outputs/.test(typeof stmt === "string" ? stmt : stmt.sql)) outputReads++;
        return execute(stmt as Parameters<typeof execute>[0]);
      }) as typeof client.execute;
      const { partition, status } = await p.run("p");
      client.execute = execute;
      expect(status).toBe("completed");
      expect(outputReads).toBe(0);
      expect(await p.row("p", partition, "both")).toEqual({ left: [1, 2, "left"], right: [1, 2, "right"] });
      expect(await p.row("p", partition, "load")).toEqual({ items: [1, 2] });
    } finally {
      p.close();
    }
  });

  test("an output over inline_max_bytes is a file (no row), and downstream reads it", async () => {
    const p = await open({
      "kiln.yaml": `${IN_PROCESS}output_store:\n  type: local\n  inline_max_bytes: 64\n`,
      "pipelines/p/metadata.yaml": CHAIN,
      "data_loaders/load.js": "export default () => ({ n: 1, pad: 'x'.repeat(100) });\n",
      "transformers/add.js": "export default (input) => ({ n: input.n + 1 });\n",
    });
    try {
      const { partition, status } = await p.run("p");
      expect(status).toBe("completed");
      expect(await p.row("p", partition, "load")).toBeUndefined();
      expect(existsSync(outputFile(p.root, "p", partition, "load"))).toBe(true);
      // the downstream's output is small: a row
      expect(await p.row("p", partition, "add")).toEqual({ n: 2 });
      expect(existsSync(outputFile(p.root, "p", partition, "add"))).toBe(false);
    } finally {
      p.close();
    }
  });

  test("inline_max_bytes: 0 keeps every output in files", async () => {
    const p = await open({
      "kiln.yaml": `${IN_PROCESS}output_store:\n  type: local\n  inline_max_bytes: 0\n`,
      "pipelines/p/metadata.yaml": CHAIN,
      "data_loaders/load.js": "export default () => 1;\n",
      "transformers/add.js": "export default (n) => n + 1;\n",
    });
    try {
      const { partition, status } = await p.run("p");
      expect(status).toBe("completed");
      expect((await p.store.client.execute("SELECT count(*) AS n FROM block_outputs")).rows[0]?.n).toBe(0);
      expect(await fileOutputStore(p.root).read("p", partition, "add")).toBe(2);
    } finally {
      p.close();
    }
  });

  test("an in-process upstream's row feeds a block in a child process (TypeScript and Python), whose output stays a file", async () => {
    const p = await open({
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml":
        "blocks:\n  - uuid: load\n    type: data_loader\n    executor_config:\n      in_process: true\n" +
        "  - uuid: add\n    type: transformer\n    upstream_blocks: [load]\n" +
        "  - uuid: add_warm\n    type: transformer\n    upstream_blocks: [load]\n    executor_config:\n      warm: false\n",
      "data_loaders/load.js": "export default () => ({ n: 41 });\n",
      "transformers/add.js": "export default (input) => ({ n: input.n + 1 });\n",
      "transformers/add_warm.js": "export default (input) => ({ n: input.n + 2 });\n",
    });
    try {
      const { partition, status } = await p.run("p");
      expect(status).toBe("completed");
      expect(await p.row("p", partition, "load")).toEqual({ n: 41 });
      expect(existsSync(outputFile(p.root, "p", partition, "load"))).toBe(false);
      // the process blocks' outputs are files, where the README's `cat` finds them
      for (const [block, n] of [["add", 42], ["add_warm", 43]] as const) {
        expect(await p.row("p", partition, block)).toBeUndefined();
        expect(await fileOutputStore(p.root).read("p", partition, block)).toEqual({ n });
      }
    } finally {
      p.close();
    }
  }, 60_000);

  test("Python blocks read an in-process upstream's row: as input and through get_variable, in kiln's process and in their own", async () => {
    const peek = (name: string) =>
      "from mage_ai.data_preparation.decorators import custom\n" +
      "from mage_ai.data_preparation.variable_manager import get_variable\n\n" +
      `@custom\ndef ${name}(seed, *args, **kwargs):\n    return {'seed': seed, 'again': get_variable(kwargs['pipeline_uuid'], 'seed', 'output_0')}\n`;
    const p = await open({
      "kiln.yaml": "",
      "pipelines/p/metadata.yaml":
        "blocks:\n  - uuid: seed\n    type: data_loader\n    executor_config:\n      in_process: true\n" +
        "  - uuid: peek_here\n    type: custom\n    upstream_blocks: [seed]\n    executor_config:\n      in_process: true\n" +
        "  - uuid: peek_apart\n    type: custom\n    upstream_blocks: [seed]\n",
      "data_loaders/seed.ts": "export default () => ({ answer: 42 });\n",
      "custom/peek_here.py": peek("peek_here"),
      "custom/peek_apart.py": peek("peek_apart"),
    });
    try {
      const { partition, status } = await p.run("p");
      expect(status).toBe("completed");
      expect(await p.row("p", partition, "seed")).toEqual({ answer: 42 });
      expect(await p.row("p", partition, "peek_here")).toEqual({ seed: { answer: 42 }, again: { answer: 42 } });
      expect(await fileOutputStore(p.root).read("p", partition, "peek_apart")).toEqual({ seed: { answer: 42 }, again: { answer: 42 } });
    } finally {
      p.close();
    }
  }, 60_000);

  test("a callback gets its in-process parent's output, read from the row committed before it runs", async () => {
    const p = await open({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\ncallbacks:\n  - uuid: record\n    type: callback\n    upstream_blocks: [load]\n",
      "data_loaders/load.js": "export default () => ({ rows: 3 });\n",
      "callbacks/record.js":
        'import { writeFileSync } from "node:fs";\nimport { join } from "node:path";\n' +
        'export function onSuccess(output) { writeFileSync(join(import.meta.dirname, "..", "recorded.json"), JSON.stringify(output)); }\n',
    });
    try {
      const { partition, status } = await p.run("p");
      expect(status).toBe("completed");
      expect(await p.row("p", partition, "load")).toEqual({ rows: 3 });
      expect(JSON.parse(await Bun.file(join(p.root, "recorded.json")).text())).toEqual({ rows: 3 });
    } finally {
      p.close();
    }
  });

  test("a dynamic block's list, its items' outputs and the reduced list are rows, read by the engine and downstream blocks", async () => {
    const p = await open({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml":
        "blocks:\n  - uuid: ids\n    type: data_loader\n    configuration:\n      dynamic: true\n" +
        "  - uuid: square\n    type: transformer\n    upstream_blocks: [ids]\n    configuration:\n      reduce_output: true\n" +
        "  - uuid: total\n    type: data_exporter\n    upstream_blocks: [square]\n",
      "data_loaders/ids.js": "export default () => [1, 2, 3];\n",
      "transformers/square.js": "export default (x) => x * x;\n",
      "data_exporters/total.js": "export default (values) => values.reduce((a, b) => a + b, 0);\n",
    });
    try {
      const { partition, status } = await p.run("p");
      expect(status).toBe("completed");
      expect(await p.row("p", partition, "ids")).toEqual([1, 2, 3]);
      expect(await p.row("p", partition, "square:1")).toBe(4);
      expect(await p.row("p", partition, "square")).toEqual([1, 4, 9]);
      expect(await p.row("p", partition, "total")).toBe(14);
      expect(existsSync(join(p.root, ".variables"))).toBe(false);
    } finally {
      p.close();
    }
  });

  test("a retried in-process block run's row is its last attempt's output", async () => {
    const p = await open({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": "blocks:\n  - uuid: flaky\n    type: custom\n    retry_config:\n      retries: 2\n      delay: 0\n",
      // the first attempt leaves a mark and fails; the second returns
      "custom/flaky.js":
        "import { existsSync, writeFileSync } from 'node:fs';\n" +
        "export default (ctx) => { const mark = ctx.variables.mark; if (!existsSync(mark)) { writeFileSync(mark, ''); throw new Error('first attempt'); } return 'second'; };\n",
    });
    try {
      const mark = join(p.root, "mark");
      const created = must(await p.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now(), variables: { mark } }));
      const final = await p.engine.execute(created.id);
      expect(final.status).toBe("completed");
      const [blockRun] = await p.store.getBlockRuns(created.id);
      expect(blockRun?.attempt).toBe(2);
      expect(await p.row("p", final.executionPartition, "flaky")).toBe("second");
    } finally {
      p.close();
    }
  });
});

describe("re-runs: neither a stale file nor a stale row shadows the newer output", () => {
  const FILES = {
    "pipelines/p/metadata.yaml": CHAIN,
    "data_loaders/load.js": "export default (ctx) => ctx.variables.value;\n",
    "transformers/add.js": "export default (v) => v;\n",
  };

  test("an in-process run over an older file: the new row is read, not the file", async () => {
    const p = await open({ ...FILES, "kiln.yaml": IN_PROCESS });
    try {
      const first = await p.run("p");
      const partition = first.partition;
      // what a block process (or kiln before rows) left for this block in this partition
      await fileOutputStore(p.root).write("p", partition, "load", "stale file");
      const created = must(await p.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now(), variables: { value: "new row" } }));
      // the same partition: block outputs are keyed by it
      await p.store.client.execute({ sql: "UPDATE pipeline_runs SET execution_partition = ? WHERE id = ?", args: [partition, created.id] });
      expect((await p.engine.execute(created.id)).status).toBe("completed");
      expect(await p.runtime.outputs.read("p", partition, "load")).toBe("new row");
      expect(await p.runtime.outputs.read("p", partition, "add")).toBe("new row");
    } finally {
      p.close();
    }
  });

  test("a block-process run over an older row: the completion deletes the row, and the new file is read", async () => {
    const p = await open({ ...FILES, "kiln.yaml": "" });
    try {
      const created = must(await p.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now(), variables: { value: "new file" } }));
      const partition = created.executionPartition;
      // an older in-process run's rows for both blocks
      const rows = databaseOutputStore(p.store.client, { maxBytes: 1024 });
      for (const block of ["load", "add"]) await rows.write("p", partition, block, "stale row");
      expect((await p.engine.execute(created.id)).status).toBe("completed");
      expect(await p.row("p", partition, "load")).toBeUndefined();
      expect(await p.row("p", partition, "add")).toBeUndefined();
      expect(await p.runtime.outputs.read("p", partition, "add")).toBe("new file");
    } finally {
      p.close();
    }
  }, 60_000);

  test("an in-process output over the limit, over an older row: the row goes with the completion", async () => {
    const p = await open({ ...FILES, "kiln.yaml": `${IN_PROCESS}output_store:\n  type: local\n  inline_max_bytes: 8\n` });
    try {
      const created = must(await p.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.now(), variables: { value: "a long new file" } }));
      const partition = created.executionPartition;
      await databaseOutputStore(p.store.client, { maxBytes: 1024 }).write("p", partition, "load", "old");
      expect((await p.engine.execute(created.id)).status).toBe("completed");
      expect(await p.row("p", partition, "load")).toBeUndefined();
      expect(await p.runtime.outputs.read("p", partition, "load")).toBe("a long new file");
    } finally {
      p.close();
    }
  });
});

describe("kiln.yaml output_store.inline_max_bytes", () => {
  const cases: Array<[string, string]> = [
    ["output_store:\n  type: local\n  inline_max_bytes: -1\n", "a whole number of bytes from 0 (off) to 1048576"],
    ["output_store:\n  type: local\n  inline_max_bytes: lots\n", "a whole number of bytes from 0 (off) to 1048576"],
    ["output_store:\n  type: local\n  inline_max_bytes: 2.5\n", "a whole number of bytes from 0 (off) to 1048576"],
    ["output_store:\n  type: local\n  inline_max_bytes: 2000000\n", "a whole number of bytes from 0 (off) to 1048576"],
    ["output_store:\n  type: database\n  inline_max_bytes: 100\n", 'inline_max_bytes is for output_store type "local"'],
  ];
  for (const [yaml, expected] of cases) {
    test(`${JSON.stringify(yaml)}: exit 2, naming kiln.yaml and the field`, async () => {
      const root = temp.project({ "kiln.yaml": yaml, "pipelines/p/metadata.yaml": CHAIN, "data_loaders/load.js": "export default () => 1;\n", "transformers/add.js": "export default (n) => n;\n" });
      const result = await runKiln(["run", root, "p"]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("kiln.yaml");
      expect(result.stderr).toContain("output_store.inline_max_bytes");
      expect(result.stderr).toContain(expected);
      expect(existsSync(join(root, ".kiln/kiln.db"))).toBe(false);
    });
  }

  test("a valid value is read as a number (a quoted one too, as Mage writes numbers)", async () => {
    const root = temp.project({ "kiln.yaml": 'output_store:\n  type: local\n  inline_max_bytes: "128"\n', "pipelines/p/metadata.yaml": CHAIN, "data_loaders/load.js": "export default () => 1;\n", "transformers/add.js": "export default (n) => n;\n" });
    const project = await loadUserProject(root);
    expect(project.settings.outputStore).toEqual({ type: "local", inlineMaxBytes: 128 });
  });
});

describe("kill -9", () => {
  test("a row commits with its block run's completion or not at all: killed mid-chain, rows are exactly the completed block runs", async () => {
    const blocks = 400;
    const lines = ["blocks:"];
    for (let i = 0; i < blocks; i++) {
      lines.push(`  - uuid: b${i}`, "    type: custom");
      if (i > 0) lines.push(`    upstream_blocks: [b${i - 1}]`);
    }
    const files: Record<string, string> = { "kiln.yaml": IN_PROCESS, "pipelines/chain/metadata.yaml": `${lines.join("\n")}\n` };
    for (let i = 0; i < blocks; i++) files[`custom/b${i}.js`] = `export default (...args) => ({ block: ${i}, padding: "${"x".repeat(200)}" });\n`;
    const root = temp.project(files);
    const dbPath = join(root, ".kiln/kiln.db");
    const kiln = spawn(process.execPath, [CLI_MAIN, "run", root, "chain"], { cwd: REPO_ROOT, stdio: "ignore" });
    try {
      await waitFor(async () => existsSync(dbPath) && Number((await queryDb(dbPath, "SELECT count(*) AS n FROM block_runs WHERE status = 'completed'").catch(() => [{ n: 0 }]))[0]?.n) >= 30, "30 completed block runs", 60_000, 5);
    } finally {
      kiln.kill("SIGKILL");
    }
    await new Promise((resolve) => kiln.once("exit", resolve));
    const completed = (await queryDb(dbPath, "SELECT block_uuid FROM block_runs WHERE status = 'completed' ORDER BY block_uuid")).map((r) => String(r.block_uuid));
    const rows = (await queryDb(dbPath, "SELECT block_uuid, value FROM block_outputs ORDER BY block_uuid")).map((r) => [String(r.block_uuid), JSON.parse(String(r.value)).block]);
    // killed before the chain's end, after 30 completions
    expect(completed.length).toBeGreaterThanOrEqual(30);
    expect(completed.length).toBeLessThan(blocks);
    expect(rows.map(([uuid]) => uuid)).toEqual(completed);
    for (const [uuid, block] of rows) expect(`b${block}`).toBe(String(uuid));
    // and no block left a file: every output was small
    expect(existsSync(join(root, ".variables"))).toBe(false);
  }, 90_000);
});
