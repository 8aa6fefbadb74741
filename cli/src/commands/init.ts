/** `kiln init <path>`: creates a working project with one three-block pipeline. */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseCommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE } from "../usage.ts";

export const usage = COMMAND_USAGE["init"]!;

// Blocks are plain functions so a new project runs without installing anything; wrapping them
// in dataLoader()/transformer()/dataExporter() from @kiln/core adds types and is equivalent.
const FILES: Record<string, string> = {
  "kiln.yaml": `# kiln project settings
# database_url: file:.kiln/kiln.db   # KILN_DATABASE_URL wins over this
executor_type: local
variables:
  env: dev
`,
  "pipelines/example/metadata.yaml": `name: Example
blocks:
  - uuid: load_numbers
    type: data_loader
  - uuid: square_numbers
    type: transformer
    upstream_blocks: [load_numbers]
  - uuid: export_numbers
    type: data_exporter
    upstream_blocks: [square_numbers]
`,
  "pipelines/example/triggers.yaml": `triggers:
  - name: daily
    schedule_type: time
    schedule_interval: '@daily'
    status: inactive
`,
  "data_loaders/load_numbers.js": `/** Loads the numbers to work on. */
export default function loadNumbers(ctx) {
  ctx.logger.info("loading numbers", { env: ctx.variables.env });
  return [1, 2, 3, 4];
}
`,
  "transformers/square_numbers.js": `/** Squares each number. */
export default function squareNumbers(numbers, ctx) {
  return numbers.map((n) => n * n);
}
`,
  "data_exporters/export_numbers.js": `/** Reports the result (a real exporter would write it somewhere). */
export default function exportNumbers(squares, ctx) {
  ctx.logger.info("exported", { count: squares.length });
  return { count: squares.length, sum: squares.reduce((a, b) => a + b, 0) };
}
`,
  ".gitignore": ".kiln/\n.variables/\n.logs/\n",
};

export async function init(args: string[]): Promise<number> {
  const { positionals } = parseCommand("init", args, {});
  const [path, ...extra] = positionals;
  if (!path || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  const root = resolve(path);
  if (existsSync(root) && readdirSync(root).length > 0) throw new UsageError(`kiln init: ${path} exists and is not empty`);
  for (const [file, text] of Object.entries(FILES)) {
    const target = join(root, file);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  process.stdout.write(`created a kiln project in ${root}\nrun it: kiln run ${path} example\n`);
  return 0;
}
