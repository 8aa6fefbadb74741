/** Opening a user's project for a command: load and validate it, then open its database. */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { ExecutorRegistry, type BlockRuntime, type BlockSecrets, type OutputStore, type LogSink } from "@kiln/core";
import { resolveExecutor, type AddonRunner } from "@kiln/core/engine";
import { openOutputStore, OutputStoreSettingsError } from "@kiln/core/output-store";
import { loadProject, loadProjectSettings, ProjectLoadError, remoteExecutionProblem, type Project, type ProjectSource } from "@kiln/core/project";
import { isPythonModule, SecretMask, maskingExecutor, maskingLogSink, moduleAddonRunner, pythonAddonRunner } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import {
  databaseUrl,
  fileLogSink,
  fileOutputStore,
  folderSource,
  missingPythonMessage,
  openDatabase,
  resolveSecretKey,
  pythonHost,
  resolvePythonInterpreter,
  startSpareInterpreter,
  secretKeyFile,
} from "@kiln/node";
import { localExecutor } from "@kiln/executor-local";
import { UsageError } from "./errors.ts";
import { maskProcessOutput, unmaskProcessOutput } from "./masked-output.ts";
import { handoffFor, KILN_SECRET_VARIABLES, kilnEnv, kilnSecret } from "./kiln-env.ts";
import { buildExecutors, validateLocalConfig } from "./executors.ts";
import { kilnCommand, resolveKilnForBlocks } from "./kiln-resolution.ts";
import { thinBlockProcessCommand } from "./thin-bundle.ts";
import { projectSecretKey } from "./project-key.ts";

/**
 * The command that runs this CLI again, for child processes (`kiln run-block`): the same runtime
 * (see kilnCommand).
 */
export const KILN_COMMAND = kilnCommand();

/**
 * Loads and validates a project, turning every problem into a UsageError. `checkRemote: false`
 * skips the check that remote executors can reach the database and outputs: for `kiln run-block`,
 * which runs on the remote side, where opening the database is the real test (a container with
 * the project mounted reaches its file: database). `executors: false` does not build the remote
 * executors (nor import their packages) and leaves executor types and configs unchecked: for
 * `kiln run-block`, whose block run was started by an executor the starter checked.
 */
export async function loadUserProject(
  path: string,
  { checkRemote = true, executors = true, source: given }: { checkRemote?: boolean; executors?: boolean; source?: ProjectSource } = {},
): Promise<Project> {
  const root = resolve(path);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UsageError(`no project at ${path}: not a folder`);
  // the project's blocks import "@kiln/core" from wherever the project is: it is this kiln
  resolveKilnForBlocks(root);
  const source = given ?? folderSource(root);
  try {
    const settings = await loadProjectSettings(source, process.env);
    const url = databaseUrl(root, settings.databaseUrl, kilnEnv());
    const remote = executors ? await buildExecutors(settings, root, url) : [];
    const byType = new Map(remote.map((e) => [e.type, e]));
    const project = await loadProject(source, {
      ...(executors ? { executorTypes: ["local", ...byType.keys()] } : {}),
      env: process.env.ENV,
      environment: process.env,
      validateExecutorConfig: (type, config) =>
        type === "local" ? validateLocalConfig(config) : (byType.get(type)?.validateConfig?.(config) ?? null),
    });
    const problem = checkRemote ? remoteExecutionProblem(project, url, (type) => byType.get(type)?.remote === true) : null;
    if (problem) throw new UsageError(problem);
    // Python blocks on a remote executor run with the container's interpreter, checked there
    const pythonProblem = missingPythonProblem(project, (type) => checkRemote && byType.get(type)?.remote === true);
    if (pythonProblem) throw new UsageError(pythonProblem);
    // settings kiln does not act on (Mage's spark_config, widgets, ...) are named, never dropped silently
    for (const warning of project.warnings ?? []) process.stderr.write(`kiln: warning: ${warning}\n`);
    return project;
  } catch (error) {
    if (error instanceof ProjectLoadError) throw new UsageError(error.message);
    throw error;
  }
}

