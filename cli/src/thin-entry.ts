/**
 * The entry of the thin warm block process as kiln bundles it (see thin-bundle.ts):
 * `bun <bundle>/thin-entry.js run-block --warm --thin <project> --core <bundled @kiln/core>`. It does what main.ts does for
 * `kiln run-block --warm --thin <project>`, without main.ts's command table, so the process
 * parses one file and the chunks it shares with the bundled @kiln/core.
 */
import { blockProcess } from "./commands/block-process.ts";
import { takeKilnSecrets } from "./kiln-env.ts";

takeKilnSecrets();
// as main.ts: an event loop that empties while a promise can no longer settle is not success
process.once("beforeExit", () => {
  process.stderr.write("kiln: the command stopped before finishing: it was waiting on a promise that never settled\n");
  process.exit(70);
});
const args = process.argv.slice(2);
const [projectPath, corePath] = [args[3], args[5]];
if (args.length !== 6 || args.slice(0, 3).join(" ") !== "run-block --warm --thin" || args[4] !== "--core" || !projectPath || !corePath) {
  process.stderr.write("kiln: thin-entry expects run-block --warm --thin <project> --core <@kiln/core bundle> (the local executor starts it, not a user)\n");
  process.exit(2);
}
blockProcess(projectPath, corePath).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`kiln: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(70);
  },
);
