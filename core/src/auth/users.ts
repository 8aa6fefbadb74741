/**
 * Users who sign in with a password (sessions); API keys are the other way in. Only the PBKDF2
 * hash of a password is stored, and a failed sign-in looks the same whether the username is
 * unknown or the password wrong.
 */
import { KilnError } from "../errors.ts";
import type { SqlClient } from "../store/sql-client.ts";
import { decoyPasswordHash, hashPassword, verifyPassword } from "./passwords.ts";
import { isRole, type Role } from "./roles.ts";

export interface UserRecord {
  id: number;
  username: string;
  role: Role;
  createdAt: number;
  updatedAt: number;
}

/** A user that cannot be created as asked; `field` names the input (`username`, `password`, `role`). */
export class UserInputError extends KilnError {
  declare readonly field: "username" | "password" | "role";
  declare readonly code: "malformed" | "conflict";

  constructor(
    field: "username" | "password" | "role",
    message: string,
    /** "conflict" when the username is taken, else "malformed" (the API's body schema refuses the same first). */
    code: "malformed" | "conflict" = "malformed",
  ) {
    super(code, `${field}: ${message}`, field, message);
    this.name = "UserInputError";
  }
}

/** Letters, digits and `_ . @ -` (an email address fits), 1 to 100 characters. */
export const USERNAME_PATTERN = /^[A-Za-z0-9_.@-]{1,100}$/;
export const MIN_PASSWORD_LENGTH = 8;
/** Bounds the work one sign-in can ask for. */
export const MAX_PASSWORD_LENGTH = 1024;

/** A users row as a record (no password hash). */
export function userFromRow(row: Record<string, unknown>): UserRecord {
  return {
    id: Number(row.id),
    username: String(row.username),
    role: String(row.role) as Role,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** Creates a user with a hashed password; a taken username is a UserInputError of kind "conflict". */
export async function createUser(
  client: SqlClient,
  input: { username: string; password: string; role: Role },
  now: number,
  options: { iterations?: number } = {},
): Promise<UserRecord> {
  if (!USERNAME_PATTERN.test(input.username)) throw new UserInputError("username", "expected 1 to 100 letters, digits or _ . @ -");
  if (!isRole(input.role)) throw new UserInputError("role", "expected admin, editor or viewer");
  if (input.password.length < MIN_PASSWORD_LENGTH) throw new UserInputError("password", `expected at least ${MIN_PASSWORD_LENGTH} characters`);
  if (input.password.length > MAX_PASSWORD_LENGTH) throw new UserInputError("password", `expected at most ${MAX_PASSWORD_LENGTH} characters`);
  const passwordHash = await hashPassword(input.password, options);
  const rs = await client.execute({
    sql: "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING RETURNING *",
    args: [input.username, passwordHash, input.role, now, now],
  });
  const row = rs.rows[0];
  if (!row) throw new UserInputError("username", `${input.username} is taken`, "conflict");
  return userFromRow(row as Record<string, unknown>);
}

/**
 * The user when `password` is theirs, else null; takes a password check's time either way.
 * `iterations` is the runtime's PBKDF2 cost (Workers: 100,000), also the most a stored hash may
 * ask for there (PasswordCostError beyond it).
 */
export async function authenticateUser(client: SqlClient, username: string, password: string, options: { iterations?: number } = {}): Promise<UserRecord | null> {
  const verify = { ...(options.iterations !== undefined ? { maxIterations: options.iterations } : {}) };
  if (password.length > MAX_PASSWORD_LENGTH || !USERNAME_PATTERN.test(username)) {
    await verifyPassword(password.slice(0, MAX_PASSWORD_LENGTH), await decoyPasswordHash(options.iterations), verify);
    return null;
  }
  const rs = await client.execute({ sql: "SELECT * FROM users WHERE username = ?", args: [username] });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  const ok = await verifyPassword(password, row ? String(row.password_hash) : await decoyPasswordHash(options.iterations), verify);
  return row && ok ? userFromRow(row) : null;
}

/** A user by id, or null. */
export async function getUser(client: SqlClient, id: number): Promise<UserRecord | null> {
  const rs = await client.execute({ sql: "SELECT * FROM users WHERE id = ?", args: [id] });
  const row = rs.rows[0] as Record<string, unknown> | undefined;
  return row ? userFromRow(row) : null;
}

/** Every user, by id. */
export async function listUsers(client: SqlClient): Promise<UserRecord[]> {
  const rs = await client.execute("SELECT * FROM users ORDER BY id");
  return rs.rows.map((row) => userFromRow(row as Record<string, unknown>));
}

/** Deletes a user (their sessions stop working at once); false when there was none. */
export async function deleteUser(client: SqlClient, id: number): Promise<boolean> {
  const rs = await client.execute({ sql: "DELETE FROM users WHERE id = ?", args: [id] });
  return rs.rowsAffected > 0;
}
