/**
 * What kiln and a warm `kiln run-block --warm` worker say to each other. The worker is started
 * ahead of need and waits on its stdin; kiln hands it a block run as one JSON line when one is
 * claimed. Its stdout and stderr are the block run's, as for a process started for the run.
 */
import type { BlockJob } from "@kiln/core";

/** One block run handed to a warm worker: one JSON line on its stdin. */
export interface WarmBlockRun {
  /** The job, as the engine built it (the worker does not rebuild it from the database). */
  job: BlockJob;
  /** Where the worker records the outcome, for a kiln that restarts while it runs. */
  resultFile: string;
  /** kiln's credentials the block run needs (see cli/src/kiln-env.ts): on stdin, never in the environment. */
  handoff?: Record<string, string>;
  /**
   * Set when the worker may be handed another block run after this one (executor_config.reuse):
   * it then ends this run's stdout and stderr each with a line `<boundary> <exit code>` and waits
   * for the next line on stdin, or exits at its end. Unset: the worker exits with the code.
   */
  boundary?: string;
}

/** The arguments that start a warm worker for the project at `projectRoot`. */
export function warmWorkerArgs(projectRoot: string): string[] {
  return ["run-block", "--warm", projectRoot];
}
