/**
 * Mage's project files as they are: the root metadata.yaml of a project `mage start` created
 * (read in place of kiln.yaml), the `{{ env_var('X') }}` templates Mage renders in its YAML,
 * and the keys of Mage's files kiln does not act on, which the loader names in one warning per
 * file (or refuses, where running without them would be wrong) so nothing is dropped silently.
 */
import type { JsonObject } from "../domain.ts";
import { isPlainObject } from "./schema.ts";

/** Mage's project file, at the project root, read when there is no kiln.yaml. */
export const MAGE_PROJECT_FILE = "metadata.yaml";

// `{{ env_var('NAME') }}` or `{{ env_var("NAME", "default") }}`, with any spacing
const ENV_VAR = /\{\{\s*env_var\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]*)\3\s*)?\)\s*\}\}/g;

/**
 * Renders Mage's `env_var()` templates in a YAML text, as Mage does when it loads its files:
 * an unset variable renders as its default, or as nothing. Other templates are left as written.
 */
export function renderEnvVars(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(ENV_VAR, (_match, _q, name: string, _q2, fallback: string | undefined) => env[name] ?? fallback ?? "");
}

/** True for a value that says nothing: null, "", an empty list or mapping. Such keys never warn. */
export function isEmptyValue(value: unknown): boolean {
  if (value === null || value === undefined || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return isPlainObject(value) && Object.keys(value).length === 0;
}

/**
 * Root metadata.yaml keys that carry no behaviour kiln lacks: identity and telemetry (kiln sends
 * none), and `project_type: standalone` (the only type kiln is).
 */
const MAGE_PROJECT_INFORMATIONAL = new Set(["project_uuid", "help_improve_mage", "project_type"]);

/** Root metadata.yaml keys with a kiln.yaml equivalent of the same shape. */
const MAGE_PROJECT_MAPPED = ["retry_config", "notification_config"] as const;

/** Mage's default variables_dir, under the home folder: `~/.mage_data`. */
const MAGE_DEFAULT_VARIABLES_DIR = "~/.mage_data";

/**
 * The folder Mage writes a project's block outputs under, resolved as Mage resolves it: the
 * `MAGE_DATA_DIR` environment variable, else metadata.yaml's `variables_dir` (a leading `~` is
 * the home folder), else `~/.mage_data`; an absolute folder other than the project's own gets
 * the project folder's name appended (two projects never share one), a relative one is taken
 * from the project folder. Null for a remote (`s3://`, `gs://`) variables_dir, which kiln's
 * local output store cannot write to.
 */
export function mageVariablesDir(
  raw: unknown,
  projectRoot: string,
  environment: Readonly<Record<string, string | undefined>>,
): string | null {
  const configured = isPlainObject(raw) && typeof raw.variables_dir === "string" && raw.variables_dir !== "" ? raw.variables_dir : null;
  const fromEnv = environment.MAGE_DATA_DIR || null;
  let dir = fromEnv ?? configured ?? MAGE_DEFAULT_VARIABLES_DIR;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dir)) return null;
  if (fromEnv === null) dir = expandHome(dir, environment.HOME);
  const root = normalizePath(projectRoot);
  if (dir.startsWith("/")) {
    const absolute = normalizePath(dir);
    return absolute === root ? root : normalizePath(`${absolute}/${baseName(root)}`);
  }
  return normalizePath(`${root}/${dir}`);
}

/** A path with a leading `~` (alone or before `/`) taken from the home folder; others as given. */
export function expandHome(path: string, home: string | undefined): string {
  if (!home || !(path === "~" || path.startsWith("~/"))) return path;
  return `${home.replace(/\/+$/, "")}${path.slice(1)}`;
}

/** A POSIX path with `.`, `..` and repeated slashes resolved (core has no path module: it runs on Workers too). */
export function normalizePath(path: string): string {
  const absolute = path.startsWith("/");
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
      else if (!absolute) parts.push(part);
    } else parts.push(part);
  }
  const joined = parts.join("/");
  return absolute ? `/${joined}` : joined || ".";
}

