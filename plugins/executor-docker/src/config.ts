/**
 * The Docker executor's settings, from a block run's executor_config (kiln.yaml's
 * `executors.docker` merged under the project's, pipeline's and block's executor_config).
 * Checked once when the project loads (validateConfig) and parsed again per block run.
 */
import type { JsonObject } from "@kiln/core";

/** When to pull the image before creating the container. */
export type PullPolicy = "always" | "missing" | "never";

/** The project's folder inside the image when executor_config.project_root is not set. */
export const DEFAULT_PROJECT_ROOT = "/project";

/**
 * The image a block runs in when executor_config names none: kiln's own image, as the
 * repository's Dockerfile builds it (`docker build -t kiln .`), unless KILN_DOCKER_IMAGE in
 * kiln's environment names another. It holds Bun, kiln and python3, so TypeScript and Python
 * blocks of a project mounted at project_root run in it as they are.
 */
export const DEFAULT_IMAGE = "kiln:latest";

/** The default image for kiln's environment: KILN_DOCKER_IMAGE, else DEFAULT_IMAGE. */
export function defaultImage(env: Record<string, string | undefined>): string {
  const named = env.KILN_DOCKER_IMAGE?.trim();
  return named ? named : DEFAULT_IMAGE;
}

/** How long a cancelled container has to end after SIGTERM before Docker kills it (seconds). */
export const DEFAULT_STOP_TIMEOUT = 10;

export interface DockerRunConfig {
  image: string;
  /** Whether image is the default (no executor_config.image), so a missing one is explained. */
  imageIsDefault: boolean;
  projectRoot: string;
  /** The command that runs kiln in the image; `run-block ...` is appended. */
  command: string[];
  env: Record<string, string>;
  network: string | null;
  /** Docker bind specs, "host:container" or "host:container:ro|rw". */
  volumes: string[];
  /** CPUs as a fraction (1.5 = one and a half CPUs); null for no limit. */
  cpus: number | null;
  /** Memory limit in bytes; null for no limit. */
  memoryBytes: number | null;
  keepContainer: boolean;
  /**
   * Run an init process as PID 1 (docker run --init): PID 1 ignores a signal it has no handler
   * for, so without it a cancel's SIGTERM is lost while kiln is still starting in the container.
   */
  init: boolean;
  pull: PullPolicy;
  stopTimeout: number;
  /** `unix:///path`, `tcp://host:port`, `http(s)://host:port`; null to use socket_path or DOCKER_HOST. */
  dockerHost: string | null;
  socketPath: string | null;
}

/** A bad executor_config value; the message names the field as executor_config.<field>. */
export class DockerConfigError extends Error {
  override readonly name = "DockerConfigError";
}

const KNOWN_FIELDS = new Set([
  "image",
  "project_root",
  "command",
  "env",
  "network",
  "volumes",
  "cpus",
  "memory",
  "keep_container",
  "init",
  "pull",
  "stop_timeout",
  "docker_host",
  "socket_path",
]);

const MEMORY_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses a memory size: a number of bytes, or "512m", "2g", "1.5G", "256Mi". */
export function parseMemory(value: unknown): number | null {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? value : null;
  if (typeof value !== "string") return null;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b?)?\s*$/i.exec(value);
  if (!match) return null;
  const bytes = Math.round(Number(match[1]) * (MEMORY_UNITS[(match[2] ?? "").toLowerCase()] ?? NaN));
  return Number.isFinite(bytes) && bytes > 0 ? bytes : null;
}

function fail(field: string, expected: string): never {
  throw new DockerConfigError(`executor_config.${field}: expected ${expected}`);
}

function optionalString(config: JsonObject, field: string): string | null {
  const value = config[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.trim() === "") fail(field, "a non-empty string");
  return value;
}

/** A volume spec Docker accepts as a bind: an absolute host path, an absolute container path, an optional ro/rw. */
function checkVolume(spec: unknown, index: number): string {
  const field = `volumes[${index}]`;
  if (typeof spec !== "string") fail(field, 'a string "host_path:container_path[:ro]"');
  const parts = spec.split(":");
  const [host, container, mode] = parts;
  if (parts.length < 2 || parts.length > 3 || !host || !container) fail(field, `"host_path:container_path[:ro]", got "${spec}"`);
  if (!container.startsWith("/")) fail(field, `an absolute path inside the container, got "${container}"`);
  if (mode !== undefined && mode !== "ro" && mode !== "rw") fail(field, `the mode ro or rw, got "${mode}"`);
  return spec;
}

/**
 * Parses executor_config, throwing a DockerConfigError that names the bad field; without
 * executor_config.image the block runs in `fallbackImage` (see defaultImage).
 */
