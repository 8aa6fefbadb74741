/** Opening the output store a project's kiln.yaml names, wherever the project is opened. */
import type { Clock } from "../clock.ts";
import type { OutputStore } from "../outputs.ts";
import type { OutputStoreSettings } from "../project/types.ts";
import type { SqlClient } from "../store/sql-client.ts";
import { databaseOutputStore } from "./database.ts";
import { s3CredentialEnv, s3CredentialsFromEnv, s3OutputStore, type S3OutputStoreOptions } from "./s3.ts";

export interface OpenOutputStoreOptions {
  /** The project's database client (migrated), for `{type: database}`. */
  client: SqlClient;
  /** Where S3 credentials are read from (the process environment, or a Worker's bindings). */
  env: Record<string, string | undefined>;
  /** Makes the local-folder store; only the runtime with a file system can. */
  local: () => OutputStore;
  clock?: Clock;
  s3?: S3OutputStoreOptions;
}

/** The output store kiln.yaml's `output_store` names; throws OutputStoreSettingsError when its credentials or endpoint cannot work. */
export function openOutputStore(settings: OutputStoreSettings, options: OpenOutputStoreOptions): OutputStore {
  switch (settings.type) {
    case "local":
      return options.local();
    case "database":
      return databaseOutputStore(options.client, { maxBytes: settings.maxBytes, clock: options.clock });
    case "s3":
      return s3OutputStore(settings, s3CredentialsFromEnv(options.env), options.s3);
  }
}

/**
 * Environment a block needs to reach the output store from elsewhere (a container): the S3
 * credentials as KILN_S3_*; nothing for the local folder or the database (the database's own
 * variables carry it).
 */
export function outputStoreEnv(settings: OutputStoreSettings, env: Record<string, string | undefined>): Record<string, string> {
  return settings.type === "s3" ? s3CredentialEnv(s3CredentialsFromEnv(env)) : {};
}
