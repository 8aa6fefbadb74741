/**
 * What a Worker cannot do, found before it is tried: `kiln build worker` refuses such a project,
 * and the Worker checks again at start (its tick length may differ from the build's default).
 * Each refusal names the file and field, says why, and says what to use instead.
 */
import { effectiveRetryConfig, executorConfigOf, executorTypeOf } from "@kiln/core/engine";
import { WORKFLOWS_EXECUTOR_TYPE, uncappedWait } from "@kiln/executor-workflows";
import { type Project } from "@kiln/core/project";
import { isPythonModule } from "@kiln/core/runtime";

/** Seconds a scheduled tick drives runs for when KILN_TICK_SECONDS does not say. */
export const DEFAULT_TICK_SECONDS = 45;

/** Seconds running blocks get after a tick's deadline when KILN_TICK_GRACE_SECONDS does not say. */
export const DEFAULT_GRACE_SECONDS = 10;

/** Executors a Worker drives over fetch: the block runs in a container elsewhere. */
export const REMOTE_EXECUTOR_TYPES = ["ecs", "cloud_run", "k8s"] as const;

/** Executor types whose blocks can run from a Worker: in the Worker itself, as Workflows steps, or over fetch. */
export const WORKER_EXECUTOR_TYPES = ["local", WORKFLOWS_EXECUTOR_TYPE, ...REMOTE_EXECUTOR_TYPES] as const;

/** One thing a Worker cannot run, and where it is configured. */
export interface WorkerRefusal {
  /** Project-relative file, e.g. `pipelines/etl/triggers.yaml`. */
  file: string;
  /** The field at fault, e.g. `triggers[0].schedule_interval`. */
  field: string;
  message: string;
}

/** The message for a trigger with @always_on, for the build, the Worker's start and its API. */
export const ALWAYS_ON_MESSAGE =
  "@always_on needs a process that never stops, and a Worker only runs on its cron ticks: use a cron expression " +
  "(the Worker ticks every minute), or run this trigger with `kiln start` on Bun, Deno or Node";

const REMOTE_EXECUTORS = "ecs, cloud_run or k8s";

/** Why a Python block on the local executor is refused on Workers. */
export const PYTHON_BLOCK_MESSAGE =
  `a Python block cannot run inside a Worker (there is no interpreter): give it a remote executor (executor_type ${REMOTE_EXECUTORS}), whose container runs it with python3, or run the project with kiln start on Bun, Deno or Node`;

function executorMessage(type: string, config: Record<string, unknown>): string | null {
  if (type === "local") {
    if (config.in_process === true) return null;
    return (
      "the local executor starts a process per block run, and a Worker cannot start processes: set " +
      `executor_config: {in_process: true} to run the block inside the Worker, or use executor_type ${REMOTE_EXECUTORS}`
    );
  }
  if (type === "docker") {
    return `the docker executor needs a Docker Engine, which a Worker cannot reach: use executor_type ${REMOTE_EXECUTORS}, or run kiln start where Docker runs`;
  }
  if (type === WORKFLOWS_EXECUTOR_TYPE || (REMOTE_EXECUTOR_TYPES as readonly string[]).includes(type)) return null;
  return `executor_type ${type} cannot run from a Worker: run the block inside the Worker (executor_type local with executor_config: {in_process: true}), or as a Cloudflare Workflows step (executor_type workflows)`;
}

/**
 * Everything in `project` a Worker ticking for `tickSeconds` cannot run: @always_on triggers,
 * blocks on the local (process) or docker executor, sensors that may poll longer than a tick.
 */