/** A message naming the Python blocks that would run here when the interpreter for them is missing, or null. */
function missingPythonProblem(project: Project, isRemote: (type: string) => boolean): string | null {
  const blocks: string[] = [];
  for (const pipeline of project.pipelines.values()) {
    for (const block of pipeline.blocks) {
      if (isPythonModule(block.modulePath) && !isRemote(resolveExecutor(project.settings, pipeline, block).type)) blocks.push(`${pipeline.uuid}/${block.uuid} (${block.modulePath})`);
    }
    // callbacks and conditionals run beside the engine, on this machine, whatever their block's executor
    for (const addon of [...(pipeline.callbacks ?? []), ...(pipeline.conditionals ?? [])]) {
      if (isPythonModule(addon.modulePath)) blocks.push(`${pipeline.uuid}/${addon.uuid} (${addon.modulePath}, a ${addon.kind})`);
    }
  }
  if (blocks.length === 0) return null;
  const interpreter = resolvePythonInterpreter(project.root, project.settings.python);
  return interpreter.path === null ? missingPythonMessage(interpreter, blocks) : null;
}

/** Whether any block, callback or conditional of the project is a Python file. */
export function hasPythonModules(project: Project): boolean {
  for (const pipeline of project.pipelines.values()) {
    for (const module of [...pipeline.blocks, ...(pipeline.callbacks ?? []), ...(pipeline.conditionals ?? [])]) if (isPythonModule(module.modulePath)) return true;
  }
  return false;
}

/** The interpreter for a project's Python blocks and a spare of it, started ahead in `root` (a warm block process's). */
export function startSparePython(project: Project): void {
  startSpareInterpreter({ interpreter: pythonInterpreterCommand(project), ownProcessGroup: false }, project.root);
}

/** The interpreter command for a project's Python blocks (the name asked for when none is found: starting it then fails, saying so). */
function pythonInterpreterCommand(project: Project): string {
  const interpreter = resolvePythonInterpreter(project.root, project.settings.python);
  return interpreter.path ?? interpreter.requested;
}

/** The executor types a loaded project can use: local, the built-in remote executors, its plugins. */
export async function executorTypesOf(project: Project): Promise<string[]> {
  const remote = await buildExecutors(project.settings, project.root, databaseUrl(project.root, project.settings.databaseUrl, kilnEnv()));
  return ["local", ...remote.map((e) => e.type)];
}

/** Block logs as lines on stdout, for a block run whose files vanish with its container. */
const stdoutLogSink: LogSink = { append: (_pipelineUuid, _partition, _blockUuid, text) => void process.stdout.write(text) };

export interface OpenProject {
  project: Project;
  store: Store;
  databaseUrl: string;
  executors: ExecutorRegistry;
  runtime: BlockRuntime;
  /** Runs Mage's callback and conditional blocks for the run engine. */
  addons: AddonRunner;
  close(): void;
}

export interface OpenProjectOptions {
  /**
   * This process is one block run (`kiln run-block`): a Python block's interpreter stays in this
   * process's group, which its executor kills whole. Otherwise each interpreter gets a group of its own.
   */
  blockProcess?: boolean;
  /**
   * false: the local executor starts thin block processes from kiln's sources, never from its
   * bundle (cli/src/thin-bundle.ts). Default: the bundle where it can be built, unless KILN_THIN_BUNDLE=0.
   */
  thinBundle?: boolean;
  /** false: register only the local executor (`kiln run-block` runs its block in this process), importing no remote executor. */
  executors?: boolean;
}

/** The local folder store: under the project, or under kiln.yaml's output_store.path / Mage's variables_dir. */
function localOutputStore(project: Project): OutputStore {
  const settings = project.settings.outputStore;
  return fileOutputStore(project.root, settings.type === "local" ? settings.path : undefined);
}

/** How often the secret mask re-reads the database's secrets (ms). */
const MASK_REFRESH_MS = 5000;

