/**
 * A user's project as the Worker sees it: a Worker cannot read a folder at run time, so
 * `kiln build worker` turns the project's YAML files into strings and its block modules into
 * static imports, and this module serves them to core's loader as a ProjectSource.
 */
import type { ExecutorFactory } from "@kiln/core";
import type { ProjectSource } from "@kiln/core/project";

/** What `kiln build worker` generates: the project's files by project-relative path. */
export interface ProjectBundle {
  /** The project's name (its folder's), shown where a local project shows its path. */
  root: string;
  /** kiln.yaml and each pipeline's metadata.yaml and triggers.yaml, as text. */
  files: Readonly<Record<string, string>>;
  /** Each block module, imported at build time: `data_loaders/load_orders.ts` -> its namespace. */
  modules: Readonly<Record<string, unknown>>;
  /**
   * The remote executors the project's blocks name (ecs, cloud_run, k8s), imported at build
   * time only when named, so a project that runs every block in the Worker bundles none of them.
   */
  executors?: Readonly<Record<string, ExecutorFactory>>;
}

/** A ProjectSource over a bundle: folders are the prefixes of the bundled paths. */
export function moduleMapSource(bundle: ProjectBundle): ProjectSource {
  const paths = [...Object.keys(bundle.files), ...Object.keys(bundle.modules)];
  return {
    root: bundle.root,
    async readText(path) {
      return bundle.files[path] ?? null;
    },
    async list(path) {
      const prefix = path === "" || path === "." ? "" : `${path.replace(/\/+$/, "")}/`;
      const names = new Set<string>();
      for (const p of paths) if (p.startsWith(prefix)) names.add(p.slice(prefix.length).split("/")[0] as string);
      return [...names];
    },
    async importModule(path) {
      if (!(path in bundle.modules)) {
        throw new Error(`${path} is not in this Worker's bundle: run kiln build worker again after adding a block`);
      }
      return bundle.modules[path];
    },
  };
}
