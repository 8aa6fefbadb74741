/** Opening the output store a project's kiln.yaml names, wherever the project is opened. */
import type { Clock } from "../clock.ts";
import type { OutputStore } from "../outputs.ts";
import type { OutputStoreSettings } from "../project/types.ts";
import type { SqlClient } from "../store/sql-client.ts";
import { DEFAULT_INLINE_OUTPUT_BYTES } from "../project/types.ts";
import { databaseOutputStore } from "./database.ts";
import { inlineOutputStore } from "./inline.ts";
import { s3CredentialEnv, s3CredentialsFromEnv, s3OutputStore, type S3OutputStoreOptions } from "./s3.ts";

export interface OpenOutputStoreOptions {
  /** The project's database client (migrated), for `{type: database}`. */
  client: SqlClient;
  /** Where S3 credentials are read from (the process environment, or a Worker's bindings). */
  env: Record<string, string | undefined>;
  /** Makes the local-folder store; only the runtime with a file system can. */
  local: () => OutputStore;
  /**
   * false: the local folder's store as it is, without the rows of small in-process outputs read
   * first (a runtime whose `local` is not a folder, e.g. a Worker's database store). Default true.
   */
  inline?: boolean;
  clock?: Clock;
  s3?: S3OutputStoreOptions;
}

/** The output store kiln.yaml's `output_store` names; throws OutputStoreSettingsError when its credentials or endpoint cannot work. */
export function openOutputStore(settings: OutputStoreSettings, options: OpenOutputStoreOptions): OutputStore {
  switch (settings.type) {
    case "local":
      // small in-process outputs are rows read before the files (output-store/inline.ts)
      return options.inline === false ? options.local() : inlineOutputStore(options.client, options.local(), settings.inlineMaxBytes ?? DEFAULT_INLINE_OUTPUT_BYTES);
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
