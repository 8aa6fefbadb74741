/**
 * Loads a project through a ProjectSource: kiln.yaml, then each pipeline (sorted by uuid), its
 * metadata.yaml before its triggers.yaml. The first problem found is thrown as a
 * ProjectLoadError naming the file and field, so a user fixes one thing at a time in a stable
 * order. Block modules are only looked for here; they are imported when a block runs.
 */
import * as v from "valibot";
import { LineCounter, parseDocument } from "yaml";
import type { JsonObject } from "../domain.ts";
import { resolveExecutor } from "../engine/plan.ts";
import { TRIGGER_SETTING_KEYS } from "../schedule/settings.ts";
import { checkDag, downstreamBlocksOf, topologicalOrder } from "./dag.ts";
import { NotificationConfigError, parseNotificationConfig, unusedNotificationKeys } from "../notify/config.ts";
import { isPlainObject, pipelineSchema, projectSettingsSchema, triggersSchema, type AddonSpec, type BlockSpec } from "./schema.ts";
import {
  isEmptyValue,
  KILN_PROJECT_KEYS,
  MAGE_PROJECT_FILE,
  expandHome,
  mageEnvironment,
  mageProjectSettings,
  mageVariablesDir,
  normalizePath,
  NOT_RUN_BLOCK_TYPES,
  refusedPipelineType,
  renderEnvVars,
  unusedKeysWarning,
  unusedPipelineKeys,
  unusedTriggerKeys,
} from "./mage.ts";
import {
  ADDON_FOLDERS,
  BLOCK_TYPE_FOLDERS,
  type AddonBlock,
  type BlockConfig,
  type Pipeline,
  type Project,
  type ProjectSettings,
  type ProjectSource,
  type TriggerConfig,
} from "./types.ts";
import { messageOf } from "../errors.ts";

/** A project file that does not say what kiln expects; the message is `<file>: <field>: expected ..., got ...`. */
export class ProjectLoadError extends Error {
  override readonly name = "ProjectLoadError";

  constructor(
    /** Project-relative path of the file at fault. */
    readonly file: string,
    /** Where in the file, e.g. `blocks[1].upstream_blocks[0]`; "" for the whole file. */
    readonly field: string,
    /** What kiln expected there, e.g. "a positive integer". */
    readonly expected: string,
    /** What it found. */
    readonly got: string,
    message = `expected ${expected}, got ${got}`,
  ) {
    super(`${file}: ${field ? `${field}: ` : ""}${message}`);
  }
}

export interface LoadProjectOptions {
  /** The executor types that are registered; when given, any other executor_type is an error. */
  executorTypes?: Iterable<string>;
  /** The environment (Mage's ENV, unset meaning `dev`); triggers whose `envs` list excludes it are dropped. */
  env?: string;
  /**
   * Checks a block's effective executor_config for its executor type (the registered
   * executor's validateConfig); a message it returns fails the load, naming the block.
   */
  validateExecutorConfig?: (type: string, config: JsonObject) => string | null;
  /**
   * Environment variables for Mage's `{{ env_var('X') }}` templates (in a Mage project's YAML
   * files); without it, those templates render as their default, or as nothing.
   */
  environment?: Readonly<Record<string, string | undefined>>;
}

/** Reads, validates and links a whole project; throws the first ProjectLoadError found. */
export async function loadProject(source: ProjectSource, options: LoadProjectOptions = {}): Promise<Project> {
  const executorTypes = options.executorTypes ? new Set(options.executorTypes) : null;
  const warnings: string[] = [];
  const environment = options.environment ?? {};
  const settings = await loadSettings(source, executorTypes, environment, warnings);
  const modules = new ModuleFinder(source);
  const pipelines = new Map<string, Pipeline>();
  for (const uuid of await pipelineUuids(source)) {
    const pipeline = await loadPipeline(source, uuid, {
      executorTypes,
      env: options.env,
      environment,
      mage: settings.file === MAGE_PROJECT_FILE,
      modules,
      settings,
      validateExecutorConfig: options.validateExecutorConfig ?? null,
      warnings,
    });
    if (pipeline) pipelines.set(uuid, pipeline);
  }
  return { root: source.root, settings, pipelines, warnings };
}

/**
 * The project settings alone, validated (kiln.yaml, or a Mage project's root metadata.yaml):
 * what a caller needs (plugins, database_url) before loading the pipelines.
 */
export function loadProjectSettings(
  source: ProjectSource,
  environment: Readonly<Record<string, string | undefined>> = {},
): Promise<ProjectSettings> {
  return loadSettings(source, null, environment, []);
}

