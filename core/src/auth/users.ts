/**
 * Users who sign in with a password (sessions); API keys are the other way in. Only the PBKDF2
 * hash of a password is stored, and a failed sign-in looks the same whether the username is
 * unknown or the password wrong.
 */
import { KilnError } from "../errors.ts";
import type { SqlClient } from "../store/sql-client.ts";
import * as users from "../store/users.ts";
import type { UserRecord } from "../store/users.ts";
import { decoyPasswordHash, hashPassword, verifyPassword } from "./passwords.ts";
import { isRole, type Role } from "./roles.ts";

// reading and deleting users has no rule beyond the store's
export { deleteUser, getUser, listUsers, userFromRow, type UserRecord } from "../store/users.ts";

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
  const user = await users.insertUser(client, { username: input.username, passwordHash, role: input.role }, now);
  if (!user) throw new UserInputError("username", `${input.username} is taken`, "conflict");
  return user;
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
  const found = await users.userWithPasswordHash(client, username);
  const ok = await verifyPassword(password, found ? found.passwordHash : await decoyPasswordHash(options.iterations), verify);
  return found && ok ? found.user : null;
}
