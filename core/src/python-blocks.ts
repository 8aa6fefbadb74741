/**
 * Runs a block run's Python file through the runtime's PythonHost: builds Mage's kwargs, answers
 * the file's calls into kiln, and writes what it prints to the block run's log.
 */
import { triggerPipeline, TriggerPipelineError } from "./api/trigger-pipeline.ts";
import type { PythonAddonRunner } from "./addon-runtime.ts";
import { BlockError, readBlockInputs, type BlockRuntime } from "./block-runtime.ts";
import { OutputMissingError } from "./outputs.ts";
import type { BlockContext } from "./blocks.ts";
import type { JsonObject, PipelineRun } from "./domain.ts";
import type { BlockJob } from "./executor.ts";
import { formatLogLine } from "./logs.ts";
import type { BlockConfig } from "./project/types.ts";
import type { CallbackStatus, PythonOutcome, PythonRequest } from "./python.ts";
import { blockRunVariables } from "./runtime-variables.ts";

/** A run as Python's trigger_pipeline returns it (Mage's PipelineRun fields). */
function runJson(run: PipelineRun): JsonObject {
  return {
    id: run.id,
    pipeline_uuid: run.pipelineUuid,
    pipeline_schedule_id: run.pipelineScheduleId,
    status: run.status,
    variables: run.variables,
    execution_date: new Date(run.executionDate).toISOString(),
    execution_partition: run.executionPartition,
  };
}

function str(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") throw new BlockError(`${field}: expected a non-empty string`);
  return value;
}

function num(value: unknown, field: string): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) throw new BlockError(`${field}: expected a number of seconds`);
  return value;
}

/** The kwargs of a block run: Mage's runtime variables from the job, its run and its trigger (see blockRunVariables). */
export function pythonKwargs(job: BlockJob, runtime: BlockRuntime): Promise<JsonObject> {
  return blockRunVariables(job, runtime.store, runtime.env ?? null);
}

export interface PythonRunArgs {
  job: BlockJob;
  runtime: BlockRuntime;
  /** What the file's calls need of the block run: its signal, and trigger_pipeline. */
  context: Pick<BlockContext, "signal" | "triggerPipeline">;
  /** The Python file, project-relative. */
  modulePath: string;
  mode: PythonRequest["mode"];
  blockType: string;
  inputs: unknown[];
  kwargs: JsonObject;
  pollInterval?: number;
  callbackStatus?: CallbackStatus;
}

/** Runs a Python file for a block run and answers its calls; rejects with the file's error. */
export async function runPythonFile(args: PythonRunArgs): Promise<PythonOutcome> {
  const { job, runtime, context } = args;
  const host = runtime.python;
  if (!host) {
    throw new BlockError(`${args.modulePath}: this kiln process cannot run Python blocks (no Python host; Workers run them only on a remote executor)`);
  }
  const root = runtime.project.root.replace(/\/+$/, "");
  const request: PythonRequest = {
    mode: args.mode,
    project_root: root,
    module_path: `${root}/${args.modulePath}`,
    module_relative: args.modulePath,
    block_type: args.blockType,
    block_uuid: job.blockUuid,
    pipeline_uuid: job.pipelineUuid,
    inputs: args.inputs,
    kwargs: args.kwargs,
    ...(args.pollInterval !== undefined ? { poll_interval: args.pollInterval } : {}),
    ...(args.callbackStatus !== undefined ? { callback_status: args.callbackStatus } : {}),
  };
  const log = (level: string, line: string) =>
    runtime.logs.append(job.pipelineUuid, job.executionPartition, job.blockUuid, formatLogLine(runtime.clock.now(), level, line));
  return host.run(request, {
    log,
    signal: context.signal,
    async call(method, params) {
      switch (method) {
        case "trigger_pipeline": {
          const run = await context.triggerPipeline(str(params.pipeline_uuid, "trigger_pipeline: pipeline_uuid"), {
            variables: (params.variables ?? {}) as JsonObject,
            checkStatus: params.check_status === true,
            errorOnFailure: params.error_on_failure === true,
            ...(num(params.poll_interval, "trigger_pipeline: poll_interval") !== undefined ? { pollInterval: params.poll_interval as number } : {}),
            pollTimeout: num(params.poll_timeout, "trigger_pipeline: poll_timeout") ?? null,
            ...(typeof params.schedule_name === "string" && params.schedule_name !== "" ? { scheduleName: params.schedule_name } : {}),
            // Mage's verbose prints the run's status at each check; quiet otherwise
            log: params.verbose === false ? () => {} : (message: string) => log("info", message),
          });
          return runJson(run);
        }
        case "get_secret_value":
          return runtime.secrets.get(str(params.name, "get_secret_value: name"));
        case "get_variable": {
          const partition = typeof params.partition === "string" && params.partition !== "" ? params.partition : job.executionPartition;
          return runtime.outputs.read(str(params.pipeline_uuid, "get_variable: pipeline_uuid"), partition, str(params.block_uuid, "get_variable: block_uuid"));
        }
        default:
          throw new BlockError(`the block called ${method}, which kiln does not provide`);
      }
    },
  });
}

