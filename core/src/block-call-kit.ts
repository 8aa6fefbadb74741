/**
 * What a block process needs of @kiln/core to call a block (the subpath `@kiln/core/block-call`):
 * the block's function, its call, its context and logger, its output's encoding. It loads a
 * fraction of the root entry, whose parsing and linking a thin block process would pay at every
 * boot, for a block that may never import @kiln/core at all; the classes and functions are the
 * root entry's own (the same modules), so `instanceof` holds between the two.
 */
export { blockFunction, callBlock, jobContext } from "./block-call.ts";
export { systemClock } from "./clock.ts";
export { createBlockLogger } from "./logs.ts";
export { encodeBlockOutput } from "./outputs.ts";
export { TriggerPipelineError } from "./api/trigger-pipeline-error.ts";
export type { BlockContext } from "./blocks.ts";
export type { LogSink } from "./logs.ts";
export type { PipelineRun } from "./domain.ts";
