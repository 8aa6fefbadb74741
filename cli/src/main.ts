#!/usr/bin/env bun
/** The `kiln` command. Exit codes: 0 success, 1 the run failed, 2 a usage or input error. */
import { init, usage as initUsage } from "./commands/init.ts";
import { run, usage as runUsage } from "./commands/run.ts";
import { runBlock, usage as runBlockUsage } from "./commands/run-block.ts";
import { start, usage as startUsage } from "./commands/start.ts";
import { trigger, usage as triggerUsage } from "./commands/trigger.ts";
import { backfill, usage as backfillUsage } from "./commands/backfill.ts";
import { apiKey, usage as apiKeyUsage } from "./commands/api-key.ts";
import { user, usage as userUsage } from "./commands/user.ts";
import { build, usage as buildUsage } from "./commands/build.ts";
import { UsageError } from "./errors.ts";

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { init, run, "run-block": runBlock, start, trigger, backfill, "api-key": apiKey, user, build };

const HELP = `kiln: a data-pipeline orchestrator

usage:
  ${initUsage}
  ${runUsage}
  ${runBlockUsage}
  ${startUsage}
  ${triggerUsage}
  ${backfillUsage}
  ${apiKeyUsage}
  ${userUsage}
  ${buildUsage}
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(HELP);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command ${name} (commands: ${Object.keys(COMMANDS).join(", ")})`);
  return command(args);
}

// The event loop emptied while the command was still waiting on a promise that can no longer
// settle (an in-process block that never returns): exiting 0 would report success.
const unfinished = () => {
  process.stderr.write("kiln: the command stopped before finishing: it was waiting on a promise that never settled\n");
  process.exit(70);
};
process.once("beforeExit", unfinished);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`kiln: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`kiln: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(70);
  },
);
