#!/usr/bin/env bun
/**
 * The `kiln` command. Exit codes: 0 success, 1 the run failed, 2 a usage or input error.
 * Commands are imported when they are run, so `kiln --help`, `kiln --version` and each command
 * load only what that command uses.
 */
import { exitWhenDone, UsageError } from "./errors.ts";
import { COMMAND_USAGE, usageOf } from "./usage.ts";
import { VERSION } from "./version.ts";
import { takeKilnSecrets } from "./kiln-env.ts";

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  init: async () => (await import("./commands/init.ts")).init,
  run: async () => (await import("./commands/run.ts")).run,
  "run-block": async () => (await import("./commands/run-block.ts")).runBlock,
  start: async () => (await import("./commands/start.ts")).start,
  trigger: async () => (await import("./commands/trigger.ts")).trigger,
  backfill: async () => (await import("./commands/backfill.ts")).backfill,
  "api-key": async () => (await import("./commands/api-key.ts")).apiKey,
  user: async () => (await import("./commands/user.ts")).user,
  build: async () => (await import("./commands/build.ts")).build,
};

const HELP = `kiln ${VERSION}: a data-pipeline orchestrator

usage:
  ${Object.values(COMMAND_USAGE).join("\n  ")}
  kiln help <command>        a command's usage (also: kiln <command> --help)
  kiln --version
`;

/**
 * Writes text that ends in a newline to stdout or stderr. On Bun, console's writers are ready at
 * start, while process.stdout is built on first use (about 20 ms of CPU, most of `kiln --version`).
 */
function print(to: "out" | "err", text: string): void {
  const line = text.endsWith("\n") ? text.slice(0, -1) : text;
  if (to === "out") console.log(line);
  else console.error(line);
}

const isHelpFlag = (arg: string) => arg === "--help" || arg === "-h";

/** `--help` or `-h` among a command's arguments, before a `--` that ends the flags. */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some(isHelpFlag);
}

function printUsage(path: string[]): number {
  const usage = usageOf(path);
  if (usage === undefined) throw new UsageError(`unknown command ${path[0]} (commands: ${Object.keys(COMMANDS).join(", ")})`);
  print("out", `usage:\n  ${usage}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  takeKilnSecrets();
  const [name, ...args] = argv;
  if (name === "--version" || name === "-V" || name === "version") {
    print("out", `kiln ${VERSION}\n`);
    return 0;
  }
  if (!name || isHelpFlag(name)) {
    // bare `kiln` is a mistake (exit 2) that shows the help; `kiln --help` asked for it
    print(name ? "out" : "err", HELP);
    return name ? 0 : 2;
  }
  if (name === "help") {
    if (args.length === 0) {
      print("out", HELP);
      return 0;
    }
    return printUsage(args);
  }
  // the local executor's thin warm block process: a module of its own, none of run-block's imports
  if (name === "run-block" && args[0] === "--warm" && args[1] === "--thin" && args.length === 3) {
    const [{ blockProcess }, { resolveKilnForBlocks }] = await Promise.all([import("./commands/block-process.ts"), import("./kiln-resolution.ts")]);
    return blockProcess(args[2]!, (root) => resolveKilnForBlocks(root));
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) throw new UsageError(`unknown command ${name} (commands: ${Object.keys(COMMANDS).join(", ")}; kiln --help shows their usage)`);
  if (asksForHelp(args)) return printUsage([name, ...args.filter((arg) => !arg.startsWith("-")).slice(0, 1)]);
  return (await load())(args);
}

exitWhenDone(main(process.argv.slice(2)));