function baseName(path: string): string {
  const parts = path.split("/").filter((p) => p !== "");
  return parts[parts.length - 1] ?? "";
}

/**
 * Mage's environment name from its `ENV` variable, as triggers' `envs` lists match it: `test`,
 * `prod` (for `prod` or `production`), `staging`, and `dev` for anything else, unset included.
 */
export function mageEnvironment(env: string | undefined): "dev" | "prod" | "staging" | "test" {
  if (env === "test") return "test";
  if (env === "prod" || env === "production") return "prod";
  if (env === "staging") return "staging";
  return "dev";
}

/**
 * A Mage root metadata.yaml as a kiln.yaml value (what projectSettingsSchema reads), the
 * project_uuid, and the keys kiln does not act on.
 */
export function mageProjectSettings(raw: unknown): { settings: JsonObject; projectUuid: string | null; unused: string[] } {
  const settings: JsonObject = {};
  const unused: string[] = [];
  if (!isPlainObject(raw)) return { settings, projectUuid: null, unused };
  for (const key of MAGE_PROJECT_MAPPED) if (raw[key] !== undefined) settings[key] = raw[key];
  for (const [key, value] of Object.entries(raw)) {
    if ((MAGE_PROJECT_MAPPED as readonly string[]).includes(key) || isEmptyValue(value)) continue;
    // a local variables_dir is where kiln writes outputs (mageVariablesDir); a remote one is not acted on
    if (key === "variables_dir" && typeof value === "string" && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) continue;
    if (key === "project_type" && value !== "standalone") unused.push(key);
    else if (!MAGE_PROJECT_INFORMATIONAL.has(key)) unused.push(key);
  }
  const projectUuid = typeof raw.project_uuid === "string" ? raw.project_uuid : null;
  return { settings, projectUuid, unused };
}

/** kiln.yaml keys the loader acts on (projectSettingsSchema). */
export const KILN_PROJECT_KEYS = new Set([
  "database_url",
  "executor_type",
  "executor_config",
  "retry_config",
  "concurrency_config",
  "variables",
  "plugins",
  "notification_config",
  "executors",
  "output_store",
  "python",
]);

/** Pipeline metadata.yaml keys the loader acts on, and Mage's that describe without changing behaviour. */
const PIPELINE_KEYS = new Set([
  "uuid",
  "name",
  "description",
  "executor_type",
  "executor_config",
  "retry_config",
  "concurrency_config",
  "variables",
  "settings",
  "notification_config",
  "blocks",
  "callbacks",
  "conditionals",
  "type",
  "tags",
  // descriptive: Mage's UI writes them, nothing runs differently
  "created_at",
  "updated_at",
]);

/** Block keys the loader acts on, and Mage's UI state (status, colour) that changes nothing. */
const BLOCK_KEYS = new Set([
  "uuid",
  "name",
  "type",
  "upstream_blocks",
  "downstream_blocks",
  "executor_type",
  "executor_config",
  "retry_config",
  "timeout",
  "configuration",
  "language",
  "all_upstream_blocks_executed",
  "status",
  "color",
  "has_callback",
]);

/** Keys of a callback or conditional entry the loader acts on (or that change nothing). */
const ADDON_KEYS = new Set([
  "uuid",
  "name",
  "type",
  "upstream_blocks",
  "downstream_blocks",
  "language",
  "all_upstream_blocks_executed",
  "status",
  "color",
  "configuration",
  "executor_type",
  "executor_config",
]);

/** Mage pipeline types kiln runs: `python` (Mage's standard batch pipeline). */
const RUNNABLE_PIPELINE_TYPES = new Set(["python"]);

