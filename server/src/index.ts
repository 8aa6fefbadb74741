/** @kiln/server: kiln's REST API as a Hono app, runtime-neutral. */
export { createApp } from "./app.ts";
export type { ServerDeps, Env } from "./deps.ts";
export type { Principal } from "./auth.ts";
export { ApiError } from "./errors.ts";
export { parseTrustProxy } from "./forwarded.ts";
