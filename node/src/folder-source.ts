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
      return import(pathToFileURL(absolute(path)).href);
    },
  };
}

/** ENOENT, or ENOTDIR when a parent of the path is a file: either way, nothing is there. */
function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