/** Opens a loaded project's database and wires its executors and block runtime. */
export async function openProject(project: Project, options: OpenProjectOptions = {}): Promise<OpenProject> {
  const url = databaseUrl(project.root, project.settings.databaseUrl, kilnEnv());
  const client = await openDatabase(url, { authToken: kilnSecret("KILN_DATABASE_AUTH_TOKEN") });
  const store = await Store.open(client);
  let outputs: OutputStore;
  try {
    outputs = openOutputStore(project.settings.outputStore, { client, env: kilnEnv(), clock: store.clock, local: () => localOutputStore(project) });
  } catch (error) {
    client.close();
    if (error instanceof OutputStoreSettingsError) throw new UsageError(error.message);
    throw error;
  }
  const source = folderSource(project.root);
  // trigger tokens are sealed under the database's key, resolved (the key file made) only when a
  // token is written or shown: a block's process never needs it
  store.useSecretKey(async () => {
    const resolved = await projectSecretKey(project.root, url, store, { create: true });
    if (!resolved) throw new Error("no secret key was resolved although one was to be created");
    return resolved.key;
  });
  let key: Promise<CryptoKey | null> | null = null;
  const secrets: BlockSecrets = {
    async get(name) {
      key ??= resolveSecretKey(project.root, url, kilnSecret("KILN_SECRET_KEY"), { create: false }).then((s) => s?.key ?? null);
      const secretKey = await key.catch((error: unknown) => {
        key = null;
        throw error;
      });
      if (!secretKey) throw new Error(`cannot read secret ${name}: KILN_SECRET_KEY is not set and there is no key file ${secretKeyFile(project.root, url)}`);
      const value = await store.getSecret(secretKey, name);
      if (value === null) throw new Error(`no secret named ${name}`);
      mask.add(value);
      return value;
    },
  };
  // every secret a block could read is masked in what is recorded of its runs, read now and
  // every few seconds (a secret added through the API while kiln runs)
  const mask = new SecretMask();
  const refreshMask = async () => {
    try {
      key ??= resolveSecretKey(project.root, url, kilnSecret("KILN_SECRET_KEY"), { create: false }).then((s) => s?.key ?? null);
      const secretKey = await key;
      if (!secretKey) return;
      const names = await store.listSecretNames();
      const values = await Promise.all(names.map((name) => store.getSecret(secretKey, name).catch(() => null)));
      mask.set(values.filter((v): v is string => v !== null));
    } catch {
      // an unreadable key: blocks cannot read secrets either, and the start says why
    }
  };
  await refreshMask();
  maskProcessOutput(mask);
  const maskTimer = setInterval(() => void refreshMask(), MASK_REFRESH_MS);
  (maskTimer as { unref?: () => void }).unref?.();
  const runtime: BlockRuntime = {
    project,
    source,
    outputs,
    // a block run in a container writes its log to stdout, which its executor reads back
    logs: maskingLogSink(process.env.KILN_BLOCK_LOGS === "stdout" ? stdoutLogSink : fileLogSink(project.root), mask),
    secrets,
    clock: store.clock,
    store,
    python: pythonHost({
      interpreter: pythonInterpreterCommand(project),
      ownProcessGroup: options.blockProcess !== true,
      // a long-lived kiln keeps an interpreter ready for the next Python block, callback or
      // conditional; a block process runs one block run (a warm one starts its spare itself)
      warm: options.blockProcess !== true && hasPythonModules(project),
    }),
    ...(process.env.ENV ? { env: process.env.ENV } : {}),
  };
  const bundled = options.thinBundle ?? process.env.KILN_THIN_BUNDLE !== "0";
  const local = localExecutor({ runtime, command: KILN_COMMAND, ...(bundled ? { thinCommand: thinBlockProcessCommand } : {}), withhold: KILN_SECRET_VARIABLES, handoff: () => handoffFor({ databaseUrl: url }) });
  const executors = new ExecutorRegistry().register(maskingExecutor(local, mask));
  if (options.executors !== false) for (const executor of await buildExecutors(project.settings, project.root, url)) executors.register(maskingExecutor(executor, mask));
  // Mage's callbacks and conditionals run in this process, with the blocks' runtime
  const addons = moduleAddonRunner(runtime, pythonAddonRunner);
  return {
    project,
    store,
    databaseUrl: url,
    executors,
    runtime,
    addons,
    close: () => {
      clearInterval(maskTimer);
      // a warm worker opens the project once per block run: the masks must not pile up
      unmaskProcessOutput(mask);
      // nothing will be handed to this project's spare processes any more
      local.retireSpares();
      client.close();
    },
  };
}

/** Opens the project named by --project; problems with it are usage errors naming the flag. */
export async function openProjectFlag(command: string, projectPath: string | undefined, positionals: string[]): Promise<OpenProject> {
  if (positionals.length > 0) throw new UsageError(`kiln ${command}: unexpected argument ${positionals[0]} (the project is given with --project P)`);
  if (!projectPath) throw new UsageError("--project: required (the project folder)");
  try {
    return await openProject(await loadUserProject(projectPath));
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`--project: ${error.message}`);
    throw error;
  }
}
