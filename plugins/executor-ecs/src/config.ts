/**
 * executor_config for `executor_type: ecs`, checked field by field so every problem names the
 * field (`executor_config.subnets: ...`) before a task is started.
 */
import type { JsonObject } from "@kiln/core";

export type LaunchType = "FARGATE" | "EC2";

/** A block's ECS settings with the defaults filled in. */
export interface EcsSettings {
  cluster: string;
  taskDefinition: string;
  containerName: string;
  launchType: LaunchType;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: boolean;
  command: string[];
  /** The project's folder inside the image; undefined: the same path as on kiln's machine. */
  projectRoot: string | undefined;
  env: Record<string, string>;
  cpu: number | undefined;
  memory: number | undefined;
  region: string;
  endpoint: string | undefined;
  logGroup: string | undefined;
  logStreamPrefix: string | undefined;
}

/** The container of the task definition that runs kiln, unless executor_config.container_name says otherwise. */
export const DEFAULT_CONTAINER_NAME = "kiln";
/** ECS's own default when RunTask names no cluster. */
export const DEFAULT_CLUSTER = "default";

class ConfigError extends Error {}

function fail(field: string, problem: string): never {
  throw new ConfigError(`executor_config.${field}: ${problem}`);
}

function optionalString(config: JsonObject, field: string): string | undefined {
  const value = config[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.trim() === "") fail(field, `expected a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function stringList(config: JsonObject, field: string): string[] {
  const value = config[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string" && item.trim() !== "")) {
    fail(field, `expected a list of non-empty strings, got ${JSON.stringify(value)}`);
  }
  return value as string[];
}

function positiveInteger(config: JsonObject, field: string): number | undefined {
  const value = config[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) fail(field, `expected a positive whole number, got ${JSON.stringify(value)}`);
  return value;
}

function envMap(config: JsonObject, field: string): Record<string, string> {
  const value = config[field];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) fail(field, `expected a map of names to strings, got ${JSON.stringify(value)}`);
  const env: Record<string, string> = {};
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(`${field}.${name}`, "not a valid environment variable name");
    if (typeof item !== "string" && typeof item !== "number" && typeof item !== "boolean") fail(`${field}.${name}`, `expected a string, got ${JSON.stringify(item)}`);
    env[name] = String(item);
  }
  return env;
}

/**
 * Reads a block's executor_config; `env` (kiln's environment) supplies the region when the
 * config has none. Throws an Error naming the field when something is wrong.
 */
export function parseEcsConfig(config: JsonObject, env: Record<string, string | undefined>): EcsSettings {
  const taskDefinition = optionalString(config, "task_definition");
  if (!taskDefinition) fail("task_definition", "required: the task definition to run (family, family:revision or ARN)");

  const launchType = config.launch_type ?? "FARGATE";
  if (launchType !== "FARGATE" && launchType !== "EC2") fail("launch_type", `expected FARGATE or EC2, got ${JSON.stringify(launchType)}`);

  const subnets = stringList(config, "subnets");
  const securityGroups = stringList(config, "security_groups");
  // Fargate tasks always use awsvpc networking, which needs at least one subnet
  if (launchType === "FARGATE" && subnets.length === 0) fail("subnets", "required for launch_type FARGATE (awsvpc networking): at least one subnet id");
  if (launchType === "EC2" && securityGroups.length > 0 && subnets.length === 0) fail("subnets", "required when security_groups is set (awsvpc networking)");

  const assignPublicIp = config.assign_public_ip ?? false;
  if (typeof assignPublicIp !== "boolean") fail("assign_public_ip", `expected true or false, got ${JSON.stringify(assignPublicIp)}`);
  // ECS refuses a public IP for EC2 tasks: say so before RunTask does, less cryptically
  if (assignPublicIp && launchType === "EC2") fail("assign_public_ip", "only launch_type FARGATE can assign a public IP");

  const command = config.command === undefined || config.command === null ? ["kiln"] : stringList(config, "command");
  if (command.length === 0) fail("command", "expected the command that starts kiln in the image, e.g. [kiln] or [bunx, kiln]");

  const projectRoot = optionalString(config, "project_root");
  if (projectRoot !== undefined && !projectRoot.startsWith("/")) fail("project_root", `expected an absolute path inside the image, got ${JSON.stringify(projectRoot)}`);

  const region = optionalString(config, "region") ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) fail("region", "not set, and neither AWS_REGION nor AWS_DEFAULT_REGION is in kiln's environment");

  const endpoint = optionalString(config, "endpoint");
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) fail("endpoint", `expected an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }

  const logGroup = optionalString(config, "log_group");
  const logStreamPrefix = optionalString(config, "log_stream_prefix");
  // awslogs names a stream <prefix>/<container>/<task id>; without the prefix the name cannot be known
  if (logGroup && !logStreamPrefix) fail("log_stream_prefix", "required with log_group: the awslogs-stream-prefix of the task definition's container");
  if (logStreamPrefix && !logGroup) fail("log_group", "required with log_stream_prefix: the awslogs-group of the task definition's container");

  return {
    cluster: optionalString(config, "cluster") ?? DEFAULT_CLUSTER,
    taskDefinition,
    containerName: optionalString(config, "container_name") ?? DEFAULT_CONTAINER_NAME,
    launchType,
    subnets,
    securityGroups,
    assignPublicIp,
    command,
    projectRoot,
    env: envMap(config, "env"),
    cpu: positiveInteger(config, "cpu"),
    memory: positiveInteger(config, "memory"),
    region,
    endpoint,
    logGroup,
    logStreamPrefix,
  };
}

/** parseEcsConfig's verdict as a message (or null), for Executor.validateConfig. */
export function checkEcsConfig(config: JsonObject, env: Record<string, string | undefined>): string | null {
  try {
    parseEcsConfig(config, env);
    return null;
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}
