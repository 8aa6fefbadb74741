/**
 * `kiln run-block <project> <pipeline_uuid> <block_uuid> --pipeline-run-id N --block-run-id M`:
 * executes one block run of a recorded pipeline run and stores its output; what executors start
 * in a child process or a container. The block run's status is the engine's to record, from
 * this process's exit code: 0 when the block returned, 1 when it threw.
 */
import { executeBlock, mergeVariables, parseBlockRunUuid, type BlockJob, type BlockRuntime } from "@kiln/core";
import { buildBlockJob, outsideUpstreams } from "@kiln/core/engine";
import { PythonBlockError } from "@kiln/core/runtime";
import { BLOCK_FAILED_MARK, RESULT_FILE_ENV, writeResult } from "@kiln/executor-local";
import { parseCommand, parseId, parseRuntimeVars } from "../args.ts";
import { UsageError } from "../errors.ts";
import { COMMAND_USAGE } from "../usage.ts";
import { receiveHandoff, scrubBlockEnvironment } from "../kiln-env.ts";
import { loadUserProject, openProject } from "../project.ts";

export const usage = COMMAND_USAGE["run-block"]!;

export async function runBlock(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand("run-block", args, {
    "pipeline-run-id": { type: "string" },
    "block-run-id": { type: "string" },
    "runtime-vars": { type: "string" },
    warm: { type: "boolean" },
  });
  if (values.warm) {
    const [projectPath, ...extra] = positionals;
    if (!projectPath || extra.length > 0) throw new UsageError(`usage: ${usage}`);
    // the warm worker's own module: only a process started as one loads it
    return (await import("./run-block-warm.ts")).warmWorker(projectPath);
  }
  const [projectPath, pipelineUuid, blockRunUuid, ...extra] = positionals;
  if (!projectPath || !pipelineUuid || !blockRunUuid || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  const pipelineRunId = parseId("--pipeline-run-id", values["pipeline-run-id"]);
  const blockRunId = parseId("--block-run-id", values["block-run-id"]);
  const runtimeVariables = parseRuntimeVars(values["runtime-vars"]);
  await receiveHandoff();
  // this process is the block run, wherever it was started: the remote-executor check is the starter's
  // nor does it start executors: only the block's own imports weigh on its start
  const project = await loadUserProject(projectPath, { checkRemote: false, executors: false });
  const pipeline = project.pipelines.get(pipelineUuid);
  if (!pipeline) throw new UsageError(`no pipeline ${pipelineUuid} in ${projectPath}`);

  const open = await openProject(project, { blockProcess: true, executors: false });
  try {
    const run = await open.store.getPipelineRun(pipelineRunId);
    if (!run || run.pipelineUuid !== pipelineUuid) throw new UsageError(`--pipeline-run-id: no run ${pipelineRunId} of pipeline ${pipelineUuid}`);
    const blockRuns = await open.store.getBlockRuns(pipelineRunId);
    const blockRun = blockRuns.find((b) => b.id === blockRunId);
    if (!blockRun || blockRun.blockUuid !== blockRunUuid) {
      throw new UsageError(`--block-run-id: run ${pipelineRunId} has no block run ${blockRunId} for ${blockRunUuid}`);
    }
    // a single-block run reads the upstreams it did not run from where they last completed
    const { partitions: elsewhere } = await outsideUpstreams(open.store, pipeline, blockRuns.map((b) => parseBlockRunUuid(b.blockUuid).block));
    const schedule = run.pipelineScheduleId === null ? null : await open.store.getPipelineSchedule(run.pipelineScheduleId);
    const job = buildBlockJob({
      project,
      pipeline,
      run,
      blockRunUuid,
      blockRunId,
      attempt: blockRun.attempt,
      variables: mergeVariables(project.settings.variables, pipeline.variables, schedule?.variables, run.variables, runtimeVariables),
      partitionOf: (upstream) => elsewhere.get(upstream) ?? run.executionPartition,
      executorType: blockRun.executorType,
      schedule,
    });
    return await runJob(job, open.runtime, process.env[RESULT_FILE_ENV]);
  } finally {
    open.close();
  }
}

/**
 * Runs a block run's job in this process and records its outcome: 0 when the block returned,
 * 1 when it threw (the error on stderr's last line, marked, and in the result file).
 */
export async function runJob(job: BlockJob, runtime: BlockRuntime, resultFile: string | undefined): Promise<number> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.once("SIGTERM", abort);
  // A block whose promise never settles while nothing else keeps the event loop alive would
  // let this process exit 0, and its run be recorded completed with no output: fail it instead
  // (before main.ts's generic guard, which would exit 70).
  const neverSettled = () => {
    process.stderr.write(`${BLOCK_FAILED_MARK}the block's promise never settled (the process had nothing left to wait for)\n`);
    process.exit(1);
  };
  process.prependOnceListener("beforeExit", neverSettled);
  // everything kiln itself needs is open or read by now: the block's code sees none of it
  scrubBlockEnvironment();
  try {
    await executeBlock(job, runtime, controller.signal);
    if (resultFile) writeResult(resultFile, { state: "completed" });
    return 0;
  } catch (error) {
    // the stack goes to the log; the parent takes the marked last line as the block run's error
    // a Python block's error is its traceback already; kiln's own stack would only bury it
    const detail = error instanceof PythonBlockError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`${detail}\n`);
    const full = error instanceof Error ? error.message : String(error);
    const message = full.replace(/\n/g, " ");
    // the result file keeps a multi-line error (a Python traceback) whole; the marked line cannot
    if (resultFile) writeResult(resultFile, { state: "failed", error: full });
    process.stderr.write(`${BLOCK_FAILED_MARK}${message}\n`);
    return 1;
  } finally {
    process.off("beforeExit", neverSettled);
    process.off("SIGTERM", abort);
  }
}
