/**
 * Runs one block run's code: imports the block's module, reads its inputs, calls it with its
 * context, polls sensors, and stores the output. Used in-process by the local executor and by
 * `kiln run-block` inside a child process or a container.
 */
import { BlockError, blockCallSpec, blockFunction, callBlock, checkBlockOutput, jobContext } from "./block-call.ts";
import type { BlockContext, BlockSecrets } from "./blocks.ts";
import type { Clock } from "./clock.ts";
import { parseBlockRunUuid, type JsonObject } from "./domain.ts";
import type { BlockJob, InputRef } from "./executor.ts";
import { createBlockLogger, type LogSink } from "./logs.ts";
import { encodeBlockOutput, inlineOutputOf, type InlineOutput, type OutputStore } from "./outputs.ts";
import type { Project, ProjectSource } from "./project/types.ts";
import { isPythonModule, type PythonHost } from "./python.ts";
import type { Store } from "./store/index.ts";

export { BlockError } from "./block-call.ts";

export interface BlockRuntime {
  project: Project;
  source: ProjectSource;
  outputs: OutputStore;
  logs: LogSink;
  secrets: BlockSecrets;
  clock: Clock;
  /** The project's database, for ctx.triggerPipeline; without it, that call fails. */
  store?: Store;
  /** Runs Python block files; without it, a .py block fails saying so (e.g. on Workers). */
  python?: PythonHost;
  /** Mage's ENV for the runtime variables (`env` kwarg); "prod" when unset. */
  env?: string;
  /**
   * Why this process may not record results now (it may have been presumed dead, e.g. frozen
   * past the orphan window, and its runs taken over), or null: an in-process block's output is
   * then not stored, so a zombie attempt never overwrites the one its run's new owner records.
   */
  fence?: () => string | null;
}

async function readInput(runtime: BlockRuntime, pipelineUuid: string, ref: InputRef): Promise<unknown> {
  // an output the run's engine committed as a row, handed over with the job, is that row's text
  const value = ref.json !== undefined ? (JSON.parse(ref.json) as unknown) : await runtime.outputs.read(pipelineUuid, ref.partition, ref.blockUuid);
  if (!("item" in ref)) return value;
  if (!Array.isArray(value)) throw new BlockError(`dynamic block ${ref.blockUuid} did not store a list`);
  return value[ref.item];
}

/** A job's inputs: its upstream blocks' outputs, in upstream_blocks order. */
export function readBlockInputs(runtime: BlockRuntime, job: BlockJob): Promise<unknown[]> {
  return Promise.all(job.inputs.map((ref) => readInput(runtime, job.pipelineUuid, ref)));
}

/** The context a block (or an add-on of it, see addon-runtime.ts) is called with for `job`, with `variables` as given. */
export function blockContextOf(job: BlockJob, runtime: BlockRuntime, variables: JsonObject, signal: AbortSignal): BlockContext {
  const logger = createBlockLogger(runtime.logs, () => runtime.clock.now(), {
    pipelineUuid: job.pipelineUuid,
    partition: job.executionPartition,
    blockUuid: job.blockUuid,
  });
  return {
    ...jobContext(job, variables),
    secrets: runtime.secrets,
    logger,
    signal,
    async triggerPipeline(pipelineUuid, options = {}) {
      const { triggerPipeline, TriggerPipelineError } = await import("./api/trigger-pipeline.ts");
      const store = runtime.store;
      if (!store) {
        throw new TriggerPipelineError("ctx.triggerPipeline: this block runtime has no database; call triggerPipeline from @kiln/core with a server's url and API key");
      }
      return triggerPipeline({ store, project: runtime.project }, pipelineUuid, { signal, log: (message) => logger.info(message), ...options });
    },
  };
}

/**
 * runtime-variables.ts, imported on first use and kept: a dynamic import, even of a module
 * loaded already, goes through the module loader and lets the event loop run other work before
 * it resolves (measured ~0.1 ms before each block run's first line, on an API trigger); the kept
 * promise resolves at once.
 */
let runtimeVariables: Promise<typeof import("./runtime-variables.ts")> | null = null;
const runtimeVariablesModule = () => (runtimeVariables ??= import("./runtime-variables.ts"));

/** Executes a block run to its end; returns its output (already stored) or throws. */
export async function executeBlock(job: BlockJob, runtime: BlockRuntime, signal: AbortSignal = new AbortController().signal): Promise<unknown> {
  return (await runBlockCode(job, runtime, signal, 0)).output;
}

/** A block run's end: its output, and its JSON text when it was left to the caller to store. */
export interface BlockRunOutput {
  output: unknown;
  /**
   * The output as JSON text, not stored yet: at most the `inlineMaxBytes` asked for, for the run
   * engine to commit with the block run's completion (OutputStore.inline). Null: already stored.
   */
  inline: InlineOutput | null;
}

/**
 * Executes a block run to its end, as executeBlock does, except that an output of at most
 * `inlineMaxBytes` (UTF-8 JSON) is returned as text instead of stored; larger ones are stored.
 */
export async function runBlockCode(job: BlockJob, runtime: BlockRuntime, signal: AbortSignal, inlineMaxBytes: number): Promise<BlockRunOutput> {
  const pipeline = runtime.project.pipelines.get(job.pipelineUuid);
  if (!pipeline) throw new BlockError(`project has no pipeline ${job.pipelineUuid}`);
  const { block: blockUuid } = parseBlockRunUuid(job.blockUuid);
  const block = pipeline.blocksByUuid.get(blockUuid);
  if (!block) throw new BlockError(`pipeline ${pipeline.uuid} has no block ${blockUuid}`);

  const python = isPythonModule(block.modulePath);
  const fn = python ? () => null : blockFunction(await runtime.source.importModule(block.modulePath), block.modulePath, block.type);
  const inputs = await readBlockInputs(runtime, job);
  // the runtime variables read the run's trigger and backfill: imported here, not by @kiln/core's entry
  const { blockRunVariables } = await runtimeVariablesModule();
  // Mage's runtime variables (ds, hr, execution_date, interval_*, trigger_name, env...) over the
  // merged variables: the same object Python blocks get as kwargs
  const context = blockContextOf(job, runtime, await blockRunVariables(job, runtime.store, runtime.env ?? null), signal);

  let output: unknown;
  if (python) {
    // the runner polls a Python sensor itself, in the one interpreter process
    const { runPythonBlock } = await import("./python-blocks.ts");
    output = await runPythonBlock(job, runtime, block, inputs, context);
    checkBlockOutput(blockCallSpec(block), output);
    if (signal.aborted) throw new BlockError("the block run was stopped before its output was stored");
  } else {
    output = await callBlock(fn, blockCallSpec(block), inputs, context, runtime.clock);
  }
  const fenced = runtime.fence?.() ?? null;
  if (fenced !== null) throw new BlockError(`the output was not stored: ${fenced}`);
  const inline = inlineMaxBytes > 0 ? inlineOutputOf(encodeBlockOutput(job.pipelineUuid, job.blockUuid, output), inlineMaxBytes) : null;
  if (inline) return { output, inline };
  await runtime.outputs.write(job.pipelineUuid, job.executionPartition, job.blockUuid, output);
  return { output, inline: null };
}
