/**
 * Calling a block's function with its inputs and context, as its type says (a sensor is polled
 * until it holds) and checking what it returned. Shared by the in-process runtime
 * (block-runtime.ts) and the thin block process the local executor starts, which has no
 * project, store or output store of its own: everything here works on plain values.
 */
import { blockFunctionOf, type BlockContext } from "./blocks.ts";
import { sleep, type Clock } from "./clock.ts";
import { parseBlockRunUuid, type JsonObject } from "./domain.ts";
import type { BlockJob } from "./executor.ts";
import type { BlockConfig, BlockType } from "./project/types.ts";

/** A block's own error, as opposed to kiln failing to run it. */
export class BlockError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BlockError";
  }
}

/** What the call of a block depends on in its configuration. */
export interface BlockCallSpec {
  /** The block's uuid (without a dynamic item's index). */
  uuid: string;
  type: BlockType;
  /** Seconds between a sensor's polls (60 when unset). */
  pollInterval?: number;
  /** The block fans out: it must return a list. */
  dynamic?: boolean;
}

/** The call spec of a project's block. */
export function blockCallSpec(block: BlockConfig): BlockCallSpec {
  const { pollInterval, dynamic } = block.configuration;
  return { uuid: block.uuid, type: block.type, ...(pollInterval !== undefined ? { pollInterval } : {}), ...(dynamic !== undefined ? { dynamic } : {}) };
}

/** The function a block module exports, or a BlockError naming the module. */
export function blockFunction(moduleExports: unknown, modulePath: string, type: BlockType): (...args: unknown[]) => unknown {
  const fn = blockFunctionOf(moduleExports);
  if (!fn) throw new BlockError(`${modulePath}: expected a default export made with ${type}() from @kiln/core, or a function`);
  return fn;
}

/**
 * Calls the block to its end (a sensor until its condition holds) and returns its output, not
 * yet stored; throws when the block threw, a dynamic block returned no list, or the run was
 * stopped meanwhile (ctx.signal aborted: what it returned then is not to be recorded).
 */
export async function callBlock(
  fn: (...args: unknown[]) => unknown,
  spec: BlockCallSpec,
  inputs: unknown[],
  context: BlockContext,
  clock: Clock,
): Promise<unknown> {
  const { signal, logger } = context;
  let output: unknown;
  if (spec.type === "sensor") {
    const pollMs = (spec.pollInterval ?? 60) * 1000;
    let polls = 0;
    for (;;) {
      polls++;
      if (await fn(...inputs, context)) break;
      if (signal.aborted) throw new BlockError("sensor cancelled before its condition held");
      logger.info(`sensor condition not met (poll ${polls}); next poll in ${pollMs / 1000} s`);
      await sleep(clock, pollMs);
      if (signal.aborted) throw new BlockError("sensor cancelled before its condition held");
    }
    output = true;
  } else {
    output = await fn(...inputs, context);
  }
  checkBlockOutput(spec, output);
  // a block that ran on after its run was cancelled or let go (ctx.signal aborted) records nothing
  if (signal.aborted) throw new BlockError("the block run was stopped before its output was stored");
  return output;
}

/** Throws when a dynamic block's output is not a list. */
export function checkBlockOutput(spec: BlockCallSpec, output: unknown): void {
  if (spec.dynamic && !Array.isArray(output)) {
    const got = output === null ? "null" : typeof output;
    throw new BlockError(`dynamic block ${spec.uuid} must return a list (one item per downstream run), got ${got}`);
  }
}

/** The part of a block's context its job determines; where the block runs adds secrets, logger, signal and triggerPipeline. */
export function jobContext(job: BlockJob, variables: JsonObject): Omit<BlockContext, "secrets" | "logger" | "signal" | "triggerPipeline"> {
  return {
    executionDate: new Date(job.executionDate),
    executionPartition: job.executionPartition,
    pipelineUuid: job.pipelineUuid,
    pipelineRunId: job.pipelineRunId,
    blockUuid: job.blockUuid,
    blockRunId: job.blockRunId,
    dynamicBlockIndex: parseBlockRunUuid(job.blockUuid).index,
    attempt: job.attempt,
    variables: Object.freeze(variables),
    event: job.event,
  };
}
