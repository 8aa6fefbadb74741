/**
 * `kiln api-key create|list|revoke --project P`: API keys in the project's database (the one
 * `kiln run` and `kiln start` use, KILN_DATABASE_URL when set). A created key is printed once,
 * as the last line, so scripts can take it with `tail -n 1`; only its hash is stored.
 */
import { createApiKey, isRole, listApiKeys, revokeApiKey, ROLES } from "@kiln/core/auth";
import { nameProblem } from "@kiln/core/bounds";
import { parseCommand, parseId, runSubcommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE, SUBCOMMAND_USAGE } from "../usage.ts";
import { openProjectFlag } from "../project.ts";

const USAGE = SUBCOMMAND_USAGE["api-key"];

export const usage = COMMAND_USAGE["api-key"];

export function apiKey(args: string[]): Promise<number> {
  return runSubcommand("api-key", { create, list, revoke }, args);
}

async function create(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("api-key create", args, { project: { type: "string" }, role: { type: "string" }, name: { type: "string" } });
  const role = values.role;
  if (role === undefined) throw new UsageError(`--role: required (one of ${ROLES.join(", ")})`);
  if (!isRole(role)) throw new UsageError(`--role: expected one of ${ROLES.join(", ")}, got ${JSON.stringify(role)}`);
  const name = values.name === undefined ? `cli-${role}` : values.name.trim();
  if (!name || name.length > 255) throw new UsageError("--name: expected a non-empty name of at most 255 characters");
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`--name: ${problem}`);
  const open = await openProjectFlag("api-key create", values.project, positionals);
  try {
    const { record, key } = await createApiKey(open.store.client, { name, role }, open.store.clock.now());
    process.stdout.write(`created API key ${record.id} (${record.name}, role ${record.role}); it is shown this once, keep it:\n${key}\n`);
    return 0;
  } finally {
    open.close();
  }
}

async function list(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("api-key list", args, { project: { type: "string" }, json: { type: "boolean" } });
  const open = await openProjectFlag("api-key list", values.project, positionals);
  try {
    const keys = await listApiKeys(open.store.client);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    if (values.json) {
      const rows = keys.map((k) => ({ id: k.id, name: k.name, role: k.role, created_at: iso(k.createdAt), revoked_at: iso(k.revokedAt) }));
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    } else if (keys.length === 0) {
      process.stdout.write("no API keys\n");
    } else {
      for (const k of keys) process.stdout.write(`${k.id}\t${k.role}\t${k.revokedAt === null ? "live" : `revoked ${iso(k.revokedAt)}`}\t${k.name}\n`);
    }
    return 0;
  } finally {
    open.close();
  }
}

async function revoke(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("api-key revoke", args, { project: { type: "string" }, id: { type: "string" } });
  const id = parseId("--id", values.id);
  const open = await openProjectFlag("api-key revoke", values.project, positionals);
  try {
    if (!(await revokeApiKey(open.store.client, id, open.store.clock.now()))) throw new UsageError(`--id: no live API key ${id}`);
    process.stdout.write(`revoked API key ${id}\n`);
    return 0;
  } finally {
    open.close();
  }
}
