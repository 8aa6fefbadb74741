/**
 * The thin warm block process, bundled. Started from its sources, a spare parses some forty
 * modules before it is ready (about 15 ms of CPU on a 2-core machine, five times a bare
 * `bun -e 0`); the local executor starts one for every block run, so that boot is most of what a
 * block run costs. On Bun, kiln bundles the process's entry and @kiln/core once per kiln process
 * (Bun.build with shared chunks, so a block's `import "@kiln/core"` and the process's own
 * helpers are one module) into a temp folder removed when kiln exits, and starts the spares from
 * the bundle. Until the bundle is built, or where it cannot be (Node, Deno, a failed build: said
 * once on stderr), or with KILN_THIN_BUNDLE=0, spares start from the sources as
 * `kiln run-block --warm --thin`.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface BunBuild {
  build(options: {
    entrypoints: string[];
    outdir: string;
    target: "bun";
    format: "esm" | "cjs";
    splitting?: boolean;
    bytecode?: boolean;
    naming: string;
    sourcemap: "linked";
    minify: { whitespace: boolean; syntax: boolean; identifiers: boolean };
  }): Promise<{ success: boolean; logs: unknown[] }>;
}

const ENTRY = join(import.meta.dirname, "thin-entry.ts");
/** @kiln/core's entry as this kiln resolves it (a workspace's core/src, or an installed package's). */
const CORE = fileURLToPath(import.meta.resolve("@kiln/core"));

interface Built {
  entry: string;
  core: string;
}

/** The build, once started (it settles to null where there is no bundle), and its result once settled. */
let building: Promise<Built | null> | null = null;
let built: Built | null = null;

/** Whether a process with this pid runs (signal 0 asks without sending; EPERM: it runs as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the bundles of kiln processes that ended without removing theirs (killed with SIGKILL). */
function removeOrphanedBundles(): void {
  for (const name of readdirSync(tmpdir())) {
    const owner = /^kiln-thin-(\d+)-/.exec(name);
    if (owner && Number(owner[1]) !== process.pid && !alive(Number(owner[1]))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/**
 * Builds the bundle into a new temp folder named after this process; resolves to its entry and @kiln/core files.
 * Two builds: the thin entry as one CommonJS file with its bytecode beside it (Bun precompiles
 * only CommonJS outside a single-file executable), so a spare neither parses nor compiles it:
 * booted and through a no-op block run on 6.3 million instructions against 13.6 as an ES module
 * (callgrind; bare `bun -e 0` 3.7); and @kiln/core as ES modules for the blocks that import it.
 * The two hold separate copies of the few core modules the entry uses (block calls, logger,
 * TriggerPipelineError, whose instanceof holds across copies). Whitespace and syntax are
 * minified, names kept, so stacks and error names read as in the sources.
 */
async function build(bun: BunBuild): Promise<{ entry: string; core: string }> {
  removeOrphanedBundles();
  const outdir = mkdtempSync(join(tmpdir(), `kiln-thin-${process.pid}-`));
  process.once("exit", () => rmSync(outdir, { recursive: true, force: true }));
  const minify = { whitespace: true, syntax: true, identifiers: false };
  const common = { target: "bun", naming: "[name].[ext]", sourcemap: "linked", minify } as const;
  const [entry, core] = await Promise.all([
    bun.build({ ...common, entrypoints: [ENTRY], outdir, format: "cjs", bytecode: true }),
    bun.build({ ...common, entrypoints: [CORE], outdir: join(outdir, "core"), format: "esm", splitting: true }),
  ]);
  for (const result of [entry, core]) if (!result.success) throw new Error(result.logs.map(String).join("; "));
  return { entry: join(outdir, "thin-entry.js"), core: join(outdir, "core", "index.js") };
}

/** Starts the build the first time it is asked for; settles to the bundle, or null where there is none. */
function startBuild(): Promise<Built | null> {
  building ??= (async () => {
    const { Bun } = globalThis as { Bun?: BunBuild };
    if (!Bun) return null;
    try {
      built = await build(Bun);
      return built;
    } catch (error) {
      process.stderr.write(`kiln: warning: the thin block process could not be bundled (${error instanceof Error ? error.message : String(error)}); spares start from kiln's sources, some 10 ms of CPU slower each\n`);
      return null;
    }
  })();
  return building;
}

/**
 * The command that starts a thin block process for `projectRoot` from the bundle, or null while
 * there is none (the first call starts building it, in the background).
 */
export function thinBlockProcessCommand(projectRoot: string): string[] | null {
  void startBuild();
  // `run-block --warm --thin` in its arguments, as when started from the sources: what ps shows
  return built ? [process.execPath, built.entry, "run-block", "--warm", "--thin", projectRoot, "--core", built.core] : null;
}

/** Resolves once the bundle is built (true) or known to be unavailable (false); tests and benchmarks wait for it. */
export async function thinBundleSettled(): Promise<boolean> {
  return (await startBuild()) !== null;
}
