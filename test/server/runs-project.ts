/** The project the run and backfill route tests share. */
import { metadata } from "../helpers/fixtures.ts";
import { SERVER_PROJECT } from "../helpers/server.ts";

/**
 * etl (load -> shape); flaky (a -> b -> c, b fails unless `<dir>/ok` exists; each block counts
 * its executions per run in `<dir>/<run>-<block>.count`); slow (wait: runs until `<dir>/release`
 * exists or it is cancelled, and records the cancel in `<dir>/<run>-aborted`).
 */
const COUNT = (block: string) =>
  `import { appendFileSync } from "node:fs";\nexport const count = (ctx) => appendFileSync(ctx.variables.dir + "/" + ctx.pipelineRunId + "-${block}.count", "x");\n`;
export const RUNS_PROJECT: Record<string, string> = {
  ...SERVER_PROJECT,
  "pipelines/flaky/metadata.yaml": metadata([
    { uuid: "a", type: "data_loader" },
    { uuid: "b", type: "transformer", upstream_blocks: ["a"] },
    { uuid: "c", type: "data_exporter", upstream_blocks: ["b"] },
  ]),
  "data_loaders/count_a.js": COUNT("a"),
  "transformers/count_b.js": COUNT("b"),
  "data_exporters/count_c.js": COUNT("c"),
  "data_loaders/a.js": 'import { count } from "./count_a.js";\nexport default function a(ctx) { count(ctx); return 1; }\n',
  "transformers/b.js":
    'import { existsSync } from "node:fs";\nimport { count } from "./count_b.js";\n' +
    'export default function b(x, ctx) { count(ctx); if (!existsSync(ctx.variables.dir + "/ok")) throw new Error("no ok file"); return x + 1; }\n',
  "data_exporters/c.js": 'import { count } from "./count_c.js";\nexport default function c(x, ctx) { count(ctx); return x; }\n',
  "pipelines/slow/metadata.yaml": metadata([{ uuid: "wait", type: "data_loader" }]),
  "data_loaders/wait.js":
    'import { existsSync, writeFileSync } from "node:fs";\n' +
    "export default async function wait(ctx) {\n" +
    '  while (!existsSync(ctx.variables.dir + "/release")) {\n' +
    '    if (ctx.signal.aborted) { writeFileSync(ctx.variables.dir + "/" + ctx.pipelineRunId + "-aborted", "1"); throw new Error("aborted"); }\n' +
    "    await new Promise((r) => setTimeout(r, 10));\n" +
    "  }\n" +
    "  return 1;\n" +
    "}\n",
};