async function loadSettings(
  source: ProjectSource,
  executorTypes: Set<string> | null,
  environment: Readonly<Record<string, string | undefined>>,
  warnings: string[],
): Promise<ProjectSettings> {
  let file = "kiln.yaml";
  let text = await source.readText(file);
  let raw: unknown;
  let projectUuid: string | null = null;
  const unused: string[] = [];
  if (text === null) {
    // a project laid out by Mage: its root metadata.yaml stands for kiln.yaml
    text = await source.readText(MAGE_PROJECT_FILE);
    if (text === null) {
      throw new ProjectLoadError(
        file,
        "",
        "a kiln.yaml",
        "nothing",
        `not a kiln project: ${source.root} has no kiln.yaml (nor a Mage project's metadata.yaml)`,
      );
    }
    file = MAGE_PROJECT_FILE;
    const parsed: unknown = parseYaml(file, renderEnvVars(text, environment)) ?? {};
    const mage = mageProjectSettings(parsed);
    raw = mage.settings;
    // block outputs go where Mage writes them: its variables_dir (MAGE_DATA_DIR, ~/.mage_data)
    const variablesDir = mageVariablesDir(parsed, source.root, environment);
    if (variablesDir !== null) mage.settings.output_store = { type: "local", path: variablesDir };
    projectUuid = mage.projectUuid;
    unused.push(...mage.unused);
  } else {
    // An empty kiln.yaml is a project with every default.
    raw = parseYaml(file, text) ?? {};
    if (isPlainObject(raw)) {
      const doc = raw;
      unused.push(...Object.keys(doc).filter((key) => !KILN_PROJECT_KEYS.has(key) && !isEmptyValue(doc[key])));
    }
  }
  const validated = validate(projectSettingsSchema, raw, file);
  const settings = withOutputFolder(validated, source.root, environment);
  // Only a value written in the file is checked: the default "local" may be unused.
  if (isPlainObject(raw) && raw.executor_type != null) {
    checkExecutorType(file, "executor_type", settings.executorType, executorTypes);
  }
  checkNotificationConfig(file, settings.notificationConfig);
  // one warning per file, nested notification keys included
  unused.push(...unusedNotificationKeys(settings.notificationConfig));
  if (unused.length > 0) warnings.push(unusedKeysWarning(file, unused));
  return file === MAGE_PROJECT_FILE ? { ...settings, projectUuid, file } : settings;
}

/** The local output store's folder made absolute: `~` is the home folder, a relative path is taken from the project. */
function withOutputFolder(
  settings: ProjectSettings,
  projectRoot: string,
  environment: Readonly<Record<string, string | undefined>>,
): ProjectSettings {
  const store = settings.outputStore;
  if (store.type !== "local" || store.path === undefined) return settings;
  const path = expandHome(store.path, environment.HOME);
  const absolute = normalizePath(path.startsWith("/") ? path : `${projectRoot}/${path}`);
  return { ...settings, outputStore: { ...store, path: absolute } };
}

/** A notification_config that parses, or a ProjectLoadError naming the file and field. */
function checkNotificationConfig(file: string, raw: unknown): void {
  try {
    parseNotificationConfig(raw);
  } catch (error) {
    if (error instanceof NotificationConfigError) throw new ProjectLoadError(file, error.field, error.expected, error.got);
    throw error;
  }
}

