/**
 * A block's executor_config for Kubernetes, checked field by field, so a mistake is reported
 * with the field's name when the project loads rather than as a 422 from the API server when
 * the block starts.
 */
import type { JsonObject } from "@kiln/core";

/** One variable taken from one key of a Secret (`env[].valueFrom.secretKeyRef`). */
export interface SecretKeyEnv {
  name: string;
  secret: string;
  key: string;
}

/** A node taint the pod tolerates, in the Kubernetes field names. */
export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  tolerationSeconds?: number;
}

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

/** Where the executor finds the cluster: names and paths only, never credentials, so it can go in a handle. */
export interface ConnectionChoice {
  /** A kubeconfig file (else KILN_KUBECONFIG_DATA, KUBECONFIG, in-cluster, ~/.kube/config). */
  kubeconfig: string | null;
  /** The kubeconfig context (else its current-context). */
  context: string | null;
  /** Use the pod's service account even when a kubeconfig is around. */
  inCluster: boolean;
}

/** The settings of one block run on Kubernetes, parsed from its executor_config. */
export interface KubernetesConfig {
  image: string;
  /** The Job's namespace; the kubeconfig context's (or the pod's) namespace, else "default", when unset. */
  namespace: string | null;
  /** How the image runs kiln: these words, then `run-block ...`. */
  command: string[];
  /** The project's folder inside the image; the host's project path when unset. */
  projectRoot: string | null;
  env: Record<string, string>;
  /** Secrets whose every key becomes a variable (`envFrom[].secretRef`). */
  envFromSecrets: string[];
  /** Single variables from single Secret keys. */
  secretKeyEnv: SecretKeyEnv[];
  resources: ResourceRequirements | null;
  serviceAccount: string | null;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  imagePullPolicy: "Always" | "IfNotPresent" | "Never" | null;
  imagePullSecrets: string[];
  /** Seconds the finished Job is kept before Kubernetes deletes it. */
  ttlSecondsAfterFinished: number;
  /** Seconds a pod may stay unschedulable (or uncreated) before the block run fails. */
  scheduleTimeout: number;
  connection: ConnectionChoice;
}

/**
 * A finished Job is kept a day: its outcome (and its pod's log) must still be readable when a
 * scheduler that was down comes back and re-attaches; after that a missing Job's outcome is unknown.
 */
export const DEFAULT_TTL_SECONDS = 86_400;
/** Long enough for a cluster autoscaler to add a node, short enough not to wait for ever. */
export const DEFAULT_SCHEDULE_TIMEOUT = 300;

/** A bad executor_config field, with a message naming it. */
export class KubernetesConfigError extends Error {
  override readonly name = "KubernetesConfigError";
}

const KNOWN_FIELDS = new Set([
  "image",
  "namespace",
  "command",
  "project_root",
  "env",
  "env_from_secrets",
  "resources",
  "service_account",
  "node_selector",
  "tolerations",
  "image_pull_policy",
  "image_pull_secrets",
  "ttl_seconds_after_finished",
  "schedule_timeout",
  "kubeconfig",
  "context",
  "in_cluster",
]);

/** RFC 1123 label: what namespaces and container names must be. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: what Secret and ServiceAccount names must be. */
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// what kubectl and the API server accept as a variable name (any printable but "=", not starting with a digit is not required)
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Whether `key` is a valid label key: an optional DNS-subdomain prefix and "/", then a name of up to 63 characters. */
export function isLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null && !DNS_SUBDOMAIN.test(prefix)) return false;
  return name.length > 0 && LABEL_VALUE.test(name);
}

/** Whether `value` is a valid label value: up to 63 letters, digits, "-", "_", ".", alphanumeric at both ends, or empty. */
export function isLabelValue(value: string): boolean {
  return LABEL_VALUE.test(value);
}

