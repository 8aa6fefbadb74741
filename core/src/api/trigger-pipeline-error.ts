/**
 * The error of ctx.triggerPipeline, apart from triggerPipeline itself: a block process (see
 * block-call-kit.ts) raises it for kiln's answer without loading the function that asks a store or a server.
 */
import type { PipelineRun } from "../domain.ts";

/**
 * Marks a TriggerPipelineError of any copy of @kiln/core: the thin block process's bundle holds
 * one, the @kiln/core a block imports another, and a block's `instanceof` must hold for both.
 */
const TRIGGER_PIPELINE_ERROR = Symbol.for("kiln.TriggerPipelineError");

/** triggerPipeline could not create the run, or the run failed (with errorOnFailure), or waiting timed out. */
export class TriggerPipelineError extends Error {
  readonly [TRIGGER_PIPELINE_ERROR] = true;

  constructor(
    message: string,
    /** The run, when one was created. */
    readonly pipelineRun: PipelineRun | null = null,
  ) {
    super(message);
    this.name = "TriggerPipelineError";
  }

  /** True for a TriggerPipelineError made by this copy of @kiln/core or another one. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as { [TRIGGER_PIPELINE_ERROR]?: unknown })[TRIGGER_PIPELINE_ERROR] === true;
  }
}
