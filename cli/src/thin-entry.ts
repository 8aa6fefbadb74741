/**
 * The entry of the thin warm block process as kiln bundles it (see thin-bundle.ts):
 * `bun <bundle>/thin-entry.js run-block --warm --thin <project> --core <bundled @kiln/core>`. It
 * does what main.ts does for `kiln run-block --warm --thin <project>`, without main.ts's command
 * table, so the process parses one file and the chunks it shares with the bundled @kiln/core.
 */
import { blockProcess } from "./commands/block-process.ts";
import { exitWhenDone, UsageError } from "./errors.ts";
import { takeKilnSecrets } from "./kiln-env.ts";

/** Runs the block process the arguments name. */
async function thinEntry(args: string[]): Promise<number> {
  takeKilnSecrets();
  const [projectPath, corePath] = [args[3], args[5]];
  if (args.length !== 6 || args.slice(0, 3).join(" ") !== "run-block --warm --thin" || args[4] !== "--core" || !projectPath || !corePath) {
    throw new UsageError("thin-entry expects run-block --warm --thin <project> --core <@kiln/core bundle> (the local executor starts it, not a user)");
  }
  return blockProcess(projectPath, corePath);
}

exitWhenDone(thinEntry(process.argv.slice(2)));
