/**
 * `kiln run <project> <pipeline_uuid>`: records a pipeline run in the database and executes it,
 * showing each block run's progress. Exit 0 when the run completes, 1 when it does not.
 */
import { outsideUpstreams, RunEngine } from "@kiln/core/engine";
import { createManualRun } from "@kiln/core/runs";
import { parseCommand, parseRuntimeVars } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE } from "../usage.ts";
import { plainProgress, ttyProgress } from "../progress.ts";
import { executorTypesOf, loadUserProject, openProject } from "../project.ts";

export const usage = COMMAND_USAGE["run"]!;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("run", args, {
    "runtime-vars": { type: "string" },
    "block-uuid": { type: "string", multiple: true },
    "skip-sensors": { type: "boolean" },
    "executor-type": { type: "string" },
  });
  const [projectPath, pipelineUuid, ...extra] = positionals;
  if (!projectPath || !pipelineUuid || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  // everything the user could get wrong is checked before the database is touched
  const variables = parseRuntimeVars(values["runtime-vars"]);
  const project = await loadUserProject(projectPath);
  const pipeline = project.pipelines.get(pipelineUuid);
  if (!pipeline) {
    const known = [...project.pipelines.keys()].join(", ") || "none";
    throw new UsageError(`no pipeline ${pipelineUuid} in ${projectPath} (pipelines: ${known})`);
  }
  const blockUuids = values["block-uuid"];
  for (const uuid of blockUuids ?? []) {
    if (!pipeline.blocksByUuid.has(uuid)) {
      throw new UsageError(`--block-uuid: pipeline ${pipelineUuid} has no block ${uuid} (blocks: ${[...pipeline.blocksByUuid.keys()].join(", ")})`);
    }
  }
  const executorType = values["executor-type"];
  if (executorType !== undefined) {
    const known = await executorTypesOf(project);
    if (!known.includes(executorType)) throw new UsageError(`--executor-type: unknown executor ${executorType} (known: ${known.join(", ")})`);
  }

  const open = await openProject(project);
  try {
    if (blockUuids) {
      const { missing } = await outsideUpstreams(open.store, pipeline, blockUuids);
      if (missing.length > 0) {
        throw new UsageError(`--block-uuid: upstream ${missing.join(", ")} has never completed, so there is no output to read; run the whole pipeline first`);
      }
    }
    const pipelineRun = await createManualRun(open.store, { pipelineUuid, executionDate: Date.now(), variables });
    const engine = new RunEngine({ store: open.store, project, executors: open.executors, outputs: open.runtime.outputs, logs: open.runtime.logs, addons: open.addons });
    const write = (text: string) => void process.stdout.write(text);
    const progress = process.stdout.isTTY ? ttyProgress(write) : plainProgress(write);
    write(`pipeline run ${pipelineRun.id}: ${pipelineUuid}, execution partition ${pipelineRun.executionPartition}\n`);
    const stop = () => engine.cancel(pipelineRun.id, "cancelled by the user (interrupt)");
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    const started = performance.now();
    const final = await engine.execute(pipelineRun.id, {
      blockUuids,
      skipSensors: values["skip-sensors"] ?? false,
      executorType: executorType ?? null,
      onEvent: (event) => progress.onEvent(event),
    });
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    progress.end();
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const error = typeof final.metrics.error === "string" ? `: ${final.metrics.error}` : "";
    write(`pipeline run ${final.id} ${final.status} in ${seconds} s${final.status === "completed" ? "" : error}\n`);
    write(`execution partition: ${final.executionPartition}\n`);
    return final.status === "completed" ? 0 : 1;
  } finally {
    open.close();
  }
}
