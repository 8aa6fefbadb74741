/**
 * On Bun, a project's blocks get this kiln's @kiln/core for their `import ... from "@kiln/core"`
 * (see kiln-resolution.ts): a runtime plugin loads the project's modules with that specifier made
 * kiln's path (Bun's runtime plugins are not asked to resolve a module's package imports, only to
 * load it). Apart from kiln-resolution.ts, and without import.meta, so the thin block process's
 * bundle, a CommonJS file (see thin-bundle.ts), can hold it.
 */

/** The part of Bun this needs. */
export interface BunForResolution {
  fileURLToPath(url: string): string;
  mmap(path: string): Uint8Array;
  file(path: string): { size: number };
  plugin(plugin: {
    name: string;
    setup(build: { onLoad(options: { filter: RegExp }, callback: (args: { path: string }) => { contents: string; loader: string }): void }): void;
  }): void;
}

const BUN_LOADERS: Record<string, string> = { ts: "ts", mts: "ts", tsx: "tsx", js: "js", mjs: "js", jsx: "jsx" };
/** `from "@kiln/core"`, `import "@kiln/core"` and `import("@kiln/core")`, with either quote. */
const KILN_CORE_IMPORT = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])@kiln\/core\2/g;

const installed = new Set<string>();
const utf8 = new TextDecoder();

/**
 * A module's text, read with Bun's own mmap: loading node:fs costs Bun some 2.5 ms of CPU, which
 * a thin block process would pay at every boot (the callback must be synchronous: a project
 * module a block require()s is loaded through it too).
 */
function sourceText(bun: BunForResolution, path: string): string {
  // mmap refuses an empty file
  return bun.file(path).size === 0 ? "" : utf8.decode(bun.mmap(path));
}

/** Makes the blocks of the project at `projectRoot` import `corePath` for "@kiln/core" (once per project and process). */
export function installBunResolution(bun: BunForResolution, projectRoot: string, corePath: string): void {
  if (installed.has(projectRoot)) return;
  installed.add(projectRoot);
  const escaped = projectRoot.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  bun.plugin({
    name: `kiln-core:${projectRoot}`,
    setup: (build) =>
      build.onLoad({ filter: new RegExp(`^${escaped}/.*\\.(ts|mts|tsx|js|mjs|jsx)$`) }, (args) => {
        const text = sourceText(bun, args.path);
        const extension = args.path.slice(args.path.lastIndexOf(".") + 1);
        // the project's own dependencies (plugins in its node_modules) load untouched
        const contents = args.path.includes("/node_modules/") ? text : text.replace(KILN_CORE_IMPORT, (_match, lead: string, quote: string) => `${lead}${quote}${corePath}${quote}`);
        return { contents, loader: BUN_LOADERS[extension] ?? "js" };
      }),
  });
}