/** A Python block run's output: its decorated function called as Mage calls it, then its @test functions. */
export async function runPythonBlock(job: BlockJob, runtime: BlockRuntime, block: BlockConfig, inputs: unknown[], context: BlockContext): Promise<unknown> {
  const outcome = await runPythonFile({
    job,
    runtime,
    context,
    modulePath: block.modulePath,
    mode: "block",
    blockType: block.type,
    inputs,
    // ctx.variables is the same object a TypeScript block gets (blockRunVariables), computed once
    kwargs: { ...context.variables },
    ...(block.type === "sensor" ? { pollInterval: block.configuration.pollInterval ?? 60 } : {}),
  });
  return outcome.output ?? null;
}

export interface PythonAddonArgs {
  /** The callback's or conditional's .py file, project-relative. */
  modulePath: string;
  mode: "callback" | "condition";
  /** For a callback: which of its functions run (Mage's @callback('success'|'failure'|'cancelled'), @on_success, @on_failure). */
  callbackStatus?: CallbackStatus;
  /** Positional arguments: for a callback its parent block's output, for a condition its parent's upstream outputs (Mage's). */
  inputs: unknown[];
  /** The parent block run's error, passed to failure callbacks as Mage's `__error` kwarg. */
  error?: string | null;
  /** The parent block's uuid, Mage's `parent_block_uuid` kwarg of add-on blocks. */
  parentBlockUuid?: string;
  signal?: AbortSignal;
}

/**
 * Runs a Mage callback or conditional block file for the block run `job` (its parent) with the
 * parent's kwargs. A condition's outcome has `condition`; a callback's, how many functions ran.
 */
export async function runPythonAddon(job: BlockJob, runtime: BlockRuntime, args: PythonAddonArgs): Promise<PythonOutcome> {
  const signal = args.signal ?? new AbortController().signal;
  const kwargs = await pythonKwargs(job, runtime);
  if (args.error != null) kwargs.__error = args.error;
  if (args.parentBlockUuid !== undefined) kwargs.parent_block_uuid = args.parentBlockUuid;
  return runPythonFile({
    job,
    runtime,
    context: {
      signal,
      triggerPipeline(pipelineUuid, options = {}) {
        if (!runtime.store) return Promise.reject(new TriggerPipelineError("trigger_pipeline: this block runtime has no database"));
        return triggerPipeline({ store: runtime.store, project: runtime.project }, pipelineUuid, { signal, ...options });
      },
    },
    modulePath: args.modulePath,
    mode: args.mode,
    blockType: args.mode === "callback" ? "callback" : "condition",
    inputs: args.inputs,
    kwargs,
    ...(args.callbackStatus !== undefined ? { callbackStatus: args.callbackStatus } : {}),
  });
}

/**
 * The engine's runner for Python callbacks and conditionals (moduleAddonRunner's `python`): a
 * conditional gets its parent's upstream outputs, a callback its parent's output (None when the
 * parent failed before storing one), as Mage passes them; on_failure gets `__error`.
 */
export const pythonAddonRunner: PythonAddonRunner = async (call, runtime) => {
  const job = call.job;
  let inputs: unknown[];
  if (call.kind === "condition") {
    inputs = await readBlockInputs(runtime, job);
  } else {
    const output = await runtime.outputs.read(job.pipelineUuid, job.executionPartition, job.blockUuid).catch((error: unknown) => {
      if (error instanceof OutputMissingError) return null;
      throw error;
    });
    inputs = [output];
  }
  const outcome = await runPythonAddon(job, runtime, {
    modulePath: call.addon.modulePath,
    mode: call.kind,
    ...(call.kind === "callback" ? { callbackStatus: call.callback === "on_failure" ? "failure" : "success" } : {}),
    inputs,
    error: call.error ?? null,
    parentBlockUuid: call.parent.uuid,
  });
  return call.kind === "condition" ? outcome.condition === true : outcome.called;
};
