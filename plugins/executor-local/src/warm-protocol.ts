/**
 * What kiln and a warm block process say to each other. The process is started ahead of need and
 * waits on its stdin; kiln hands it a block run as one JSON line when one is claimed. Its stdout
 * and stderr are the block run's, as for a process started for the run.
 *
 * Two kinds of warm process exist. A thin one (`kiln run-block --warm --thin`, the default for
 * TypeScript and JavaScript blocks) loads no project, store or output store: kiln resolves what
 * the block needs (its module, inputs, variables) and hands it over in `call`; the process calls
 * the block and records its output in the result file, which kiln stores. Secrets and
 * ctx.triggerPipeline are asked of kiln on stdout and answered on stdin. A full one
 * (`kiln run-block --warm`, for Python blocks, which need the project's interpreter settings)
 * loads the project and stores the output itself.
 *
 * This module imports nothing at run time: the thin process loads it (the result file's
 * functions, which need node:fs, are in result-file.ts).
 */
import type { BlockCallSpec, BlockJob, JsonObject, TriggerPipelineOptions } from "@kiln/core";

/** What a thin process needs to call the block, resolved by kiln. */
export interface BlockCall {
  /** The block's module, relative to the project root. */
  modulePath: string;
  spec: BlockCallSpec;
  /** The upstream outputs, in upstream_blocks order. */
  inputs: unknown[];
  /** ctx.variables: the merged variables with Mage's runtime variables over them. */
  variables: JsonObject;
}

/** One block run handed to a warm worker: one JSON line on its stdin. */
export interface WarmBlockRun {
  /** The job, as the engine built it (the worker does not rebuild it from the database). */
  job: BlockJob;
  /** Where the worker records the outcome, for a kiln that restarts while it runs. */
  resultFile: string;
  /** For a thin process: what it calls. */
  call?: BlockCall;
  /** kiln's credentials the block run needs (see cli/src/kiln-env.ts): on stdin, never in the environment. Full processes only. */
  handoff?: Record<string, string>;
  /**
   * Set when the worker may be handed another block run after this one (executor_config.reuse):
   * it then ends this run's stdout and stderr each with a line `<boundary> <exit code>` and waits
   * for the next line on stdin, or exits at its end. Unset: the worker exits with the code.
   */
  boundary?: string;
  /** The worker's last block run: it exits after it (a thin process, which ends its run with the boundary line even so). */
  last?: boolean;
}

/** What a thin process asks kiln: a secret's value, or a run of another pipeline (ctx.triggerPipeline). */
export type WorkerQuestion =
  | { op: "secret"; name: string }
  | { op: "trigger"; pipelineUuid: string; options: Omit<TriggerPipelineOptions, "signal" | "log"> };

/** A question as a line `<WORKER_MARK>ask <json>` on the process's stdout. */
export type WorkerAsk = WorkerQuestion & { id: number };

/** kiln's answer, one JSON line on the process's stdin. */
export interface WorkerReply {
  reply: number;
  value?: unknown;
  /** The call failed: its message (and, for a trigger, the run it created, if any). */
  error?: { message: string; trigger: boolean; run: unknown };
}

/**
 * Starts the lines a thin process writes to kiln on its stdout: `ready` once booted, `took ` once
 * it has read its first line (kiln ignores it), `log <line>` for a ctx.logger line (kept in the
 * block run's log as written), `ask <json>` for a WorkerAsk. A thin process on Bun reads its
 * first line with a synchronous read that can take in more than the line, so kiln writes nothing
 * after a thin process's first line until the process has written something after it (an ask
 * is answered, a reused process's next run follows its boundary lines).
 */
export const WORKER_MARK = "\u0001kiln:";

/** `kiln run-block` ends its stderr with this line when the block threw: the error, on one line. */
export const BLOCK_FAILED_MARK = "kiln: block failed: ";

/** The environment variable that tells `kiln run-block` where to record its outcome. */
export const RESULT_FILE_ENV = "KILN_RESULT_FILE";

/** A block run's outcome as its process recorded it; a thin process's output is there too (JSON text). */
export type RecordedResult = { state: "completed"; output?: string } | { state: "failed"; error: string };

/** The arguments that start a full warm worker for the project at `projectRoot`. */
export function warmWorkerArgs(projectRoot: string): string[] {
  return ["run-block", "--warm", projectRoot];
}

/** The arguments that start a thin warm process for the project at `projectRoot`. */
export function thinWorkerArgs(projectRoot: string): string[] {
  return ["run-block", "--warm", "--thin", projectRoot];
}
