/**
 * The DAG rules of a pipeline run, as pure functions over the run's block runs and outputs
 * already loaded: when a waiting block run may go (or is upstream_failed / condition_failed),
 * how a per-item block fans out, when a per-item block ends (and the list it reduces to), and
 * when and how the whole run ends. They read nothing from storage and write nothing; the engine
 * (run-engine.ts) turns their answers into moves of one step.
 *
 * Node kinds: a "block" runs once; a "controller" stands for a block that runs once per item of
 * its fan-out source (dag.ts) and ends when its items have; an "item" is one of those runs.
 */
import type { BlockRunStatus, PipelineRunStatus } from "../domain.ts";
import { itemBlockRunUuid } from "../domain.ts";
import { fanOutSourceOf } from "../project/dag.ts";
import type { BlockConfig, Pipeline } from "../project/types.ts";
import { BLOCK_RUN_TERMINAL } from "../state-machine.ts";
import { blockOf } from "./plan.ts";

export type NodeKind = "block" | "controller" | "item";

/** What the DAG rules look at of one block run. */
export interface DagNode {
  uuid: string;
  block: BlockConfig;
  kind: NodeKind;
  /** The item's index (items only). */
  index: number | null;
  status: BlockRunStatus;
  /** A failed node whose retry is waiting out its backoff is not finished. */
  retryPending: boolean;
}

/** What the DAG rules look at of one pipeline run. */
export interface DagView<N extends DagNode = DagNode> {
  pipeline: Pipeline;
  /** Block runs by block-run uuid (`block` or `block:index`). */
  nodes: ReadonlyMap<string, N>;
  /** Per fan-out source block: how many items its downstream blocks run for, once known. */
  itemCounts: ReadonlyMap<string, number>;
}

/** Statuses of an upstream that make its downstream upstream_failed. */
export const FAILED_UPSTREAM: ReadonlySet<BlockRunStatus> = new Set(["failed", "upstream_failed", "cancelled"]);

/** The kind of node a block run of `blockUuid` is (`index` set: one item of a per-item block). */
export function nodeKindOf(pipeline: Pipeline, blockUuid: string, index: number | null): NodeKind {
  if (index !== null) return "item";
  return fanOutSourceOf(pipeline, blockUuid) === null ? "block" : "controller";
}

/** How many items a completed dynamic block's output makes: the length of its list (none if it is no list). */
export function itemCountOf(output: unknown): number {
  return Array.isArray(output) ? output.length : 0;
}

export type Readiness = "ready" | "wait" | "upstream_failed" | "condition_failed";

/**
 * Whether a waiting node can go: all upstreams completed ("ready"), one failed, was cancelled or
 * is upstream_failed ("upstream_failed"), one is condition_failed and none failed
 * ("condition_failed", as in Mage), or not yet ("wait"). A controller waits only for its fan-out
 * source to be counted (its items wait for the other upstreams); an item reads its own item of
 * the source. Upstreams outside the run (a single-block run) are already there.
 */
export function readiness(view: DagView, node: DagNode): Readiness {
  const pipeline = view.pipeline;
  const source = node.kind === "block" ? null : fanOutSourceOf(pipeline, node.block.uuid);
  let wait = false;
  let conditionFailed = false;
  for (const upstream of node.block.upstreamBlocks) {
    let status: BlockRunStatus | undefined;
    if (upstream === source && node.kind === "item") {
      status = blockOf(pipeline, upstream).configuration.dynamic
        ? view.nodes.get(upstream)?.status
        : view.nodes.get(itemBlockRunUuid(upstream, node.index ?? 0))?.status;
    } else if (upstream === source && node.kind === "controller" && view.itemCounts.has(upstream)) {
      continue;
    } else {
      const up = view.nodes.get(upstream);
      if (!up) continue; // outside a single-block run: its output is already there
      if (up.retryPending) {
        wait = true;
        continue;
      }
      status = up.status;
      // a controller waits only for its source; its items wait for the other upstreams
      if (node.kind === "controller" && upstream !== source && !FAILED_UPSTREAM.has(status)) continue;
    }
    if (status === undefined) {
      wait = true;
      continue;
    }
    if (FAILED_UPSTREAM.has(status)) return "upstream_failed";
    // downstream of a block whose conditional was false: condition_failed too, as in Mage
    if (status === "condition_failed") conditionFailed = true;
    else if (status !== "completed") wait = true;
  }
  return conditionFailed ? "condition_failed" : wait ? "wait" : "ready";
}

/**
 * The item runs a ready controller fans out to: one per item of its fan-out source (as counted
 * when the source completed; none if it made none).
 */
export function fanOut(view: DagView, controller: DagNode): { count: number; items: Array<{ uuid: string; index: number }> } {
  const source = fanOutSourceOf(view.pipeline, controller.block.uuid);
  const count = source === null ? 0 : (view.itemCounts.get(source) ?? 0);
  const items: Array<{ uuid: string; index: number }> = [];
  for (let index = 0; index < count; index++) items.push({ uuid: itemBlockRunUuid(controller.block.uuid, index), index });
  return { count, items };
}

/** How a running controller ends once all its items have. */
export type ControllerOutcome =
  | { status: "completed"; /** reduce_output: the items' outputs in item order, stored as the block's own. */ reduced: unknown[] | null }
  | { status: "failed" | "cancelled"; error: string };

/**
 * How a running controller ends: null while an item is live or waits for a retry. It fails when
 * an item did not complete (condition_failed counts as done), or is cancelled when the run is
 * going down and every such item was cancelled. With reduce_output it completes with its items'
 * outputs, which `itemOutputs` must hold (loaded when each item completed).
 */
export function controllerOutcome(
  view: DagView,
  controller: DagNode,
  stopping: boolean,
  itemOutputs: ReadonlyMap<string, unknown>,
): ControllerOutcome | null {
  const count = view.itemCounts.get(controller.block.uuid) ?? 0;
  const items: DagNode[] = [];
  for (let i = 0; i < count; i++) {
    const item = view.nodes.get(itemBlockRunUuid(controller.block.uuid, i));
    if (!item || !BLOCK_RUN_TERMINAL.has(item.status) || item.retryPending) return null;
    items.push(item);
  }
  const failed = items.filter((i) => i.status !== "completed" && i.status !== "condition_failed");
  if (failed.length > 0) {
    const status = stopping && failed.every((i) => i.status === "cancelled") ? "cancelled" : "failed";
    return { status, error: `${failed.length} of ${count} items did not complete` };
  }
  if (!controller.block.configuration.reduceOutput) return { status: "completed", reduced: null };
  const reduced = items.map((item) => {
    if (!itemOutputs.has(item.uuid)) throw new Error(`block run ${item.uuid} completed but its output was not loaded before the reduce`);
    return itemOutputs.get(item.uuid);
  });
  return { status: "completed", reduced };
}

/**
 * How the run ends once every block run has (none live, none waiting for a retry): null before.
 * A run going down ends as it was stopped; else failed if a block run failed, was cancelled or
 * upstream_failed, else completed (condition_failed counts as done, as in Mage).
 */
export function runOutcome(
  view: DagView,
  stopping: { status: PipelineRunStatus; reason: string } | null,
): { status: PipelineRunStatus; error: string | null } | null {
  let failed = false;
  for (const node of view.nodes.values()) {
    if (!BLOCK_RUN_TERMINAL.has(node.status) || node.retryPending) return null;
    if (FAILED_UPSTREAM.has(node.status)) failed = true;
  }
  return {
    status: stopping?.status ?? (failed ? "failed" : "completed"),
    error: stopping?.reason ?? (failed ? "some blocks failed" : null),
  };
}
