/**
 * `kiln api-key create|list|revoke --project P`: API keys in the project's database (the one
 * `kiln run` and `kiln start` use, KILN_DATABASE_URL when set). A created key is printed once,
 * as the last line, so scripts can take it with `tail -n 1`; only its hash is stored. With
 * `--d1 NAME`, create and revoke write to a D1 database of wrangler.toml instead, through
 * `wrangler d1 execute` (a Worker's binding has no address the CLI could open).
 */
import { createApiKey, isRole, listApiKeys, newApiKey, revokeApiKey, ROLES, type Role } from "@kiln/core/auth";
import { apiKeyInsertSql, apiKeyRevokeSql, NEXT_API_KEY_ID_SQL } from "@kiln/core/store";
import { nameProblem } from "@kiln/core/bounds";
import { parseCommand, parseId, runSubcommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE, SUBCOMMAND_USAGE } from "../usage.ts";
import { openProjectFlag } from "../project.ts";
import { d1Target, executeD1, WranglerError, type D1Target } from "../d1.ts";

const USAGE = SUBCOMMAND_USAGE["api-key"];

export const usage = COMMAND_USAGE["api-key"];

export function apiKey(args: string[]): Promise<number> {
  return runSubcommand("api-key", { create, list, revoke }, args);
}

/** The flags that send create and revoke to a D1 database through wrangler. */
const D1_FLAGS = { d1: { type: "string" }, "wrangler-config": { type: "string" }, local: { type: "boolean" }, remote: { type: "boolean" } } as const;

/** The D1 target the flags name, or null without --d1 (then --local, --remote and --wrangler-config are refused as meaningless). */
function d1Of(values: { d1?: string; "wrangler-config"?: string; local?: boolean; remote?: boolean; project?: string }, positionals: string[]): D1Target | null {
  if (values.d1 === undefined) {
    const stray = (["wrangler-config", "local", "remote"] as const).find((flag) => values[flag] !== undefined);
    if (stray) throw new UsageError(`--${stray}: only with --d1 <database-name>`);
    return null;
  }
  if (values.project !== undefined || positionals.length > 0) throw new UsageError("--project: not with --d1 (the key goes in the D1 database wrangler.toml names, not in a project's database)");
  return d1Target({ d1: values.d1, config: values["wrangler-config"], local: values.local, remote: values.remote });
}

/** Runs `work`; a failing wrangler is shown as it said it, exit code 1. */
function viaWrangler(work: () => Promise<number>): Promise<number> {
  return work().catch((error: unknown) => {
    if (!(error instanceof WranglerError)) throw error;
    process.stderr.write(`kiln: ${error.message}\n`);
    return 1;
  });
}

/** createApiKey's key and record, written through wrangler: the id is read first, since the key includes it. */
async function createInD1(target: D1Target, input: { name: string; role: Role }): Promise<number> {
  const id = Number(executeD1(target, `${NEXT_API_KEY_ID_SQL};\n`)[0]?.results[0]?.next_id);
  if (!Number.isSafeInteger(id) || id <= 0) throw new WranglerError(`npx wrangler d1 execute ${target.database}: expected the next key id, got none`);
  const { key, keyHash } = await newApiKey(id);
  executeD1(target, apiKeyInsertSql({ id, name: input.name, role: input.role, keyHash, createdAt: Date.now() }));
  process.stdout.write(`created API key ${id} (${input.name}, role ${input.role}) in D1 database ${target.database} (${target.remote ? "remote" : "local"}); it is shown this once, keep it:\n${key}\n`);
  return 0;
}

async function create(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("api-key create", args, { project: { type: "string" }, role: { type: "string" }, name: { type: "string" }, ...D1_FLAGS });
  const role = values.role;
  if (role === undefined) throw new UsageError(`--role: required (one of ${ROLES.join(", ")})`);
  if (!isRole(role)) throw new UsageError(`--role: expected one of ${ROLES.join(", ")}, got ${JSON.stringify(role)}`);
  const name = values.name === undefined ? `cli-${role}` : values.name.trim();
  if (!name || name.length > 255) throw new UsageError("--name: expected a non-empty name of at most 255 characters");
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`--name: ${problem}`);
  const d1 = d1Of(values, positionals);
  if (d1) return viaWrangler(() => createInD1(d1, { name, role }));
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
  const { values, positionals } = parseCommand("api-key revoke", args, { project: { type: "string" }, id: { type: "string" }, ...D1_FLAGS });
  const id = parseId("--id", values.id);
  const d1 = d1Of(values, positionals);
  if (d1) {
    return viaWrangler(async () => {
      const revoked = executeD1(d1, apiKeyRevokeSql(id, Date.now()))[0]?.results ?? [];
      if (revoked.length !== 1) throw new UsageError(`--id: no live API key ${id} in D1 database ${d1.database}`);
      process.stdout.write(`revoked API key ${id} in D1 database ${d1.database}\n`);
      return 0;
    });
  }
  const open = await openProjectFlag("api-key revoke", values.project, positionals);
  try {
    if (!(await revokeApiKey(open.store.client, id, open.store.clock.now()))) throw new UsageError(`--id: no live API key ${id}`);
    process.stdout.write(`revoked API key ${id}\n`);
    return 0;
  } finally {
    open.close();
  }
}
