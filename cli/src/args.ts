/** Flag parsing shared by the commands (node:util parseArgs), with errors a user can act on. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { type JsonObject } from "@kiln/core";
import { JSON_DEPTH_MESSAGE, jsonTextDepth, MAX_JSON_DEPTH } from "@kiln/core/bounds";
import { UsageError } from "./errors.ts";
import { usageOf } from "./usage.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses a command's arguments (`command` as typed, "start" or "trigger add"); an unknown flag or
 * a missing value is a UsageError naming the flag, followed by the command's usage.
 */
export function parseCommand<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    // node's message for an unknown flag goes on about positionals; the flag and the usage say more
    const flag = code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? /'([^']+)'/.exec(message)?.[1] : undefined;
    const usage = usageOf(command.split(" "));
    throw new UsageError(`kiln ${command}: ${flag ? `unknown option '${flag}'` : message}${usage ? `\nusage:\n  ${usage}` : ""}`);
  }
}

/** Parses --runtime-vars: a JSON object, or a UsageError naming the flag. */
export function parseRuntimeVars(text: string | undefined): JsonObject {
  if (text === undefined) return {};
  if (jsonTextDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new UsageError(`--runtime-vars: expected a JSON object, got one ${JSON_DEPTH_MESSAGE}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--runtime-vars: expected a JSON object, got invalid JSON (${(error as Error).message})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(`--runtime-vars: expected a JSON object, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`);
  }
  return value as JsonObject;
}

/** Parses a positive integer flag such as --pipeline-run-id. */
export function parseId(flag: string, text: string | undefined): number {
  const id = Number(text);
  if (text === undefined || !Number.isInteger(id) || id <= 0) {
    throw new UsageError(`${flag}: expected a positive integer, got ${text === undefined ? "nothing" : JSON.stringify(text)}`);
  }
  return id;
}

/** Runs the subcommand `args[0]` names with the rest; an unknown or missing one is a usage error listing them. */
export function runSubcommand(command: string, subcommands: Record<string, (args: string[]) => Promise<number>>, args: string[]): Promise<number> {
  const [subcommand, ...rest] = args;
  const run = subcommand !== undefined && Object.hasOwn(subcommands, subcommand) ? subcommands[subcommand] : undefined;
  if (!run) {
    const names = Object.keys(subcommands);
    const expected = names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : (names[0] ?? "");
    throw new UsageError(`kiln ${command}: expected ${expected}${subcommand ? `, got ${subcommand}` : ""}`);
  }
  return run(rest);
}
