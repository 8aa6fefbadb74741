/**
 * Projects anywhere: a block's `import ... from "@kiln/core"` resolves to the kiln that runs it,
 * though the project has no node_modules of its own. Node gets a module.register resolve hook,
 * Deno the import map its launcher passes (cli/bin/kiln-deno), Bun a runtime plugin that loads
 * the project's modules with that specifier made kiln's path (Bun's runtime plugins are not
 * asked to resolve a module's package imports, only to load it; NODE_PATH counts only at start);
 * `kilnCommand` starts kiln again (for `kiln run-block` children) the same way.
 */
import type { register as Register } from "node:module";
import { runtimeCommand } from "@kiln/node/serve";
import { installBunResolution, type BunForResolution } from "./bun-resolution.ts";

// the cli folder, without node:path: a thin block process started from the sources loads this
// module, and loading node:path costs Bun about 1 ms of CPU (this module's folder is cli/src)
const CLI = import.meta.dirname.slice(0, import.meta.dirname.lastIndexOf("/"));
const MAIN = `${CLI}/src/main.ts`;
/** The import map `kiln-deno` passes to Deno. */
export const DENO_IMPORT_MAP = `${CLI}/import-map.json`;
/** The Node launcher: registers tsx, then runs main.ts. */
export const NODE_LAUNCHER = `${CLI}/bin/kiln-node.mjs`;

interface DenoGlobal {
  execPath(): string;
}

const roots = new Set<string>();

/**
 * Installs, for the project at `projectRoot`, the resolution of "@kiln/core" for its blocks (once
 * per project and process): to `core`, a file URL, this kiln's @kiln/core unless told another.
 */
export function resolveKilnForBlocks(projectRoot: string, core: string = import.meta.resolve("@kiln/core")): void {
  const first = roots.size === 0;
  if (roots.has(projectRoot)) return;
  roots.add(projectRoot);
  const { Bun, Deno } = globalThis as { Bun?: BunForResolution; Deno?: DenoGlobal };
  if (Bun) {
    installBunResolution(Bun, projectRoot, Bun.fileURLToPath(core));
  } else if (!Deno && first) {
    // node:module only where it is used: every block process loads this module
    const { register } = (process as unknown as { getBuiltinModule(id: "node:module"): { register: typeof Register } }).getBuiltinModule("node:module");
    register(new URL("./node-resolve-hook.mjs", import.meta.url), { data: { core } });
  }
}

/** The command that runs this kiln again on this runtime, for child processes such as `kiln run-block`. */
export function kilnCommand(): string[] {
  const { Deno } = globalThis as { Deno?: DenoGlobal };
  if (Deno) return [Deno.execPath(), "run", "-A", "--import-map", DENO_IMPORT_MAP, MAIN];
  // Node started without tsx's flag (by kiln-node): the child needs the launcher too
  if (!("Bun" in globalThis) && !process.execArgv.some((flag) => flag.includes("tsx"))) return [process.execPath, ...process.execArgv, NODE_LAUNCHER];
  return runtimeCommand(MAIN);
}