function fail(field: string, problem: string): never {
  throw new KubernetesConfigError(`executor_config.${field}: ${problem}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalString(config: JsonObject, field: string): string | null {
  const value = config[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.trim() === "") fail(field, "expected a non-empty string");
  return value;
}

function optionalName(config: JsonObject, field: string, pattern: RegExp, what: string): string | null {
  const value = optionalString(config, field);
  if (value !== null && !pattern.test(value)) fail(field, `expected ${what}, got ${JSON.stringify(value)}`);
  return value;
}

function wholeNumber(config: JsonObject, field: string, min: number, fallback: number): number {
  const value = config[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) fail(field, `expected a whole number of seconds, at least ${min}, got ${JSON.stringify(value)}`);
  return value;
}

function stringMap(value: unknown, field: string, checkKey: (key: string) => string | null, checkValue: (value: string) => string | null = () => null): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) fail(field, "expected a mapping of names to strings");
  const out: Record<string, string> = {};
  for (const [key, text] of Object.entries(value)) {
    const problem = checkKey(key);
    if (problem) fail(`${field}.${key}`, problem);
    if (typeof text !== "string") fail(`${field}.${key}`, "expected a string (quote numbers and booleans)");
    const valueProblem = checkValue(text);
    if (valueProblem) fail(`${field}.${key}`, valueProblem);
    out[key] = text;
  }
  return out;
}

function stringList(value: unknown, field: string, pattern: RegExp, what: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(field, `expected a list of ${what}`);
  return value.map((item, i) => {
    if (typeof item !== "string" || !pattern.test(item)) fail(`${field}[${i}]`, `expected ${what}, got ${JSON.stringify(item)}`);
    return item;
  });
}

function parseEnvFromSecrets(value: unknown): { envFromSecrets: string[]; secretKeyEnv: SecretKeyEnv[] } {
  const envFromSecrets: string[] = [];
  const secretKeyEnv: SecretKeyEnv[] = [];
  if (value === undefined || value === null) return { envFromSecrets, secretKeyEnv };
  const shape = 'expected a list of Secret names (all their keys become variables) or {name: VAR, secret: SECRET, key: KEY} entries';
  if (!Array.isArray(value)) fail("env_from_secrets", shape);
  value.forEach((item, i) => {
    const field = `env_from_secrets[${i}]`;
    if (typeof item === "string") {
      if (!DNS_SUBDOMAIN.test(item)) fail(field, `expected a Secret name, got ${JSON.stringify(item)}`);
      envFromSecrets.push(item);
      return;
    }
    if (!isObject(item)) fail(field, shape);
    for (const key of Object.keys(item)) if (!["name", "secret", "key"].includes(key)) fail(`${field}.${key}`, "unknown field (expected name, secret, key)");
    const { name, secret, key } = item;
    if (typeof name !== "string" || !ENV_NAME.test(name)) fail(`${field}.name`, "expected an environment variable name");
    if (typeof secret !== "string" || !DNS_SUBDOMAIN.test(secret)) fail(`${field}.secret`, "expected a Secret name");
    if (typeof key !== "string" || !/^[-._a-zA-Z0-9]+$/.test(key)) fail(`${field}.key`, "expected a key of the Secret");
    secretKeyEnv.push({ name, secret, key });
  });
  return { envFromSecrets, secretKeyEnv };
}

function parseResources(value: unknown): ResourceRequirements | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) fail("resources", "expected {requests: {cpu, memory}, limits: {cpu, memory}}");
  const out: ResourceRequirements = {};
  for (const [kind, amounts] of Object.entries(value)) {
    if (kind !== "requests" && kind !== "limits") fail(`resources.${kind}`, "unknown field (expected requests, limits)");
    if (!isObject(amounts)) fail(`resources.${kind}`, "expected a mapping such as {cpu: 500m, memory: 1Gi}");
    const parsed: Record<string, string> = {};
    for (const [resource, amount] of Object.entries(amounts)) {
      const text = typeof amount === "number" ? String(amount) : amount;
      if (typeof text !== "string" || !QUANTITY.test(text)) fail(`resources.${kind}.${resource}`, `expected a quantity such as 500m, 2 or 1Gi, got ${JSON.stringify(amount)}`);
      if (!isLabelKey(resource)) fail(`resources.${kind}.${resource}`, "not a resource name");
      parsed[resource] = text;
    }
    out[kind] = parsed;
  }
  return out;
}

const TOLERATION_FIELDS = ["key", "operator", "value", "effect", "tolerationSeconds"];

function parseTolerations(value: unknown): Toleration[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail("tolerations", "expected a list of {key, operator, value, effect} entries, as in a pod spec");
  return value.map((item, i): Toleration => {
    const field = `tolerations[${i}]`;
    if (!isObject(item)) fail(field, "expected {key, operator, value, effect}");
    for (const key of Object.keys(item)) if (!TOLERATION_FIELDS.includes(key)) fail(`${field}.${key}`, `unknown field (expected ${TOLERATION_FIELDS.join(", ")})`);
    const toleration: Toleration = {};
    if (item.key !== undefined) {
      if (typeof item.key !== "string" || !isLabelKey(item.key)) fail(`${field}.key`, "expected a taint key");
      toleration.key = item.key;
    }
    if (item.operator !== undefined) {
      if (item.operator !== "Exists" && item.operator !== "Equal") fail(`${field}.operator`, 'expected "Exists" or "Equal"');
      toleration.operator = item.operator;
    }
    if (item.value !== undefined) {
      if (typeof item.value !== "string") fail(`${field}.value`, "expected a string");
      if (toleration.operator === "Exists" && item.value !== "") fail(`${field}.value`, 'must be empty with operator "Exists"');
      toleration.value = item.value;
    }
    if (item.effect !== undefined) {
      if (item.effect !== "NoSchedule" && item.effect !== "PreferNoSchedule" && item.effect !== "NoExecute") {
        fail(`${field}.effect`, 'expected "NoSchedule", "PreferNoSchedule" or "NoExecute"');
      }
      toleration.effect = item.effect;
    }
    if (item.tolerationSeconds !== undefined) {
      if (typeof item.tolerationSeconds !== "number" || !Number.isInteger(item.tolerationSeconds)) fail(`${field}.tolerationSeconds`, "expected a whole number");
      if (toleration.effect !== "NoExecute") fail(`${field}.tolerationSeconds`, 'only applies with effect "NoExecute"');
      toleration.tolerationSeconds = item.tolerationSeconds;
    }
    if (toleration.key === undefined && toleration.operator !== "Exists") fail(`${field}.operator`, 'a toleration without a key must have operator "Exists"');
    return toleration;
  });
}

/** Parses a block's executor_config; throws KubernetesConfigError naming the first bad field. */
export function parseKubernetesConfig(config: JsonObject): KubernetesConfig {
  // executor_config is scoped to its executor type (see resolveExecutor), so an unknown field is a typo
  for (const field of Object.keys(config)) {
    if (!KNOWN_FIELDS.has(field)) {
      if (field === "token" || field === "client_key") fail(field, "credentials do not belong in kiln.yaml: use a kubeconfig (executor_config.kubeconfig, KUBECONFIG or KILN_KUBECONFIG_DATA)");
      fail(field, `unknown field (known: ${[...KNOWN_FIELDS].join(", ")})`);
    }
  }

  const image = optionalString(config, "image");
  if (image === null) fail("image", "required: the container image holding the project and kiln");
  if (/\s/.test(image)) fail("image", `expected an image reference, got ${JSON.stringify(image)}`);

  let command = ["kiln"];
  if (config.command !== undefined && config.command !== null) {
    const value = config.command;
    if (!Array.isArray(value) || value.length === 0 || !value.every((word) => typeof word === "string" && word !== "")) {
      fail("command", 'expected a list of words, such as ["kiln"] or ["bun", "/app/cli/src/main.ts"]');
    }
    command = value as string[];
  }

  const policy = config.image_pull_policy;
  if (policy !== undefined && policy !== null && policy !== "Always" && policy !== "IfNotPresent" && policy !== "Never") {
    fail("image_pull_policy", `expected "Always", "IfNotPresent" or "Never", got ${JSON.stringify(policy)}`);
  }

  const inCluster = config.in_cluster;
  if (inCluster !== undefined && inCluster !== null && typeof inCluster !== "boolean") fail("in_cluster", "expected true or false");

  const scheduleTimeout = config.schedule_timeout;
  if (scheduleTimeout !== undefined && scheduleTimeout !== null && (typeof scheduleTimeout !== "number" || !(scheduleTimeout > 0))) {
    fail("schedule_timeout", `expected a number of seconds above 0, got ${JSON.stringify(scheduleTimeout)}`);
  }

  return {
    image,
    namespace: optionalName(config, "namespace", DNS_LABEL, "a namespace name (lower-case letters, digits, hyphens)"),
    command,
    projectRoot: optionalString(config, "project_root"),
    env: stringMap(config.env, "env", (name) => (ENV_NAME.test(name) ? null : "not a valid environment variable name")),
    ...parseEnvFromSecrets(config.env_from_secrets),
    resources: parseResources(config.resources),
    serviceAccount: optionalName(config, "service_account", DNS_SUBDOMAIN, "a ServiceAccount name"),
    nodeSelector: stringMap(config.node_selector, "node_selector", (key) => (isLabelKey(key) ? null : "not a valid label key"),
      (value) => (isLabelValue(value) ? null : "not a valid label value (up to 63 letters, digits, -, _ and ., alphanumeric at both ends)"),
    ),
    tolerations: parseTolerations(config.tolerations),
    imagePullPolicy: (policy ?? null) as KubernetesConfig["imagePullPolicy"],
    imagePullSecrets: stringList(config.image_pull_secrets, "image_pull_secrets", DNS_SUBDOMAIN, "a Secret name"),
    ttlSecondsAfterFinished: wholeNumber(config, "ttl_seconds_after_finished", 0, DEFAULT_TTL_SECONDS),
    scheduleTimeout: typeof scheduleTimeout === "number" ? scheduleTimeout : DEFAULT_SCHEDULE_TIMEOUT,
    connection: {
      kubeconfig: optionalString(config, "kubeconfig"),
      context: optionalString(config, "context"),
      inCluster: inCluster === true,
    },
  };
}

/** The executor's validateConfig: null when the config parses, else the message naming the field. */
export function validateKubernetesConfig(config: JsonObject): string | null {
  try {
    parseKubernetesConfig(config);
    return null;
  } catch (error) {
    if (error instanceof KubernetesConfigError) return error.message;
    throw error;
  }
}
