/**
 * The executors a project can use: the local executor, the built-in remote executors, and the
 * npm packages kiln.yaml lists under `plugins` (each default-exports an ExecutorFactory).
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Executor, type ExecutorContext, type ExecutorFactory, type JsonObject } from "@kiln/core";
import { OutputStoreSettingsError, outputStoreEnv } from "@kiln/core/output-store";
import { type OutputStoreSettings, type ProjectSettings } from "@kiln/core/project";
import { fileLogSink } from "@kiln/node";
import { UsageError } from "./errors.ts";
import { kilnEnv } from "./kiln-env.ts";

/** A built-in executor's factory, imported when a command builds executors (not by `kiln run-block` or `--help`). */
export type ExecutorFactoryLoader = () => Promise<ExecutorFactory>;

/** Built-in executors other than local, by factory loader; each remote executor package adds its own here. */
export const BUILTIN_EXECUTORS: ExecutorFactoryLoader[] = [
  async () => (await import("@kiln/executor-docker")).default,
  // the ./node entry reads kubeconfig and service-account files; the package's main entry cannot, to stay Workers-safe
  async () => (await import("@kiln/executor-kubernetes/node")).default,
  async () => (await import("@kiln/executor-ecs")).default,
  async () => {
    const { cloudRunExecutor } = await import("@kiln/executor-cloud-run");
    // the CLI reads key files (GOOGLE_APPLICATION_CREDENTIALS as a path, credentials_file); the package itself cannot, to stay Workers-safe
    return (context) => cloudRunExecutor(context, { readTextFile: (path) => readFile(path, "utf8") });
  },
];

/** The local executor's config check, for loading a project before its runtime exists. */
export { validateLocalConfig } from "@kiln/executor-local";

/** Imports a plugin package from the project's own node_modules (or kiln's), and checks it exports a factory. */
async function importPlugin(name: string, projectRoot: string): Promise<ExecutorFactory> {
  let resolved: string;
  try {
    resolved = createRequire(join(projectRoot, "kiln.yaml")).resolve(name);
  } catch {
    throw new UsageError(`kiln.yaml: plugins: cannot find the package "${name}" from ${projectRoot} (install it in the project: npm install ${name})`);
  }
  const module = (await import(pathToFileURL(resolved).href)) as { default?: unknown };
  if (typeof module.default !== "function") {
    throw new UsageError(`kiln.yaml: plugins: "${name}" does not default-export an executor factory (a function returning an Executor)`);
  }
  return module.default as ExecutorFactory;
}

/**
 * Environment every block needs wherever it runs, passed by remote executors into their
 * containers: where the database is and how to reach it, and the output store's credentials
 * (kiln.yaml holds the store's other settings, and the container has the project).
 */
export function blockEnvOf(
  databaseUrl: string,
  env: Record<string, string | undefined>,
  outputStore: OutputStoreSettings = { type: "local" },
): Record<string, string> {
  const blockEnv: Record<string, string> = { KILN_DATABASE_URL: databaseUrl };
  if (env.KILN_DATABASE_AUTH_TOKEN) blockEnv.KILN_DATABASE_AUTH_TOKEN = env.KILN_DATABASE_AUTH_TOKEN;
  try {
    Object.assign(blockEnv, outputStoreEnv(outputStore, env));
  } catch (error) {
    if (error instanceof OutputStoreSettingsError) throw new UsageError(error.message);
    throw error;
  }
  return blockEnv;
}

/**
 * Executors built for this process's environment, by what they are built from: loading a
 * project, opening it and `kiln start`'s reload every few seconds all ask for the same ones,
 * and executors are stateless adapters, so one set serves them all.
 */
const built = new Map<string, Promise<Executor[]>>();

/** Builds the built-in remote executors and the project's plugins (not the local executor, which needs the open project's runtime). */
export function buildExecutors(
  settings: ProjectSettings,
  projectRoot: string,
  databaseUrl: string,
  env: Record<string, string | undefined> = process.env,
): Promise<Executor[]> {
  if (env !== process.env) return build(settings, projectRoot, databaseUrl, env);
  const key = JSON.stringify([projectRoot, databaseUrl, settings.plugins, settings.outputStore]);
  let executors = built.get(key);
  if (!executors) {
    executors = build(settings, projectRoot, databaseUrl, env);
    built.set(key, executors);
    // a failure (a plugin not installed yet) is not kept: the next attempt tries again
    executors.catch(() => built.delete(key));
  }
  return executors;
}

async function build(
  settings: ProjectSettings,
  projectRoot: string,
  databaseUrl: string,
  env: Record<string, string | undefined>,
): Promise<Executor[]> {
  const factories = await Promise.all(BUILTIN_EXECUTORS.map((load) => load()));
  for (const name of settings.plugins) factories.push(await importPlugin(name, projectRoot));
  const executors: Executor[] = [];
  const logs = fileLogSink(projectRoot);
  // kiln's own credentials left process.env at start (kiln-env.ts); containers still need them
  const blockEnv = blockEnvOf(databaseUrl, env === process.env ? kilnEnv() : env, settings.outputStore);
  const context: ExecutorContext = { projectRoot, blockEnv, env, logs };
  for (const factory of factories) {
    const executor = await factory(context);
    if (executor.type === "local" || executors.some((e) => e.type === executor.type)) {
      throw new UsageError(`kiln.yaml: plugins: executor_type "${executor.type}" is registered twice`);
    }
    executors.push(executor);
  }
  return executors;
}
