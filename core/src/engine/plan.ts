/**
 * What the engine derives from a pipeline's DAG for one run: which blocks fan out, where each
 * block run reads its inputs, which executor runs it and with what variables.
 */
import type { JsonObject, PipelineRun, PipelineSchedule } from "../domain.ts";
import { itemBlockRunUuid, parseBlockRunUuid } from "../domain.ts";
import type { BlockJob, InputRef, JobSchedule } from "../executor.ts";
import { fanOutSourceOf } from "../project/dag.ts";
import type { BlockConfig, Pipeline, Project, ProjectSettings } from "../project/types.ts";
import type { Store } from "../store/index.ts";

/**
 * Where block run `blockRunUuid` reads each upstream output, in upstream_blocks order.
 * `partitionOf` says which partition holds an upstream block's output (the run's own, or for a
 * single-block run, the latest run in which that upstream completed).
 */
export function planInputs(pipeline: Pipeline, blockRunUuid: string, partitionOf: (blockUuid: string) => string): InputRef[] {
  const { block: blockUuid, index } = parseBlockRunUuid(blockRunUuid);
  const block = blockOf(pipeline, blockUuid);
  const source = fanOutSourceOf(pipeline, blockUuid);
  return block.upstreamBlocks.map((upstream): InputRef => {
    const partition = partitionOf(upstream);
    if (index !== null && upstream === source) {
      const sourceBlock = blockOf(pipeline, upstream);
      // a dynamic block's items are the elements of its list; a per-item block's are its item runs
      return sourceBlock.configuration.dynamic
        ? { partition, blockUuid: upstream, item: index }
        : { partition, blockUuid: itemBlockRunUuid(upstream, index) };
    }
    return { partition, blockUuid: upstream };
  });
}

export function blockOf(pipeline: Pipeline, blockUuid: string): BlockConfig {
  const block = pipeline.blocksByUuid.get(blockUuid);
  if (!block) throw new Error(`pipeline ${pipeline.uuid} has no block ${blockUuid}`);
  return block;
}

/** The executor type a block runs on: an override (CLI --executor-type) > block > pipeline > project. */
export function executorTypeOf(project: Project, pipeline: Pipeline, block: BlockConfig, override?: string | null): string {
  return resolveExecutor(project.settings, pipeline, block, override).type;
}

/** Executor config, shallow-merged: kiln.yaml's `executors.<type>` < project < pipeline < block. */
export function executorConfigOf(project: Project, pipeline: Pipeline, block: BlockConfig, override?: string | null): JsonObject {
  return resolveExecutor(project.settings, pipeline, block, override).config;
}

type ExecutorLevel = { executorType: string | null; executorConfig: JsonObject };

/**
 * A block's executor type and config. Each level's executor_config applies only where that
 * level's executor type (its own, or the one it inherits) is the block's: a pipeline's ECS
 * cluster must not leak into the config of a block that runs on Kubernetes.
 */
export function resolveExecutor(
  settings: Pick<ProjectSettings, "executorType" | "executorConfig" | "executors">,
  pipeline: ExecutorLevel,
  block: ExecutorLevel,
  override?: string | null,
): { type: string; config: JsonObject } {
  const projectType = settings.executorType;
  const pipelineType = pipeline.executorType ?? projectType;
  const blockType = block.executorType ?? pipelineType;
  const type = override || blockType;
  return {
    type,
    config: {
      ...settings.executors[type],
      ...(projectType === type ? settings.executorConfig : {}),
      ...(pipelineType === type ? pipeline.executorConfig : {}),
      ...(blockType === type ? block.executorConfig : {}),
    },
  };
}

/**
 * For blocks run without some of their upstreams (a single-block run), where each of those
 * upstreams last completed: the partition its output is read from. `missing` lists those that
 * never completed, so there is nothing to read.
 */
export async function outsideUpstreams(
  store: Pick<Store, "latestCompletedPartitions">,
  pipeline: Pipeline,
  blockUuids: Iterable<string>,
): Promise<{ partitions: Map<string, string>; missing: string[] }> {
  const inside = new Set(blockUuids);
  const outside = new Set<string>();
  for (const uuid of inside) for (const upstream of pipeline.blocksByUuid.get(uuid)?.upstreamBlocks ?? []) if (!inside.has(upstream)) outside.add(upstream);
  const partitions = outside.size > 0 ? await store.latestCompletedPartitions(pipeline.uuid, [...outside]) : new Map<string, string>();
  return { partitions, missing: [...outside].filter((u) => !partitions.has(u)) };
}

/** What a job carries of its run's trigger (BlockJob.schedule); null for a run without one. */
export function jobScheduleOf(schedule: PipelineSchedule | null): JobSchedule | null {
  if (!schedule) return null;
  const { name, scheduleType, scheduleInterval, timezone, startTime, settings } = schedule;
  return { name, scheduleType, scheduleInterval, timezone, startTime, settings };
}

/** Builds the job for one block run. */
export function buildBlockJob(args: {
  project: Project;
  pipeline: Pipeline;
  run: PipelineRun;
  blockRunUuid: string;
  blockRunId: number;
  attempt: number;
  variables: JsonObject;
  partitionOf: (blockUuid: string) => string;
  executorType?: string | null;
  /** The run's trigger as read (null: none): the job carries what its runtime variables need of it. Absent: the block reads it. */
  schedule?: PipelineSchedule | null;
}): BlockJob {
  const { project, pipeline, run } = args;
  const block = blockOf(pipeline, parseBlockRunUuid(args.blockRunUuid).block);
  const executor = resolveExecutor(project.settings, pipeline, block, args.executorType);
  return {
    projectRoot: project.root,
    pipelineUuid: pipeline.uuid,
    blockUuid: args.blockRunUuid,
    blockRunId: args.blockRunId,
    pipelineRunId: run.id,
    pipelineScheduleId: run.pipelineScheduleId,
    backfillId: run.backfillId,
    ...(args.schedule === undefined ? {} : { schedule: jobScheduleOf(args.schedule) }),
    attempt: args.attempt,
    executionDate: new Date(run.executionDate).toISOString(),
    executionPartition: run.executionPartition,
    variables: args.variables,
    event: run.event,
    inputs: planInputs(pipeline, args.blockRunUuid, args.partitionOf),
    executorType: executor.type,
    executorConfig: executor.config,
    timeout: block.timeout,
  };
}
