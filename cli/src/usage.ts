/**
 * Every command's usage, apart from the commands themselves: `kiln --help`, `kiln help <command>`
 * and `kiln <command> --help` print these without loading any command's dependencies.
 */

/** Usage lines of the commands with subcommands, by subcommand. */
export const SUBCOMMAND_USAGE = {
  trigger: {
    add: "kiln trigger add <project> <pipeline> --name N --schedule-type time|api|event [--schedule-interval E] [--timezone TZ] [--start-time T] [--status active|inactive] [--variables JSON] [--settings JSON] [--sla S] [--description D] [--event-pattern JSON]",
    update: "kiln trigger update <project> <pipeline> <name> [--rename NEW] [--schedule-type T] [--schedule-interval E] [--timezone TZ] [--start-time T] [--status S] [--variables JSON] [--settings JSON] [--sla S] [--description D] [--event-pattern JSON]",
    remove: "kiln trigger remove <project> <pipeline> <name>",
    preview: "kiln trigger preview <project> <pipeline> <name> --from ISO --to ISO [--json] [--limit N]",
    previewFlags:
      "kiln trigger preview --schedule-interval E [--timezone TZ] [--dst-gap skip|shift] [--dst-overlap first|last|both] [--start-time T] --from ISO --to ISO [--json] [--limit N]",
  },
  backfill: {
    create:
      "kiln backfill create <project> <pipeline> --name N --start ISO --end ISO --interval-type minute|hour|day|week|month|year [--interval-units N] [--variables JSON] [--block-uuid B] [--max-concurrent-runs N] [--start-now] [--json]",
    start: "kiln backfill start|cancel|retry|status <project> <backfill_id> [--json]",
  },
  "api-key": {
    create: "kiln api-key create --project P --role admin|editor|viewer [--name N]\n  kiln api-key create --d1 DATABASE [--local|--remote] [--wrangler-config wrangler.toml] --role admin|editor|viewer [--name N]",
    list: "kiln api-key list --project P [--json]",
    revoke: "kiln api-key revoke --project P --id N\n  kiln api-key revoke --d1 DATABASE [--local|--remote] [--wrangler-config wrangler.toml] --id N",
  },
  user: {
    create: "kiln user create --project P --username U --role admin|editor|viewer [--password-stdin] (else the password is read from KILN_PASSWORD)",
    list: "kiln user list --project P [--json]",
    delete: "kiln user delete --project P --username U",
  },
} as const;

/** Each command's usage (several lines for commands with subcommands). */
export const COMMAND_USAGE: Record<string, string> = {
  init: "kiln init <path>",
  run: "kiln run <project> <pipeline_uuid> [--runtime-vars JSON] [--block-uuid B] [--skip-sensors] [--executor-type T]",
  "run-block": "kiln run-block <project> <pipeline_uuid> <block_uuid> --pipeline-run-id N --block-run-id M [--runtime-vars JSON]",
  start:
    "kiln start <project> [--instance-type server_and_scheduler|scheduler|web_server] [--port N] [--host H] [--no-auth] [--tick-interval MS] [--grace-period S] [--orphan-after S] [--reload-interval S]",
  trigger: Object.values(SUBCOMMAND_USAGE.trigger).join("\n  "),
  backfill: Object.values(SUBCOMMAND_USAGE.backfill).join("\n  "),
  "api-key": Object.values(SUBCOMMAND_USAGE["api-key"]).join("\n  "),
  user: Object.values(SUBCOMMAND_USAGE.user).join("\n  "),
  build: "kiln build worker <project> [--out DIR] [--tick-seconds N] [--grace-seconds N]",
};

/**
 * The usage for a command path such as ["trigger", "add"] or ["start"]: the subcommand's own
 * line when it has one (backfill's start|cancel|retry|status share one), else the command's.
 */
export function usageOf(path: readonly string[]): string | undefined {
  const [command, subcommand] = path;
  if (command === undefined) return undefined;
  const subcommands = (SUBCOMMAND_USAGE as Record<string, Record<string, string>>)[command];
  if (subcommands && subcommand !== undefined) {
    if (Object.hasOwn(subcommands, subcommand)) {
      // preview has two forms: both apply
      return command === "trigger" && subcommand === "preview" ? `${subcommands.preview}\n  ${subcommands.previewFlags}` : subcommands[subcommand];
    }
    if (command === "backfill" && ["cancel", "retry", "status"].includes(subcommand)) return subcommands.start;
  }
  return Object.hasOwn(COMMAND_USAGE, command) ? COMMAND_USAGE[command] : undefined;
}