export function parseDockerConfig(config: JsonObject, fallbackImage: string = DEFAULT_IMAGE): DockerRunConfig {
  for (const field of Object.keys(config)) {
    if (!KNOWN_FIELDS.has(field)) {
      throw new DockerConfigError(`executor_config.${field}: unknown setting for the docker executor (known: ${[...KNOWN_FIELDS].join(", ")})`);
    }
  }
  const named = optionalString(config, "image");
  const image = named ?? fallbackImage;

  const projectRoot = optionalString(config, "project_root") ?? DEFAULT_PROJECT_ROOT;
  if (!projectRoot.startsWith("/")) fail("project_root", `an absolute path inside the image, got "${projectRoot}"`);

  let command = ["kiln"];
  if (config.command !== undefined && config.command !== null) {
    const value = config.command;
    if (!Array.isArray(value) || value.length === 0 || !value.every((word) => typeof word === "string" && word !== "")) {
      fail("command", 'a non-empty list of strings, e.g. ["kiln"] or ["bun", "/app/kiln.js"]');
    }
    command = value as string[];
  }

  const env: Record<string, string> = {};
  if (config.env !== undefined && config.env !== null) {
    const value = config.env;
    if (typeof value !== "object" || Array.isArray(value)) fail("env", "a map of variable names to strings");
    for (const [name, text] of Object.entries(value)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(`env.${name}`, "a variable name of letters, digits and _");
      if (typeof text !== "string" && typeof text !== "number" && typeof text !== "boolean") fail(`env.${name}`, "a string");
      env[name] = String(text);
    }
  }

  let volumes: string[] = [];
  if (config.volumes !== undefined && config.volumes !== null) {
    if (!Array.isArray(config.volumes)) fail("volumes", 'a list of "host_path:container_path[:ro]"');
    volumes = config.volumes.map(checkVolume);
  }

  let cpus: number | null = null;
  if (config.cpus !== undefined && config.cpus !== null) {
    if (typeof config.cpus !== "number" || !(config.cpus > 0)) fail("cpus", "a number of CPUs above 0, e.g. 0.5 or 2");
    cpus = config.cpus;
  }

  let memoryBytes: number | null = null;
  if (config.memory !== undefined && config.memory !== null) {
    memoryBytes = parseMemory(config.memory);
    if (memoryBytes === null) fail("memory", 'a size such as "512m" or "2g", or a number of bytes');
  }

  let keepContainer = false;
  if (config.keep_container !== undefined && config.keep_container !== null) {
    if (typeof config.keep_container !== "boolean") fail("keep_container", "true or false");
    keepContainer = config.keep_container;
  }

  let init = true;
  if (config.init !== undefined && config.init !== null) {
    if (typeof config.init !== "boolean") fail("init", "true or false");
    init = config.init;
  }

  let pull: PullPolicy = "missing";
  if (config.pull !== undefined && config.pull !== null) {
    if (config.pull !== "always" && config.pull !== "missing" && config.pull !== "never") fail("pull", "always, missing or never");
    pull = config.pull;
  }

  let stopTimeout = DEFAULT_STOP_TIMEOUT;
  if (config.stop_timeout !== undefined && config.stop_timeout !== null) {
    if (typeof config.stop_timeout !== "number" || !Number.isInteger(config.stop_timeout) || config.stop_timeout < 0) {
      fail("stop_timeout", "a whole number of seconds, 0 or more");
    }
    stopTimeout = config.stop_timeout;
  }

  const dockerHost = optionalString(config, "docker_host");
  if (dockerHost !== null && !/^(unix|tcp|http|https):\/\/./.test(dockerHost)) {
    fail("docker_host", `unix:///path/to/docker.sock, tcp://host:port or https://host:port, got "${dockerHost}"`);
  }
  const socketPath = optionalString(config, "socket_path");
  if (socketPath !== null && !socketPath.startsWith("/")) fail("socket_path", `an absolute path to the Docker socket, got "${socketPath}"`);
  if (dockerHost !== null && socketPath !== null) fail("docker_host", "either docker_host or socket_path, not both");

  return {
    image,
    imageIsDefault: named === null,
    projectRoot,
    command,
    env,
    network: optionalString(config, "network"),
    volumes,
    cpus,
    memoryBytes,
    keepContainer,
    init,
    pull,
    stopTimeout,
    dockerHost,
    socketPath,
  };
}

/** validateConfig's answer: the message naming the bad field, or null. */
export function dockerConfigProblem(config: JsonObject): string | null {
  try {
    parseDockerConfig(config);
    return null;
  } catch (error) {
    if (error instanceof DockerConfigError) return error.message;
    throw error;
  }
}
