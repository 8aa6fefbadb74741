/**
 * `kiln run-block --warm <project>`: a block process started before its block run exists. It
 * loads kiln and the project, then waits on stdin for the block run (a WarmBlockRun line, see
 * @kiln/executor-local), so a claimed block run starts without paying for the process's boot.
 * It runs one block run and exits with its code, as `kiln run-block` does; or, when kiln says
 * so (executor_config.reuse), runs the next one it is handed, with the project's modules
 * imported afresh, until its stdin ends.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { resolve, sep } from "node:path";
import type { Project, ProjectSource } from "@kiln/core/project";
import type { WarmBlockRun } from "@kiln/executor-local";
import { folderSource } from "@kiln/node/folder-source";
import { spareInterpreterPids } from "@kiln/node/python-host";
import { acceptHandoff } from "../kiln-env.ts";
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

/** The lines of stdin, one at a time; null at its end. Reading pauses between lines. */
function stdinLines(): () => Promise<string | null> {
  let buffer = "";
  let ended = false;
  const lines: string[] = [];
  const waiting: Array<(line: string | null) => void> = [];
  // Deno's stdin does not keep the event loop alive: a spare waiting for its block run would end
  // with "a promise that never settled" (exit 70). A timer holds the loop open while a line is awaited.
  let keepAlive: ReturnType<typeof setInterval> | null = null;
  const deliver = () => {
    while (waiting.length > 0 && (lines.length > 0 || ended)) waiting.shift()!(lines.shift() ?? null);
    // nothing reads between block runs: a paused stdin does not keep a block's dead promise alive
    if (waiting.length === 0) {
      process.stdin.pause();
      if (keepAlive !== null) clearInterval(keepAlive);
      keepAlive = null;
    }
  };
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
      lines.push(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
    }
    deliver();
  });
  process.stdin.on("end", () => {
    ended = true;
    if (buffer.trim() !== "") lines.push(buffer);
    buffer = "";
    deliver();
  });
  process.stdin.pause();
  return () =>
    new Promise((resolveLine) => {
      waiting.push(resolveLine);
      if (lines.length > 0 || ended) deliver();
      else {
        keepAlive ??= setInterval(() => {}, 60_000);
        process.stdin.resume();
      }
    });
}

/** Forgets the project's own modules (not its node_modules), so the next import runs them afresh. */
function forgetProjectModules(root: string): void {
  const prefix = root.endsWith(sep) ? root : `${root}${sep}`;
  for (const path of Object.keys(require.cache)) {
    if (path.startsWith(prefix) && !path.includes(`${sep}node_modules${sep}`)) delete require.cache[path];
  }
}

/**
 * Kills the processes left in this process's group (a reused worker leads its own group, which
 * kiln kills whole on cancel or timeout; between block runs only the leftovers go). Linux: the
 * group is read from /proc; elsewhere leftovers live until the worker's group is killed.
 */
function killLeftovers(): void {
  // the spare interpreter waiting for the next Python block is no leftover
  const keep = new Set([process.pid, ...spareInterpreterPids()]);
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || keep.has(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // after the parenthesised command: state, ppid, pgrp
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgrp === process.pid) process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
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
  const next = stdinLines();
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
    killLeftovers();
    python();
    process.stdout.write(`${run.boundary} ${code}\n`);
    process.stderr.write(`${run.boundary} ${code}\n`);
  }
}
