/**
 * `kiln user create|list|delete --project P`: users who sign in with `POST /api/sessions`. The
 * password never goes on the command line (where `ps` and shell history would keep it): it is
 * read from stdin with --password-stdin, or from KILN_PASSWORD.
 */
import { createUser, isRole, listUsers, deleteUser, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, ROLES, USERNAME_PATTERN, UserInputError } from "@kiln/core/auth";
import { parseCommand, runSubcommand } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE, SUBCOMMAND_USAGE } from "../usage.ts";
import { openProjectFlag } from "../project.ts";

const USAGE = SUBCOMMAND_USAGE["user"];

export const usage = COMMAND_USAGE["user"];

export function user(args: string[]): Promise<number> {
  return runSubcommand("user", { create, list, delete: remove }, args);
}

async function readStdin(): Promise<string> {
  let text = "";
  process.stdin.setEncoding("utf8");
  for await (const chunk of process.stdin) text += chunk as string;
  return text;
}

function username(value: string | undefined): string {
  if (value === undefined) throw new UsageError("--username: required");
  if (!USERNAME_PATTERN.test(value)) throw new UsageError(`--username: expected 1 to 100 letters, digits or _ . @ -, got ${JSON.stringify(value)}`);
  return value;
}

async function create(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("user create", args, {
    project: { type: "string" },
    username: { type: "string" },
    role: { type: "string" },
    "password-stdin": { type: "boolean" },
  });
  const name = username(values.username);
  const role = values.role;
  if (role === undefined) throw new UsageError(`--role: required (one of ${ROLES.join(", ")})`);
  if (!isRole(role)) throw new UsageError(`--role: expected one of ${ROLES.join(", ")}, got ${JSON.stringify(role)}`);
  let password: string;
  let source: string;
  if (values["password-stdin"]) {
    // one trailing newline is what `echo` and heredocs add, not part of the password
    password = (await readStdin()).replace(/\r?\n$/, "");
    source = "--password-stdin";
  } else if (process.env.KILN_PASSWORD !== undefined) {
    password = process.env.KILN_PASSWORD;
    source = "KILN_PASSWORD";
  } else {
    throw new UsageError("--password-stdin: give the password on stdin with --password-stdin, or in KILN_PASSWORD (never as a flag)");
  }
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw new UsageError(`${source}: expected a password of ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters, got ${password.length}`);
  }
  const open = await openProjectFlag("user create", values.project, positionals);
  try {
    const created = await createUser(open.store.client, { username: name, password, role }, open.store.clock.now()).catch((error: unknown) => {
      if (error instanceof UserInputError) throw new UsageError(`--${error.field === "password" ? "password-stdin" : error.field}: ${error.detail}`);
      throw error;
    });
    process.stdout.write(`created user ${created.username} (id ${created.id}, role ${created.role})\n`);
    return 0;
  } finally {
    open.close();
  }
}

async function list(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("user list", args, { project: { type: "string" }, json: { type: "boolean" } });
  const open = await openProjectFlag("user list", values.project, positionals);
  try {
    const users = await listUsers(open.store.client);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(users.map((u) => ({ id: u.id, username: u.username, role: u.role, created_at: new Date(u.createdAt).toISOString() })), null, 2)}\n`);
    } else if (users.length === 0) {
      process.stdout.write("no users\n");
    } else {
      for (const u of users) process.stdout.write(`${u.id}\t${u.role}\t${u.username}\n`);
    }
    return 0;
  } finally {
    open.close();
  }
}

async function remove(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("user delete", args, { project: { type: "string" }, username: { type: "string" } });
  const name = username(values.username);
  const open = await openProjectFlag("user delete", values.project, positionals);
  try {
    const found = (await listUsers(open.store.client)).find((u) => u.username === name);
    if (!found || !(await deleteUser(open.store.client, found.id))) throw new UsageError(`--username: no user ${name}`);
    process.stdout.write(`deleted user ${name}; their sessions no longer work\n`);
    return 0;
  } finally {
    open.close();
  }
}
