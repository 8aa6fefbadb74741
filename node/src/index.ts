/**
 * @kiln/node: core's ports implemented with node:* APIs, which Bun, Deno and Node all provide:
 * a project read from a folder, the database client, outputs and logs as files.
 */
export * from "./folder-source.ts";
export * from "./database.ts";
export * from "./file-outputs.ts";
export * from "./file-logs.ts";
export * from "./local-client.ts";
export * from "./checkpointer.ts";
export * from "./serve.ts";
export * from "./python-host.ts";
export { smtpMailSender } from "./smtp-mail.ts";
export * from "./private-files.ts";
export * from "./secret-key.ts";
export * from "./sync-hmac.ts";
