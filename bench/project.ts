/**
 * Temporary kiln projects for the benchmarks: a kiln.yaml, chain pipelines of no-op blocks
 * (block i depends on block i-1) and a fresh database, wired exactly as the CLI wires them
 * (loadUserProject + openProject from cli/src/project.ts, then a RunEngine).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RunEngine } from "@kiln/core/engine";
import { loadUserProject, openProject, type OpenProject } from "../cli/src/project.ts";

/** Every temp folder made here, removed by removeTempFolders(). */
const made: string[] = [];

/** The no-op block: returns null, which kiln stores as its (tiny) output. */
const NO_OP_BLOCK = "export default (...args) => null;\n";

export interface ChainSpec {
  uuid: string;
  blocks: number;
}

export interface ProjectSpec {
  /** executor_config {in_process: true} in kiln.yaml; otherwise a child process per block run. */
  inProcess: boolean;
  /** More of kiln.yaml's executor_config for the local executor (warm: false, reuse: N). */
  executorConfig?: Record<string, boolean | number>;
  pipelines: ChainSpec[];
}

/** The uuid of block i of a chain (zero-padded, so they sort in chain order). */
export function chainBlockUuid(i: number): string {
  return `b${String(i).padStart(3, "0")}`;
}

/** Writes a project into a new temp folder and returns its path. */
export function writeProject(name: string, spec: ProjectSpec): string {
  const root = mkdtempSync(join(tmpdir(), `kiln-bench-${name}-`));
  made.push(root);
  const settings = ["executor_type: local"];
  const config = { ...(spec.inProcess ? { in_process: true } : {}), ...spec.executorConfig };
  if (Object.keys(config).length > 0) settings.push("executor_config:", ...Object.entries(config).map(([key, value]) => `  ${key}: ${value}`));
  writeFileSync(join(root, "kiln.yaml"), `${settings.join("\n")}\n`);
  const modules = new Set<string>();
  for (const pipeline of spec.pipelines) {
    const lines = [`name: ${pipeline.uuid}`, "blocks:"];
    for (let i = 0; i < pipeline.blocks; i++) {
      const uuid = chainBlockUuid(i);
      const type = i === 0 ? "data_loader" : "transformer";
      lines.push(`  - uuid: ${uuid}`, `    type: ${type}`);
      if (i > 0) lines.push(`    upstream_blocks: [${chainBlockUuid(i - 1)}]`);
      modules.add(`${type === "data_loader" ? "data_loaders" : "transformers"}/${uuid}.js`);
    }
    mkdirSync(join(root, "pipelines", pipeline.uuid), { recursive: true });
    writeFileSync(join(root, "pipelines", pipeline.uuid, "metadata.yaml"), `${lines.join("\n")}\n`);
  }
  for (const module of modules) {
    mkdirSync(join(root, module, ".."), { recursive: true });
    writeFileSync(join(root, module), NO_OP_BLOCK);
  }
  return root;
}

export interface BenchProject extends OpenProject {
  root: string;
  engine: RunEngine;
}

/** Loads and opens a project as `kiln run` does (its database is `<root>/.kiln/kiln.db`, new). */
export async function openBenchProject(root: string): Promise<BenchProject> {
  const project = await loadUserProject(root);
  const open = await openProject(project);
  const engine = new RunEngine({ store: open.store, project, executors: open.executors, outputs: open.runtime.outputs });
  return { ...open, root, engine };
}

/** Creates a project, runs `fn` on it, and closes its database whatever happens. */
export async function withProject<T>(name: string, spec: ProjectSpec, fn: (p: BenchProject) => Promise<T>): Promise<T> {
  const p = await openBenchProject(writeProject(name, spec));
  try {
    return await fn(p);
  } finally {
    p.close();
  }
}

/** A new empty temp folder (removed by removeTempFolders()). */
export function tempFolder(name: string): string {
  const root = mkdtempSync(join(tmpdir(), `kiln-bench-${name}-`));
  made.push(root);
  return root;
}

export function removeTempFolders(): void {
  for (const root of made.splice(0)) rmSync(root, { recursive: true, force: true });
}
