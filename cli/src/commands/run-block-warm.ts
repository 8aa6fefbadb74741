/**
 * `kiln run-block --warm <project>`: a block process started before its block run exists. It
 * loads kiln and the project, then waits on stdin for the block run (a WarmBlockRun line, see
 * @kiln/executor-local), so a claimed block run starts without paying for the process's boot.
 * Python blocks run in these (TypeScript and JavaScript ones in the thin process of
 * block-process.ts). It runs one block run and exits with its code, as `kiln run-block` does; or, when kiln says
 * so (executor_config.reuse), runs the next one it is handed, with the project's modules
 * imported afresh, until its stdin ends.
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import type { Project, ProjectSource } from "@kiln/core/project";
import type { WarmBlockRun } from "@kiln/executor-local";
import { folderSource } from "@kiln/node/folder-source";
import { spareInterpreterPids } from "@kiln/node/python-host";
import { forgetProjectModules, killLeftovers } from "../block-reset.ts";
import { acceptHandoff } from "../kiln-env.ts";
import { stdinLines } from "../stdin-lines.ts";
import { hasPythonModules, loadUserProject, openProject, startSparePython } from "../project.ts";
import { runJob } from "./run-block.ts";

/** A project folder's source that remembers what it read, so a change since can be told cheaply. */
function trackedSource(root: string): { source: ProjectSource; changed(): boolean } {
  const inner = folderSource(root);
  const seen = new Map<string, string>();
  const stamp = (path: string) => {
    try {
      const stat = statSync(resolve(inner.root, path));
      return `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    } catch {
      return "missing";
    }
  };
  const note = (path: string) => seen.set(path, stamp(path));
  return {
    source: {
      ...inner,
      readText: async (path) => (note(path), inner.readText(path)),
      list: async (path) => (note(path), inner.list(path)),
    },
    changed: () => [...seen].some(([path, was]) => stamp(path) !== was),
  };
}

/** Runs the block runs handed on stdin; the exit code is the last one's. */
export async function warmWorker(projectPath: string): Promise<number> {
  const root = resolve(projectPath);
  let tracked = trackedSource(root);
  const load = () => loadUserProject(projectPath, { checkRemote: false, executors: false, source: tracked.source });
  // loaded now, while no block run waits; loaded again only if its files changed meanwhile
  let project: Project = await load();
  // a Python block's interpreter, with kiln's runner and pandas imported, waits too
  const python = () => hasPythonModules(project) && startSparePython(project);
  python();
  const lines = stdinLines();
  const next = () => lines.next();
  let runs = 0;
  for (;;) {
    const line = await next();
    if (line === null) return 0;
    const run = JSON.parse(line) as WarmBlockRun;
    if (run.handoff) acceptHandoff(run.handoff);
    if (tracked.changed()) {
      tracked = trackedSource(root);
      project = await load();
    }
    // a reused worker's block modules (and the project modules they import) start from scratch
    if (runs++ > 0) forgetProjectModules(root);
    const open = await openProject(project, { blockProcess: true, executors: false });
    let code: number;
    try {
      code = await runJob(run.job, open.runtime, run.resultFile);
    } finally {
      open.close();
    }
    if (run.boundary === undefined) return code;
    // the next block run starts clean: nothing this one started lives on beside it
    // the spare interpreter waiting for the next Python block is no leftover
    killLeftovers(spareInterpreterPids());
    python();
    process.stdout.write(`${run.boundary} ${code}\n`);
    process.stderr.write(`${run.boundary} ${code}\n`);
  }
}
