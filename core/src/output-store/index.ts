/** The output store backends beside the local folder: the database and S3-compatible storage. */
export { databaseOutputStore, OutputTooLargeError, type DatabaseOutputStoreOptions } from "./database.ts";
export {
  s3OutputStore,
  s3ObjectUrl,
  s3CredentialsFromEnv,
  s3CredentialEnv,
  S3OutputError,
  OutputStoreSettingsError,
  type S3Credentials,
  type S3OutputStoreOptions,
  type S3OutputStoreSettings,
} from "./s3.ts";
export { inlineOutputStore } from "./inline.ts";
export { openOutputStore, outputStoreEnv, type OpenOutputStoreOptions } from "./open.ts";
