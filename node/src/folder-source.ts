/** A ProjectSource over a project folder on disk (Bun, Node and Deno all provide node:fs). */
import { readdir, readFile } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { ProjectSource } from "@kiln/core/project";

/** Reads a kiln project from the folder `root` (resolved against the working directory). */
export function folderSource(root: string): ProjectSource {
  const projectRoot = resolve(root);

  // Project paths come from the project's own files; keep them from reaching outside it.
  const absolute = (path: string): string => {
    const abs = resolve(projectRoot, path);
    const rel = relative(projectRoot, abs);
    if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw new Error(`${path} is outside the project ${projectRoot}`);
    return abs;
  };

  const modules = new Map<string, Promise<unknown>>();

  return {
    root: projectRoot,

    async readText(path) {
      try {
        return await readFile(absolute(path), "utf8");
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
    },

    async list(path) {
      try {
        return await readdir(absolute(path));
      } catch (error) {
        if (isMissing(error)) return [];
        throw error;
      }
    },

    importModule(path) {
      // the runtime keeps an imported module for good, so its promise is kept too: a block
      // module is asked for on every block run, and resolving its URL again was a cost of each
      // (a failed import is not kept: a file added later is found then)
      let imported = modules.get(path);
      if (!imported) {
        imported = import(pathToFileURL(absolute(path)).href);
        modules.set(path, imported);
        imported.catch(() => {
          if (modules.get(path) === imported) modules.delete(path);
        });
      }
      return imported;
    },
  };
}

/** ENOENT, or ENOTDIR when a parent of the path is a file: either way, nothing is there. */
function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
