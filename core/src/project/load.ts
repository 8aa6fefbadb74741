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
import { checkDag, downstreamBlocksOf, topologicalOrder } from "./dag.ts";
import { NotificationConfigError, parseNotificationConfig } from "../notify/config.ts";
import { isPlainObject, pipelineSchema, projectSettingsSchema, triggersSchema, type BlockSpec } from "./schema.ts";
import {
  BLOCK_TYPE_FOLDERS,
  type BlockConfig,
  type Pipeline,
  type Project,
  type ProjectSettings,
  type ProjectSource,
  type TriggerConfig,
} from "./types.ts";

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
  /** The environment (Mage's ENV); triggers whose `envs` list excludes it are dropped. */
  env?: string;
  /**
   * Checks a block's effective executor_config for its executor type (the registered
   * executor's validateConfig); a message it returns fails the load, naming the block.
   */
  validateExecutorConfig?: (type: string, config: JsonObject) => string | null;
}

/** Reads, validates and links a whole project; throws the first ProjectLoadError found. */
export async function loadProject(source: ProjectSource, options: LoadProjectOptions = {}): Promise<Project> {
  const executorTypes = options.executorTypes ? new Set(options.executorTypes) : null;
  const settings = await loadSettings(source, executorTypes);
  const modules = new ModuleFinder(source);
  const pipelines = new Map<string, Pipeline>();
  for (const uuid of await pipelineUuids(source)) {
    const pipeline = await loadPipeline(source, uuid, {
      executorTypes,
      env: options.env,
      modules,
      settings,
      validateExecutorConfig: options.validateExecutorConfig ?? null,
    });
    if (pipeline) pipelines.set(uuid, pipeline);
  }
  return { root: source.root, settings, pipelines };
}

/** kiln.yaml alone, validated: what a caller needs (plugins, database_url) before loading the pipelines. */
export function loadProjectSettings(source: ProjectSource): Promise<ProjectSettings> {
  return loadSettings(source, null);
}

async function loadSettings(source: ProjectSource, executorTypes: Set<string> | null): Promise<ProjectSettings> {
  const file = "kiln.yaml";
  const text = await source.readText(file);
  if (text === null) {
    throw new ProjectLoadError(file, "", "a kiln.yaml", "nothing", `not a kiln project: ${source.root} has no kiln.yaml`);
  }
  // An empty kiln.yaml is a project with every default.
  const raw = parseYaml(file, text) ?? {};
  const settings = validate(projectSettingsSchema, raw, file);
  // Only a value written in the file is checked: the default "local" may be unused.
  if (isPlainObject(raw) && raw.executor_type != null) {
    checkExecutorType(file, "executor_type", settings.executorType, executorTypes);
  }
  checkNotificationConfig(file, settings.notificationConfig);
  return settings;
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
  const spec = validate(pipelineSchema, parseYaml(file, text), file);
  if (spec.uuid !== null && spec.uuid !== uuid) {
    throw new ProjectLoadError(file, "uuid", `the pipeline folder's name "${uuid}"`, `"${spec.uuid}"`);
  }
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
  const triggers = await loadTriggers(source, `${folder}/triggers.yaml`, ctx.env);
  return {
    ...spec,
    uuid,
    name: spec.name ?? uuid,
    blocks: sorted,
    blocksByUuid: new Map(sorted.map((b) => [b.uuid, b])),
    triggers,
  };
}

async function loadTriggers(source: ProjectSource, file: string, env: string | undefined): Promise<TriggerConfig[]> {
  const text = await source.readText(file);
  if (text === null) return [];
  const triggers = validate(triggersSchema, parseYaml(file, text) ?? {}, file);
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
  // Mage's behaviour: a trigger limited to some environments exists only in those.
  return env === undefined ? triggers : triggers.filter((t) => t.envs.length === 0 || t.envs.includes(env));
}

/** Finds block modules, listing each block-type folder once per load. */
class ModuleFinder {
  #listings = new Map<string, Promise<Set<string>>>();

  constructor(private readonly source: ProjectSource) {}

  /** The project-relative path of the block's module (.ts preferred over .js, then Mage's .py). */
  async find(block: BlockSpec, file: string, field: string): Promise<string> {
    const folder = BLOCK_TYPE_FOLDERS[block.type];
    let listing = this.#listings.get(folder);
    if (!listing) {
      listing = this.source.list(folder).then((names) => new Set(names));
      this.#listings.set(folder, listing);
    }
    const names = await listing;
    const candidates = [`${block.uuid}.ts`, `${block.uuid}.js`, `${block.uuid}.py`];
    const found = candidates.find((name) => names.has(name));
    if (found) return `${folder}/${found}`;
    const [ts, js, py] = candidates.map((name) => `${folder}/${name}`);
    throw new ProjectLoadError(file, field, `a module for block "${block.uuid}" at ${ts}, ${js} or ${py}`, "none exists");
  }
}

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
    throw new ProjectLoadError(file, "", "valid YAML", e instanceof Error ? e.message : String(e));
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
