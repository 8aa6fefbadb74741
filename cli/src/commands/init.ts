/** `kiln init <path>`: creates a working project with one three-block pipeline. */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE } from "../usage.ts";

export const usage = COMMAND_USAGE["init"]!;

// The blocks use @kiln/core's typed helpers: kiln resolves that import to itself wherever the
// project is (kiln-resolution.ts), and tsconfig.json points an editor at the same kiln's types.
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
  "data_loaders/load_numbers.ts": `import { dataLoader } from "@kiln/core";

/** Loads the numbers to work on. */
export default dataLoader((ctx): number[] => {
  ctx.logger.info("loading numbers", { env: ctx.variables.env });
  return [1, 2, 3, 4];
});
`,
  "transformers/square_numbers.ts": `import { transformer, type BlockContext } from "@kiln/core";

/** Squares each number. */
export default transformer((numbers: number[], _ctx: BlockContext): number[] => numbers.map((n) => n * n));
`,
  "data_exporters/export_numbers.ts": `import { dataExporter, type BlockContext } from "@kiln/core";

/** Reports the result (a real exporter would write it somewhere). */
export default dataExporter((squares: number[], ctx: BlockContext) => {
  ctx.logger.info("exported", { count: squares.length });
  return { count: squares.length, sum: squares.reduce((a, b) => a + b, 0) };
});
`,
  ".gitignore": ".kiln/\n.variables/\n.logs/\n",
};

/**
 * The project's tsconfig.json: "@kiln/core" is the kiln that wrote it (its source, so an editor
 * shows the helpers' and the context's types), with the options kiln's own sources compile under.
 */
function tsconfig(): string {
  const core = fileURLToPath(import.meta.resolve("@kiln/core"));
  const config = {
    compilerOptions: {
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "bundler",
      lib: ["ES2023", "DOM", "DOM.Iterable"],
      types: [],
      strict: true,
      noUncheckedIndexedAccess: true,
      verbatimModuleSyntax: true,
      allowImportingTsExtensions: true,
      noEmit: true,
      skipLibCheck: true,
      paths: { "@kiln/core": [core] },
    },
    include: ["data_loaders", "transformers", "data_exporters", "sensors", "custom"],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export async function init(args: string[]): Promise<number> {
  const { positionals } = parseCommand("init", args, {});
  const [path, ...extra] = positionals;
  if (!path || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  const root = resolve(path);
  if (existsSync(root) && readdirSync(root).length > 0) throw new UsageError(`kiln init: ${path} exists and is not empty`);
  for (const [file, text] of Object.entries({ ...FILES, "tsconfig.json": tsconfig() })) {
    const target = join(root, file);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  process.stdout.write(`created a kiln project in ${root}\nrun it: kiln run ${path} example\n`);
  return 0;
}
