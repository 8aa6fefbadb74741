/**
 * The error of ctx.triggerPipeline, apart from triggerPipeline itself: a block process (see
 * block-call-kit.ts) raises it for kiln's answer without loading the function that asks a store or a server.
 */
import type { PipelineRun } from "../domain.ts";

/** triggerPipeline could not create the run, or the run failed (with errorOnFailure), or waiting timed out. */
export class TriggerPipelineError extends Error {
  constructor(
    message: string,
    /** The run, when one was created. */
    readonly pipelineRun: PipelineRun | null = null,
  ) {
    super(message);
    this.name = "TriggerPipelineError";
  }
}
