/**
 * The k8s executor for runtimes with files (Bun, Deno, Node): kubeconfig paths, KUBECONFIG,
 * ~/.kube/config and the in-cluster service account's token and CA are read from disk. The only
 * module of the package that imports node:*, so the main entry stays loadable on Workers.
 */
import { readFile as readFileAsync } from "node:fs/promises";
import type { Executor, ExecutorContext } from "@kiln/core";
import { kubernetesExecutor } from "./index.ts";
import type { ReadFile } from "./connection.ts";

/** Reads a UTF-8 file; null when it does not exist. */
export const readTextFile: ReadFile = async (path) => {
  try {
    return await readFileAsync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
};

/** The executor factory the kiln CLI registers: reads kubeconfig and service-account files. */
export default function kubernetesExecutorFactory(context: ExecutorContext): Executor {
  return kubernetesExecutor({ context, readFile: readTextFile });
}
