/** Authentication pieces every runtime shares: roles, API keys, constant-time comparison. */
export * from "./roles.ts";
export * from "./api-keys.ts";
export * from "./constant-time.ts";
