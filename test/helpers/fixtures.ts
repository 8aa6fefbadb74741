/** Test fixtures: a kiln project written to a temp folder, its database, and a wired run engine. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { SqlClient } from "@kiln/core";
import {
  ExecutorRegistry,
  loadProject,
  RunEngine,
  Store,
  systemClock,
  type BlockRuntime,
  type Clock,
  type Project,
} from "@kiln/core";
import { fileLogSink, fileOutputStore, folderSource, openDatabase, pythonHost, resolvePythonInterpreter } from "@kiln/node";
import { localExecutor } from "@kiln/executor-local";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const CLI_MAIN = join(REPO_ROOT, "cli/src/main.ts");

/** Writes files (path -> content) into a new temp folder and returns its path. */
export function writeTempProject(files: Record<string, string>, prefix = "kiln-test-"): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  for (const [path, text] of Object.entries(files)) {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  return root;
}

export interface Fixture {
  root: string;
  project: Project;
  client: SqlClient;
  store: Store;
  runtime: BlockRuntime;
  engine: RunEngine;
  cleanup(): void;
}

/** A project on disk, loaded, with a fresh database and an engine using the local executor. */
export async function projectFixture(files: Record<string, string>, clock: Clock = systemClock): Promise<Fixture> {
  const root = writeTempProject(files);
  const source = folderSource(root);
  const project = await loadProject(source, { executorTypes: ["local"] });
  const url = `file:${join(root, ".kiln/kiln.db")}`;
  const client = await openDatabase(url);
  const store = await Store.open(client, clock);
  const runtime: BlockRuntime = {
    project,
    source,
    outputs: fileOutputStore(root),
    logs: fileLogSink(root),
    secrets: { get: async (name) => `secret:${name}` },
    clock,
    store,
    // Python blocks run in process groups of their own, as in a kiln server's in-process mode
    python: pythonHost({ interpreter: resolvePythonInterpreter(root, project.settings.python).path ?? "python3", ownProcessGroup: true }),
  };
  const executors = new ExecutorRegistry().register(
    localExecutor({ runtime, command: [process.execPath, CLI_MAIN], env: { KILN_DATABASE_URL: url } }),
  );
  const engine = new RunEngine({ store, project, executors, outputs: runtime.outputs, clock, pollIntervalMs: 50 });
  return {
    root,
    project,
    client,
    store,
    runtime,
    engine,
    cleanup() {
      client.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** metadata.yaml for a pipeline from a compact block list. */
export function metadata(blocks: Array<Record<string, unknown>>, extra = ""): string {
  const lines = ["blocks:"];
  for (const block of blocks) {
    const entries = Object.entries(block);
    entries.forEach(([key, value], i) => lines.push(`${i === 0 ? "  - " : "    "}${key}: ${JSON.stringify(value)}`));
  }
  return `${extra}${lines.join("\n")}\n`;
}

/** Lets pending promise callbacks and I/O run (tests wait on the engine without sleeping on time). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 1));
}

/** Polls `check` until it returns true (real time; for waiting on child processes, never for asserting durations). */
export async function until(check: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