export function workerRefusals(project: Project, tickSeconds: number = DEFAULT_TICK_SECONDS, graceSeconds: number = DEFAULT_GRACE_SECONDS): WorkerRefusal[] {
  const refusals: WorkerRefusal[] = [];
  for (const pipeline of project.pipelines.values()) {
    pipeline.triggers.forEach((trigger, i) => {
      if (trigger.scheduleInterval?.trim() === "@always_on") {
        refusals.push({ file: `pipelines/${pipeline.uuid}/triggers.yaml`, field: `triggers[${i}].schedule_interval`, message: ALWAYS_ON_MESSAGE });
      }
    });
    for (const addon of [...(pipeline.callbacks ?? []), ...(pipeline.conditionals ?? [])]) {
      if (isPythonModule(addon.modulePath)) {
        refusals.push({
          file: `pipelines/${pipeline.uuid}/metadata.yaml`,
          field: `${addon.kind} ${addon.uuid}: ${addon.modulePath}`,
          message: `a Python ${addon.kind} runs in kiln's own process, which on Workers has no Python: write it in TypeScript or JavaScript, or run the project with kiln start on Bun, Deno or Node`,
        });
      }
    }
    for (const block of pipeline.blocks) {
      const file = `pipelines/${pipeline.uuid}/metadata.yaml`;
      const type = executorTypeOf(project, pipeline, block);
      const refused = executorMessage(type, executorConfigOf(project, pipeline, block));
      if (refused) refusals.push({ file, field: `block ${block.uuid}: executor_type ${type}`, message: refused });
      // a Worker has no interpreter: a Python block runs only in a remote executor's container
      if (!refused && (type === "local" || type === WORKFLOWS_EXECUTOR_TYPE) && isPythonModule(block.modulePath)) {
        refusals.push({ file, field: `block ${block.uuid}: ${block.modulePath}`, message: PYTHON_BLOCK_MESSAGE });
      }
      // the Worker keeps a local output store's outputs in its database, but the container's
      // kiln run-block reads kiln.yaml and would look in its own .variables folder
      if (!refused && type !== "local" && type !== WORKFLOWS_EXECUTOR_TYPE && project.settings.outputStore.type === "local") {
        refusals.push({
          file: "kiln.yaml",
          field: `output_store (block ${block.uuid} runs on ${type})`,
          message: "a block in a container must reach the outputs of the blocks before it: set output_store to {type: database} or {type: s3, bucket: ...}",
        });
      }
      // an in-Worker block runs within one tick (one Durable Object alarm invocation): it is
      // launched before the tick's deadline and must end by the end of its grace period
      const invocation = tickSeconds + graceSeconds;
      if (!refused && type === "local" && block.type !== "sensor" && block.timeout !== null && block.timeout > invocation) {
        refusals.push({
          file,
          field: `block ${block.uuid}: timeout`,
          message:
            `timeout ${block.timeout} s cannot fit in one invocation of the Worker's scheduler, where this block runs (a tick of ${tickSeconds} s plus ${graceSeconds} s of grace, ${invocation} s): ` +
            `run it as a Cloudflare Workflows step (executor_type workflows), which outlives the tick, or on a remote executor (executor_type ${REMOTE_EXECUTORS}), ` +
            "lower its timeout, or raise KILN_TICK_SECONDS (--tick-seconds) within your plan's limits",
        });
      }
      // a Workflows step always has a timeout (Workflows' default is 10 minutes); kiln's "none" cannot be said
      if (!refused && type === WORKFLOWS_EXECUTOR_TYPE && block.type !== "sensor" && block.timeout === null) {
        refusals.push({
          file,
          field: `block ${block.uuid}: timeout`,
          message:
            "a block on executor_type workflows runs as a Cloudflare Workflows step, which always has a timeout (Workflows' default is 10 minutes): " +
            "set timeout (seconds) to how long one attempt may take; its wall clock is not limited, its CPU time is (30 s a step by default on the Paid plan, up to 5 minutes with [limits] cpu_ms)",
        });
      }
      if (block.type === "sensor" && (block.timeout === null || block.timeout > tickSeconds)) {
        const got = block.timeout === null ? "no timeout" : `timeout ${block.timeout} s`;
        refusals.push({
          file,
          field: `block ${block.uuid}: timeout`,
          message:
            `a sensor in a Worker must end within one tick (${tickSeconds} s), and it has ${got}: a Worker cannot wait between ticks. ` +
            `Set timeout to at most ${tickSeconds} and retry_config retries so later ticks poll again, or run the sensor with kiln start on Bun, Deno or Node`,
        });
      }
    }
  }
  return refusals;
}

/** The refusals as one message, a line each: `<file>: <field>: <message>`. */
export function describeRefusals(refusals: readonly WorkerRefusal[]): string {
  return refusals.map((r) => `${r.file}: ${r.field}: ${r.message}`).join("\n");
}

/**
 * Settings of a Worker's blocks that the Worker does not act on, one message each (the build
 * prints them as warnings): a Workflows step cannot cap an exponential backoff at max_delay.
 */
export function workerWarnings(project: Project): string[] {
  const warnings: string[] = [];
  for (const pipeline of project.pipelines.values()) {
    for (const block of pipeline.blocks) {
      if (executorTypeOf(project, pipeline, block) !== WORKFLOWS_EXECUTOR_TYPE) continue;
      const retry = effectiveRetryConfig(project.settings.retryConfig, pipeline.retryConfig, block.retryConfig);
      const longest = uncappedWait(retry);
      if (longest !== null) {
        warnings.push(
          `pipelines/${pipeline.uuid}/metadata.yaml: block ${block.uuid}: retry_config.max_delay (${retry.maxDelay} s) is not acted on under executor_type workflows: ` +
            `Workflows doubles the wait after each failed attempt without a cap, so its last wait is ${longest} s; lower retries or delay, or set exponential_backoff: false`,
        );
      }
    }
  }
  return warnings;
}
