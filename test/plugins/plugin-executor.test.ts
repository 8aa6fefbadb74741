/**
 * The third-party contract, from a plugin's side: examples/plugin-executor (kiln-executor-nice)
 * passes core's executor conformance suite, and a project that lists it under `plugins` runs
 * its blocks on it through the real `kiln run`. A plugin that cannot be found or exports no
 * factory is a usage error naming kiln.yaml's plugins.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { type ExecutorContext } from "@kiln/core";
import { runExecutorConformance } from "@kiln/core/conformance";
import { fileLogSink } from "@kiln/node";
import niceExecutor from "../../examples/plugin-executor/src/index.ts";
import { blockRuns, pipelineRuns, readOutput, runKiln, TempDirs } from "../helpers/cli.ts";
import { conformanceProject } from "../helpers/conformance.ts";
import { CLI_MAIN, REPO_ROOT } from "../helpers/fixtures.ts";

const temp = new TempDirs();
const KILN = [process.execPath, CLI_MAIN];
const fixture = await conformanceProject({ executorType: "nice", executorConfig: { command: KILN, niceness: 5 }, settings: { plugins: ["kiln-executor-nice"] } });
// `kiln run-block` loads the project, plugins and all, as the scheduler does
mkdirSync(join(fixture.root, "node_modules"), { recursive: true });
symlinkSync(join(REPO_ROOT, "examples/plugin-executor"), join(fixture.root, "node_modules/kiln-executor-nice"));
afterAll(() => {
  fixture.close();
  temp.removeAll();
});

function context(): ExecutorContext {
  return { projectRoot: fixture.root, blockEnv: { KILN_DATABASE_URL: fixture.databaseUrl }, env: { PATH: process.env.PATH }, logs: fileLogSink(fixture.root) };
}

describe("kiln-executor-nice passes the conformance suite", () => {
  runExecutorConformance(() => niceExecutor(context()), { ...fixture.harness, invalidConfig: { config: { niceness: 40 }, field: "niceness" }, settleMs: 30_000 }, test);
});

/** A project whose node_modules holds the example plugin, as `npm install kiln-executor-nice` would. */
function projectWithPlugin(kilnYaml: string): string {
  const root = temp.project({
    "kiln.yaml": kilnYaml,
    "pipelines/p/metadata.yaml": "blocks:\n  - uuid: load\n    type: data_loader\n  - uuid: double\n    type: transformer\n    upstream_blocks: [load]\n",
    "data_loaders/load.js": "export default function load(ctx) { return [1, 2, 3]; }\n",
    "transformers/double.js": "export default function double(rows, ctx) { ctx.logger.info('doubling'); return rows.map((n) => n * 2); }\n",
  });
  mkdirSync(join(root, "node_modules"), { recursive: true });
  symlinkSync(join(REPO_ROOT, "examples/plugin-executor"), join(root, "node_modules/kiln-executor-nice"));
  return root;
}

describe("a project using the plugin", () => {
  test("kiln run executes every block on the plugin's executor, and the output passes between them", async () => {
    const root = projectWithPlugin(`plugins: [kiln-executor-nice]\nexecutor_type: nice\nexecutors:\n  nice:\n    command: ${JSON.stringify(KILN)}\n`);
    const db = join(root, "kiln.db");
    const result = await runKiln(["run", root, "p"], { KILN_DATABASE_URL: `file:${db}` });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const [run] = await pipelineRuns(db);
    expect(run?.status).toBe("completed");
    const rows = await blockRuns(db, run!.id);
    expect(rows.map((r) => [r.block_uuid, r.status, r.executor_type])).toEqual([
      ["load", "completed", "nice"],
      ["double", "completed", "nice"],
    ]);
    expect(readOutput(root, "p", run!.execution_partition, "double")).toEqual([2, 4, 6]);
    // the block ran in the plugin's background process: its files are there
    expect(existsSync(join(root, ".kiln/nice"))).toBe(true);
  });

  test("a bad executor_config for the plugin is refused when the project loads, naming the block and field", async () => {
    const root = projectWithPlugin("plugins: [kiln-executor-nice]\nexecutor_type: nice\nexecutors:\n  nice:\n    niceness: 99\n");
    const result = await runKiln(["run", root, "p"], { KILN_DATABASE_URL: `file:${join(root, "kiln.db")}` });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/pipelines\/p\/metadata\.yaml: .*block "load".*executor_config\.niceness/);
    expect(existsSync(join(root, "kiln.db"))).toBe(false);
  });

  test("a plugin that is not installed, or exports no factory, is exit 2 naming kiln.yaml's plugins", async () => {
    const missing = projectWithPlugin("plugins: [kiln-executor-absent]\n");
    const absent = await runKiln(["run", missing, "p"], { KILN_DATABASE_URL: `file:${join(missing, "kiln.db")}` });
    expect(absent.code).toBe(2);
    expect(absent.stderr).toMatch(/kiln\.yaml: plugins: cannot find the package "kiln-executor-absent"/);

    const notFactory = projectWithPlugin("plugins: [not-a-factory]\n");
    mkdirSync(join(notFactory, "node_modules/not-a-factory"), { recursive: true });
    await Bun.write(join(notFactory, "node_modules/not-a-factory/package.json"), JSON.stringify({ name: "not-a-factory", type: "module", main: "index.js" }));
    await Bun.write(join(notFactory, "node_modules/not-a-factory/index.js"), "export default 42;\n");
    const bad = await runKiln(["run", notFactory, "p"], { KILN_DATABASE_URL: `file:${join(notFactory, "kiln.db")}` });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"not-a-factory" does not default-export an executor factory/);
  });
});