/**
 * Why kiln refuses a pipeline of this Mage `type`, or null if it runs it. Running an integration
 * or streaming pipeline as a batch DAG would do something else than the user's pipeline does.
 */
export function refusedPipelineType(type: string | null): string | null {
  if (type === null || RUNNABLE_PIPELINE_TYPES.has(type)) return null;
  const what: Record<string, string> = {
    integration: "a data integration (Singer source/destination) pipeline",
    streaming: "a streaming pipeline",
    pyspark: "a PySpark pipeline",
    databricks: "a Databricks pipeline",
  };
  return `kiln does not run ${what[type] ?? `pipelines of type "${type}"`}; it runs batch pipelines (type: python, Mage's standard pipeline) only, and running this one as a batch DAG would not do what it does in Mage`;
}

/** The keys of a pipeline's metadata.yaml (and of its blocks) that kiln does not act on. */
export function unusedPipelineKeys(raw: unknown): string[] {
  if (!isPlainObject(raw)) return [];
  const unused: string[] = [];
  for (const [key, value] of Object.entries(raw)) if (!PIPELINE_KEYS.has(key) && !isEmptyValue(value)) unused.push(key);
  const entries = (list: unknown, name: string, known: Set<string>) => {
    if (!Array.isArray(list)) return;
    list.forEach((entry, i) => {
      if (!isPlainObject(entry)) return;
      const label = typeof entry.uuid === "string" ? `${name}[${i}] (${entry.uuid})` : `${name}[${i}]`;
      for (const [key, value] of Object.entries(entry)) if (!known.has(key) && !isEmptyValue(value)) unused.push(`${label}.${key}`);
    });
  };
  entries(raw.blocks, "blocks", BLOCK_KEYS);
  entries(raw.callbacks, "callbacks", ADDON_KEYS);
  entries(raw.conditionals, "conditionals", ADDON_KEYS);
  return unused;
}

/**
 * A trigger's keys in triggers.yaml that kiln reads; `pipeline_uuid`, which Mage writes into the
 * file, is the folder's in Mage too, so it is known and never warned about.
 */
const TRIGGER_KEYS = new Set([
  "name",
  "schedule_type",
  "schedule_interval",
  "start_time",
  "timezone",
  "status",
  "variables",
  "sla",
  "settings",
  "description",
  "token",
  "envs",
  "last_enabled_at",
  "tags",
  "event_pattern",
  "event_matchers",
  "pipeline_uuid",
]);

/** The keys of a triggers.yaml's triggers (and of their `settings`) that kiln does not act on, as `triggers[i] (name).key`. */
export function unusedTriggerKeys(raw: unknown, settingKeys: ReadonlySet<string>): string[] {
  if (!isPlainObject(raw) || !Array.isArray(raw.triggers)) return [];
  const unused: string[] = [];
  raw.triggers.forEach((entry: unknown, i: number) => {
    if (!isPlainObject(entry)) return;
    const label = typeof entry.name === "string" ? `triggers[${i}] (${entry.name})` : `triggers[${i}]`;
    for (const [key, value] of Object.entries(entry)) if (!TRIGGER_KEYS.has(key) && !isEmptyValue(value)) unused.push(`${label}.${key}`);
    if (isPlainObject(entry.settings)) {
      for (const [key, value] of Object.entries(entry.settings)) if (!settingKeys.has(key) && value !== null && value !== undefined) unused.push(`${label}.settings.${key}`);
    }
  });
  return unused;
}

/** Block types Mage lists in `blocks:` but never runs (no block run): kept out of the DAG, as in Mage. */
export const NOT_RUN_BLOCK_TYPES = new Set(["scratchpad", "markdown", "chart"]);

/** The one warning line for a file's unused keys. */
export function unusedKeysWarning(file: string, keys: readonly string[]): string {
  return `${file}: kiln does not act on ${keys.join(", ")}; ${keys.length === 1 ? "it is" : "they are"} ignored`;
}
