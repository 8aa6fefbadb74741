/** Authentication pieces every runtime shares: roles, API keys, passwords, users, sessions, constant-time comparison. */
export * from "./roles.ts";
export * from "./api-keys.ts";
export * from "./constant-time.ts";
export * from "./passwords.ts";
export * from "./users.ts";
export * from "./sessions.ts";
