/**
 * A block's executor_config for Cloud Run: checked field by field, so a mistake is reported with
 * the field's name when the project loads rather than as an API error at run time.
 */
import type { JsonObject } from "@kiln/core";

/** The settings of one block run on Cloud Run, parsed from its executor_config. */
export interface CloudRunConfig {
  /** The Cloud Run Job's name (its container's image holds the project). */
  job: string;
  region: string;
  /** The Google Cloud project; from the key, GOOGLE_CLOUD_PROJECT or the metadata server when unset. */
  project: string | null;
  /** How the image runs kiln: the first word is the container's entrypoint, the rest lead the args. */
  command: string[];
  /** The project's folder inside the image; the host's project path when unset. */
  projectRoot: string | null;
  env: Record<string, string>;
  taskCount: number;
  /** Seconds; the block's own timeout wins. */
  timeout: number | null;
  endpoint: string;
  loggingEndpoint: string;
  /** A service-account key file, read by the host (not on Workers). */
  credentialsFile: string | null;
  /**
   * The environment variable holding the key's JSON, or a path to it; null means
   * GOOGLE_APPLICATION_CREDENTIALS when set, else the metadata server.
   */
  credentialsEnv: string | null;
  /** The metadata server's base URL, when it is not the default. */
  metadataUrl: string | null;
}

export const DEFAULT_ENDPOINT = "https://run.googleapis.com";
export const DEFAULT_LOGGING_ENDPOINT = "https://logging.googleapis.com";
export const DEFAULT_CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS";

/** A bad executor_config field, with a message naming it. */
export class CloudRunConfigError extends Error {
  override readonly name = "CloudRunConfigError";
}

// Cloud Run resource ids: lower-case letters, digits and hyphens, starting with a letter
const RESOURCE_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PROJECT_ID = /^[a-z][-a-z0-9.:]{4,61}[a-z0-9]$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function fail(field: string, problem: string): never {
  throw new CloudRunConfigError(`executor_config.${field}: ${problem}`);
}

function optionalString(config: JsonObject, field: string): string | null {
  const value = config[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.trim() === "") fail(field, "expected a non-empty string");
  return value;
}

function optionalUrl(config: JsonObject, field: string): string | null {
  const value = optionalString(config, field);
  if (value === null) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(field, `expected an http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail(field, `expected an http(s) URL, got ${JSON.stringify(value)}`);
  // paths are appended to it, so a trailing slash would double up
  return value.replace(/\/+$/, "");
}

function positiveInteger(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) fail(field, `expected a positive whole number, got ${JSON.stringify(value)}`);
  return value;
}

/** Parses a block's executor_config; throws CloudRunConfigError naming the first bad field. */
export function parseCloudRunConfig(config: JsonObject): CloudRunConfig {
  // other fields are left alone: a project-wide executor_config may hold other executors' settings
  if ("credentials_json" in config) {
    fail("credentials_json", `a key does not belong in kiln.yaml: put it in an environment variable named by credentials_env (default ${DEFAULT_CREDENTIALS_ENV}) or a file named by credentials_file`);
  }

  const job = optionalString(config, "job");
  if (job === null) fail("job", "required: the name of the Cloud Run Job whose image holds the project");
  if (!RESOURCE_ID.test(job)) fail("job", `expected a Cloud Run Job name (lower-case letters, digits, hyphens), got ${JSON.stringify(job)}`);

  const region = optionalString(config, "region");
  if (region === null) fail("region", "required: the job's region, such as europe-west1");
  if (!/^[a-z]+-[a-z]+\d+$/.test(region)) fail("region", `expected a Google Cloud region such as europe-west1, got ${JSON.stringify(region)}`);

  const project = optionalString(config, "project");
  if (project !== null && !PROJECT_ID.test(project)) fail("project", `expected a Google Cloud project id, got ${JSON.stringify(project)}`);

  let command = ["kiln"];
  if (config.command !== undefined && config.command !== null) {
    const value = config.command;
    if (!Array.isArray(value) || value.length === 0 || !value.every((word) => typeof word === "string" && word !== "")) {
      fail("command", 'expected a list of words, such as ["kiln"] or ["bun", "/app/cli/main.ts"]');
    }
    command = value as string[];
  }

  const env: Record<string, string> = {};
  if (config.env !== undefined && config.env !== null) {
    const value = config.env;
    if (typeof value !== "object" || Array.isArray(value)) fail("env", "expected a mapping of variable names to strings");
    for (const [name, text] of Object.entries(value)) {
      if (!ENV_NAME.test(name)) fail(`env.${name}`, "not a valid environment variable name");
      if (typeof text !== "string") fail(`env.${name}`, "expected a string (quote numbers and booleans)");
      env[name] = text;
    }
  }

  const credentialsEnv = optionalString(config, "credentials_env");
  if (credentialsEnv !== null && !ENV_NAME.test(credentialsEnv)) fail("credentials_env", `expected an environment variable name, got ${JSON.stringify(credentialsEnv)}`);

  return {
    job,
    region,
    project,
    command,
    projectRoot: optionalString(config, "project_root"),
    env,
    taskCount: positiveInteger(config.task_count, "task_count") ?? 1,
    timeout: positiveInteger(config.timeout, "timeout"),
    endpoint: optionalUrl(config, "endpoint") ?? DEFAULT_ENDPOINT,
    loggingEndpoint: optionalUrl(config, "logging_endpoint") ?? DEFAULT_LOGGING_ENDPOINT,
    credentialsFile: optionalString(config, "credentials_file"),
    credentialsEnv,
    metadataUrl: optionalUrl(config, "metadata_url"),
  };
}

/** The executor's validateConfig: null when the config parses, else the message naming the field. */
export function validateCloudRunConfig(config: JsonObject): string | null {
  try {
    parseCloudRunConfig(config);
    return null;
  } catch (error) {
    if (error instanceof CloudRunConfigError) return error.message;
    throw error;
  }
}