/** Pipeline folder names, sorted so errors come in the same order on every machine. */
async function pipelineUuids(source: ProjectSource): Promise<string[]> {
  const names = await source.list("pipelines");
  return names.filter((name) => !name.startsWith(".")).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

interface PipelineContext {
  settings: ProjectSettings;
  environment: Readonly<Record<string, string | undefined>>;
  /** A Mage project: its pipelines' YAML is rendered (env_var) as Mage renders it. */
  mage: boolean;
  warnings: string[];
  validateExecutorConfig: ((type: string, config: JsonObject) => string | null) | null;
  executorTypes: Set<string> | null;
  env: string | undefined;
  modules: ModuleFinder;
}

/** One pipeline, or null if its folder entry is not a pipeline (a stray file or an empty folder). */
async function loadPipeline(source: ProjectSource, uuid: string, ctx: PipelineContext): Promise<Pipeline | null> {
  const folder = `pipelines/${uuid}`;
  const file = `${folder}/metadata.yaml`;
  const text = await source.readText(file);
  if (text === null) {
    // A folder with files but no metadata.yaml is most likely a misnamed file, not something to skip.
    const entries = await source.list(folder);
    if (entries.length === 0) return null;
    throw new ProjectLoadError(file, "", "a metadata.yaml in every pipeline folder", `only ${entries.join(", ")}`);
  }
  const raw = withoutNotRunBlocks(parseYaml(file, ctx.mage ? renderEnvVars(text, ctx.environment) : text));
  const spec = validate(pipelineSchema, raw.value, file);
  if (spec.uuid !== null && spec.uuid !== uuid) {
    throw new ProjectLoadError(file, "uuid", `the pipeline folder's name "${uuid}"`, `"${spec.uuid}"`);
  }
  const refusal = refusedPipelineType(spec.type);
  if (refusal) throw new ProjectLoadError(file, "type", "type: python (a batch pipeline)", `"${spec.type}"`, refusal);
  const unused = [...unusedPipelineKeys(raw.value), ...raw.skipped, ...unusedNotificationKeys(spec.notificationConfig)];
  if (unused.length > 0) ctx.warnings.push(unusedKeysWarning(file, unused));
  checkExecutorType(file, "executor_type", spec.executorType, ctx.executorTypes);
  checkNotificationConfig(file, spec.notificationConfig);
  for (const [i, block] of spec.blocks.entries()) {
    checkExecutorType(file, `blocks[${i}].executor_type`, block.executorType, ctx.executorTypes);
    if (ctx.validateExecutorConfig) {
      const { type, config } = resolveExecutor(ctx.settings, spec, block);
      if (ctx.executorTypes === null || ctx.executorTypes.has(type)) {
        const problem = ctx.validateExecutorConfig(type, config);
        if (problem !== null) {
          throw new ProjectLoadError(
            file,
            `blocks[${i}].executor_config`,
            `a valid ${type} executor config`,
            problem,
            `block "${block.uuid}" runs on the ${type} executor: ${problem} (executor_config merges kiln.yaml's executors.${type}, then the project's, pipeline's and block's executor_config)`,
          );
        }
      }
    }
  }
  const problem = checkDag(spec.blocks);
  if (problem) throw new ProjectLoadError(file, problem.field, problem.expected, problem.got);

  const downstream = downstreamBlocksOf(spec.blocks);
  const blocks: BlockConfig[] = [];
  for (const [i, block] of spec.blocks.entries()) {
    const modulePath = await ctx.modules.find(block, file, `blocks[${i}]`);
    blocks.push({ ...block, downstreamBlocks: downstream.get(block.uuid) ?? [], modulePath });
  }
  const sorted = topologicalOrder(blocks);
  const triggers = await loadTriggers(source, `${folder}/triggers.yaml`, ctx.env, ctx.warnings);
  const { type: _type, callbacks: callbackSpecs, conditionals: conditionalSpecs, ...rest } = spec;
  const known = new Set(spec.blocks.map((b) => b.uuid));
  const callbacks = await addonsOf(callbackSpecs, "callbacks", known, file, ctx.modules);
  const conditionals = await addonsOf(conditionalSpecs, "conditionals", known, file, ctx.modules);
  return {
    ...rest,
    uuid,
    name: spec.name ?? uuid,
    blocks: sorted,
    blocksByUuid: new Map(sorted.map((b) => [b.uuid, b])),
    triggers,
    ...(callbacks.length > 0 ? { callbacks } : {}),
    ...(conditionals.length > 0 ? { conditionals } : {}),
  };
}

/** Callback or conditional blocks with their modules, each attached to blocks the pipeline has. */
async function addonsOf(
  specs: AddonSpec[],
  field: "callbacks" | "conditionals",
  blocks: ReadonlySet<string>,
  file: string,
  modules: ModuleFinder,
): Promise<AddonBlock[]> {
  const out: AddonBlock[] = [];
  for (const [i, spec] of specs.entries()) {
    for (const [j, parent] of spec.parents.entries()) {
      if (!blocks.has(parent)) {
        throw new ProjectLoadError(file, `${field}[${i}].upstream_blocks[${j}]`, "the uuid of a block of this pipeline", `"${parent}"`);
      }
    }
    const modulePath = await modules.findIn(ADDON_FOLDERS[spec.kind], spec.uuid, file, `${field}[${i}]`);
    out.push({ ...spec, modulePath });
  }
  return out;
}

/**
 * The pipeline document without the blocks Mage lists but never runs (markdown, scratchpad,
 * chart), and a note for each one left out, for the load warning.
 */
function withoutNotRunBlocks(doc: unknown): { value: unknown; skipped: string[] } {
  if (!isPlainObject(doc) || !Array.isArray(doc.blocks)) return { value: doc, skipped: [] };
  const skipped: string[] = [];
  const blocks = doc.blocks.filter((b, i) => {
    const type = isPlainObject(b) ? b.type : undefined;
    if (typeof type !== "string" || !NOT_RUN_BLOCK_TYPES.has(type)) return true;
    const uuid = isPlainObject(b) && typeof b.uuid === "string" ? b.uuid : "";
    skipped.push(`blocks[${i}]${uuid ? ` (${uuid})` : ""}, a ${type} block (Mage does not run those either)`);
    return false;
  });
  return { value: { ...doc, blocks }, skipped };
}

async function loadTriggers(source: ProjectSource, file: string, env: string | undefined, warnings: string[]): Promise<TriggerConfig[]> {
  const text = await source.readText(file);
  if (text === null) return [];
  const raw = parseYaml(file, text) ?? {};
  const triggers = validate(triggersSchema, raw, file);
  const unused = unusedTriggerKeys(raw, TRIGGER_SETTING_KEYS);
  if (unused.length > 0) warnings.push(unusedKeysWarning(file, unused));
  const firstIndex = new Map<string, number>();
  for (const [i, trigger] of triggers.entries()) {
    const first = firstIndex.get(trigger.name);
    if (first !== undefined) {
      throw new ProjectLoadError(
        file,
        `triggers[${i}].name`,
        "unique trigger names within a pipeline",
        `"${trigger.name}" at both triggers[${first}] and triggers[${i}]`,
      );
    }
    firstIndex.set(trigger.name, i);
  }
  // Mage's behaviour: a trigger limited to some environments exists only in those; ENV unset is
  // Mage's `dev`, and `production` its `prod`
  const current = mageEnvironment(env);
  return triggers.filter((t) => t.envs.length === 0 || t.envs.includes(current));
}

/** Finds block modules, listing each block-type folder once per load. */
class ModuleFinder {
  #listings = new Map<string, Promise<Set<string>>>();

  constructor(private readonly source: ProjectSource) {}

  /** The project-relative path of the block's module (.ts, then .js, then .py). */
  find(block: BlockSpec, file: string, field: string): Promise<string> {
    return this.findIn(BLOCK_TYPE_FOLDERS[block.type], block.uuid, file, `${field}`);
  }

  /**
   * The module of `uuid` under `folder`. A uuid with '/' is one of Mage's nested folders:
   * `cleaning/fill_missing` of a transformer is transformers/cleaning/fill_missing.py.
   */
  async findIn(folder: string, uuid: string, file: string, field: string): Promise<string> {
    const slash = uuid.lastIndexOf("/");
    const dir = slash < 0 ? folder : `${folder}/${uuid.slice(0, slash)}`;
    const base = uuid.slice(slash + 1);
    let listing = this.#listings.get(dir);
    if (!listing) {
      listing = this.source.list(dir).then((names) => new Set(names));
      this.#listings.set(dir, listing);
    }
    const names = await listing;
    const candidates = MODULE_EXTENSIONS.map((ext) => `${base}${ext}`);
    const found = candidates.find((name) => names.has(name));
    if (found) return `${dir}/${found}`;
    const paths = candidates.map((name) => `${dir}/${name}`);
    throw new ProjectLoadError(file, field, `a module for block "${uuid}" at ${paths.slice(0, -1).join(", ")} or ${paths.at(-1)}`, "none exists");
  }
}

/** Block module file types, in the order they are looked for. */
const MODULE_EXTENSIONS = [".ts", ".js", ".py"];

function checkExecutorType(file: string, field: string, type: string | null, known: Set<string> | null): void {
  if (type === null || known === null || known.has(type)) return;
  const list = [...known].sort().join(", ") || "none";
  throw new ProjectLoadError(file, field, `a registered executor type (one of: ${list})`, `"${type}"`);
}

/** The YAML document's value (undefined for an empty file); a syntax error names its line. */
function parseYaml(file: string, text: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  const error = doc.errors[0];
  if (error) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    throw new ProjectLoadError(file, "", "valid YAML", `${error.message} at line ${line}, column ${col}`);
  }
  if (doc.contents === null) return undefined;
  try {
    return doc.toJS();
  } catch (e) {
    // An alias to an anchor that is not defined (before it) only fails here.
    throw new ProjectLoadError(file, "", "valid YAML", messageOf(e));
  }
}

/** The schema's output, or a ProjectLoadError for its first issue. */
function validate<S extends v.GenericSchema>(schema: S, input: unknown, file: string): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  throw new ProjectLoadError(file, fieldOf(issue.path ?? []), issue.message, describe(issue.input));
}

/** `blocks[1].upstream_blocks[0]` from valibot's issue path. */
function fieldOf(path: readonly { key: unknown }[]): string {
  return path
    .map(({ key }, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`))
    .join("");
}

/** A short rendering of a YAML value for an error message. */
function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value instanceof Date) return value.toISOString();
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Array.isArray(value) ? "a list" : "an object";
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
