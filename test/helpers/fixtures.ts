/** Test fixtures: a kiln project written to a temp folder, its database, and a wired run engine. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { SqlClient } from "@kiln/core/store";
import { ExecutorRegistry, systemClock, type BlockRuntime, type Clock, type Executor } from "@kiln/core";
import { RunEngine } from "@kiln/core/engine";
import { loadProject, type Project } from "@kiln/core/project";
import { Store } from "@kiln/core/store";
import { fileLogSink, fileOutputStore, folderSource, openDatabase, pythonHost, resolvePythonInterpreter, resolveSecretKey } from "@kiln/node";
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

/**
 * IllegalTransitionError's message as it would read inside a recorded error ("... cannot move
 * from running to completed: it is completed now"): kiln's own race reaching a run or block run.
 */
const RACE_ERROR = /cannot move from \w+ to \w+/;

/** Race errors seen written through a fixture's database connections, by project root. */
const raceErrorsWritten = new Map<string, string[]>();

/**
 * Wraps a connection to a fixture's database so that any write carrying an IllegalTransitionError
 * message (a run's or block run's error, a notification about it) is noted: the fixture's
 * cleanup then fails the test. Every engine, scheduler and replica test checks this, for free.
 */
export function guardRaceErrors(client: SqlClient, root: string): SqlClient {
  const seen = raceErrorsWritten.get(root) ?? [];
  raceErrorsWritten.set(root, seen);
  const inspect = (statement: unknown, args?: unknown) => {
    const values = typeof statement === "string" ? args : (statement as { args?: unknown } | null)?.args;
    const list = Array.isArray(values) ? values : values && typeof values === "object" ? Object.values(values) : [];
    for (const value of list) if (typeof value === "string" && RACE_ERROR.test(value)) seen.push(value);
  };
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === "execute") {
        return (statement: unknown, args?: unknown) => {
          inspect(statement, args);
          return (target.execute as (...a: unknown[]) => unknown).call(target, ...(args === undefined ? [statement] : [statement, args]));
        };
      }
      if (property === "batch") {
        return (statements: unknown[], mode?: unknown) => {
          for (const statement of statements) inspect(statement);
          return (target.batch as (...a: unknown[]) => unknown).call(target, statements, ...(mode === undefined ? [] : [mode]));
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
}

/** Throws if kiln's own race was recorded as an error in the fixture's database (see guardRaceErrors). */
export function assertNoRaceErrors(root: string): void {
  const seen = raceErrorsWritten.get(root) ?? [];
  raceErrorsWritten.delete(root);
  if (seen.length > 0) {
    throw new Error(`kiln recorded its own race as an error (an IllegalTransitionError reached a run): ${seen.slice(0, 3).join(" | ")}`);
  }
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

/**
 * The secret key of a fixture's database as kiln resolves it without KILN_SECRET_KEY: the key
 * file beside the database, made on first use, so every store and process on it shares the key.
 */
export function fixtureSecretKey(root: string, url: string): () => Promise<CryptoKey> {
  return async () => {
    const source = await resolveSecretKey(root, url, undefined, { create: true });
    if (!source) throw new Error("no secret key was made for the fixture");
    return source.key;
  };
}

/** An executor a test registers beside the local one: its type, and how it is made from the fixture's runtime. */
export interface ExtraExecutor {
  type: string;
  make(runtime: BlockRuntime): Executor;
}

/** A project on disk, loaded, with a fresh database and an engine using the local executor (and `extra`, when given). */
export async function projectFixture(files: Record<string, string>, clock: Clock = systemClock, extra?: ExtraExecutor): Promise<Fixture> {
  const root = writeTempProject(files);
  const source = folderSource(root);
  const project = await loadProject(source, { executorTypes: extra ? ["local", extra.type] : ["local"] });
  const url = `file:${join(root, ".kiln/kiln.db")}`;
  const client = guardRaceErrors(await openDatabase(url), root);
  const store = await Store.open(client, clock, { secretKey: fixtureSecretKey(root, url) });
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
  if (extra) executors.register(extra.make(runtime));
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
      assertNoRaceErrors(root);
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
