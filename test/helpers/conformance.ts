/**
 * A project for the executor conformance suite (core's runExecutorConformance): one pipeline
 * with the four conformance blocks, its database, and a harness that records a pipeline run and
 * block run per job, so `kiln run-block` (in a child process, a container or a fake cloud job)
 * finds them.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { logPath, type BlockJob, type JsonObject, type OutputStore } from "@kiln/core";
import { CONFORMANCE_LOG_LINE, type ConformanceBlock, type ExecutorConformanceHarness } from "@kiln/core/conformance";
import { buildBlockJob } from "@kiln/core/engine";
import { loadProject, type Project } from "@kiln/core/project";
import { Store, type SqlClient } from "@kiln/core/store";
import { fileOutputStore, folderSource, openDatabase } from "@kiln/node";
import { writeTempProject } from "./fixtures.ts";

/** The conformance blocks' modules, by block uuid. */
export const CONFORMANCE_BLOCKS: Record<ConformanceBlock, string> = {
  succeeds: "export default function succeeds(ctx) { return { ok: true }; }\n",
  fails: 'export default function fails(ctx) { throw new Error("planned failure"); }\n',
  // long enough to cancel or re-attach to; the signal ends it early when kiln asks nicely
  sleeps: `export default async function sleeps(ctx) {
  await new Promise((resolve) => { const t = setTimeout(resolve, 300_000); ctx.signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }); });
  return { slept: true };
}
`,
  logs: `export default function logs(ctx) { ctx.logger.info(${JSON.stringify(CONFORMANCE_LOG_LINE)}); console.log(${JSON.stringify(CONFORMANCE_LOG_LINE)} + " (stdout)"); return { ok: true }; }\n`,
};

export interface ConformanceProjectOptions {
  /** kiln.yaml's executor_type: every conformance block runs on it. */
  executorType: string;
  /** kiln.yaml's `executors.<executorType>`, merged into each job's executorConfig. */
  executorConfig?: JsonObject;
  /** More kiln.yaml settings (output_store, database_url, ...). */
  settings?: JsonObject;
  /** The database the jobs are recorded in (default: a file in the project). */
  databaseUrl?: string;
  /** Where the blocks' outputs are read back from (default: the project's .variables folder). */
  outputs?: (project: Project, client: SqlClient) => OutputStore;
}

export interface ConformanceProject {
  root: string;
  project: Project;
  databaseUrl: string;
  client: SqlClient;
  store: Store;
  harness: ExecutorConformanceHarness;
  close(): void;
}

/** Writes the conformance project, opens its database, and builds the harness over them. */
export async function conformanceProject(options: ConformanceProjectOptions): Promise<ConformanceProject> {
  const kilnYaml: JsonObject = { executor_type: options.executorType, ...options.settings };
  if (options.executorConfig) kilnYaml.executors = { [options.executorType]: options.executorConfig };
  const blocks = Object.keys(CONFORMANCE_BLOCKS).map((uuid) => ({ uuid, type: "custom" }));
  const root = writeTempProject(
    {
      "kiln.yaml": stringify(kilnYaml),
      "pipelines/conformance/metadata.yaml": stringify({ blocks }),
      ...Object.fromEntries(Object.entries(CONFORMANCE_BLOCKS).map(([uuid, code]) => [`custom/${uuid}.js`, code])),
    },
    "kiln-conformance-",
  );
  const project = await loadProject(folderSource(root));
  const pipeline = project.pipelines.get("conformance");
  if (!pipeline) throw new Error("the conformance pipeline did not load");
  const databaseUrl = options.databaseUrl ?? `file:${join(root, ".kiln/kiln.db")}`;
  const client = await openDatabase(databaseUrl, { authToken: process.env.KILN_DATABASE_AUTH_TOKEN });
  const store = await Store.open(client);
  const outputs = options.outputs ? options.outputs(project, client) : fileOutputStore(root);

  const harness: ExecutorConformanceHarness = {
    async job(block: ConformanceBlock): Promise<BlockJob> {
      // a distinct execution date per job, so each has its own partition (and log, and output)
      const run = await store.createPipelineRun({ pipelineUuid: "conformance", executionDate: Date.now() + Math.floor(Math.random() * 1e9), variables: {} });
      if (!run) throw new Error("the conformance pipeline run was not created");
      const batch = store.batch();
      batch.insertBlockRuns(run.id, [block], new Map([[block, options.executorType]]));
      await store.commit(batch);
      const blockRun = (await store.getBlockRuns(run.id)).find((b) => b.blockUuid === block);
      if (!blockRun) throw new Error(`no block run for ${block}`);
      return buildBlockJob({
        project,
        pipeline,
        run,
        blockRunUuid: block,
        blockRunId: blockRun.id,
        attempt: blockRun.attempt,
        variables: {},
        partitionOf: () => run.executionPartition,
      });
    },
    output: (job) => outputs.read(job.pipelineUuid, job.executionPartition, job.blockUuid),
    async storedLog(job) {
      try {
        return readFileSync(join(root, logPath(job.pipelineUuid, job.executionPartition, job.blockUuid)), "utf8");
      } catch {
        return "";
      }
    },
  };
  return {
    root,
    project,
    databaseUrl,
    client,
    store,
    harness,
    close() {
      client.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
