/**
 * The entry of the thin warm block process as kiln bundles it for Bun (see thin-bundle.ts):
 * `bun <bundle>/thin-entry.js run-block --warm --thin <project> --core <bundled @kiln/core>`. It
 * does what main.ts does for `kiln run-block --warm --thin <project>`, without main.ts's command
 * table, so the process loads one file (and its bytecode); the blocks' @kiln/core is the
 * bundled one the arguments name, loaded by the first block that imports it.
 */
import { installBunResolution, type BunForResolution } from "./bun-resolution.ts";
import { blockProcess } from "./commands/block-process.ts";
import { exitWhenDone, UsageError } from "./errors.ts";
import { takeKilnSecrets } from "./kiln-env.ts";
import { absolutePath } from "./posix-paths.ts";

/** Runs the block process the arguments name. */
async function thinEntry(args: string[]): Promise<number> {
  takeKilnSecrets();
  const [projectPath, corePath] = [args[3], args[5]];
  if (args.length !== 6 || args.slice(0, 3).join(" ") !== "run-block --warm --thin" || args[4] !== "--core" || !projectPath || !corePath) {
    throw new UsageError("thin-entry expects run-block --warm --thin <project> --core <@kiln/core bundle> (the local executor starts it, not a user)");
  }
  const { Bun } = globalThis as unknown as { Bun: BunForResolution };
  const core = absolutePath(process.cwd(), corePath);
  return blockProcess(projectPath, (root) => installBunResolution(Bun, root, core));
}

exitWhenDone(thinEntry(process.argv.slice(2)));
