/**
 * The engine's executor slots (executor-slots.ts) and ownership rules (ownership.ts), in memory:
 * no project on disk, no database.
 */
import { describe, expect, test } from "bun:test";
import type { BlockRun, PipelineRun } from "../../../core/src/domain.ts";
import { ExecutorSlots } from "../../../core/src/engine/executor-slots.ts";
import { leftForNextOwner, liveExecutions, lostToAnother, RunLostError } from "../../../core/src/engine/ownership.ts";
import type { Node } from "../../../core/src/engine/run-state.ts";
import type { Executor } from "../../../core/src/executor.ts";
import type { BlockConfig } from "../../../core/src/project/types.ts";
import { IllegalTransitionError } from "../../../core/src/state-machine.ts";
import { LeaseLostError, RunTakenOverError } from "../../../core/src/store/write-batch.ts";

describe("ExecutorSlots", () => {
  test("a limited type has room until its limit is taken, across callers; an unlimited one always", () => {
    const slots = new ExecutorSlots();
    slots.noteLimits({ docker: 2 });
    expect(slots.hasRoom("docker", 2)).toBe(true);
    slots.take("docker");
    slots.take("docker");
    expect(slots.hasRoom("docker", 2)).toBe(false);
    expect(slots.hasRoom("docker", 3)).toBe(true);
    slots.take("local");
    expect(slots.hasRoom("local", undefined)).toBe(true);
    expect(slots.total).toBe(3);
    // only a limited type's release can let a waiting run go
    expect(slots.release("docker")).toBe(true);
    expect(slots.release("local")).toBe(false);
    expect(slots.hasRoom("docker", 2)).toBe(true);
    expect(slots.total).toBe(1);
  });

  test("a release never counts below zero", () => {
    const slots = new ExecutorSlots();
    slots.release("local");
    expect(slots.total).toBe(0);
    slots.take("local");
    expect(slots.total).toBe(1);
  });

  test("limits of every project given are remembered (a reloaded project's too)", () => {
    const slots = new ExecutorSlots();
    slots.noteLimits(undefined);
    expect(slots.release("ecs")).toBe(false);
    slots.noteLimits({ ecs: 1 });
    slots.noteLimits({});
    expect(slots.release("ecs")).toBe(true);
  });
});

const block = { uuid: "b" } as BlockConfig;
const executor = { type: "docker" } as Executor;

function node(over: Partial<Node> = {}): Node {
  return {
    uuid: "b",
    block,
    kind: "block",
    index: null,
    status: "running",
    retryPending: false,
    attempt: 2,
    id: 7,
    launch: 1,
    handle: { container: "c1" },
    executor,
    executorType: "docker",
    holdsSlot: true,
    timers: [],
    ...over,
  };
}

function row(over: Partial<BlockRun> = {}): BlockRun {
  return {
    id: 7,
    pipelineRunId: 1,
    blockUuid: "b",
    status: "running",
    attempt: 2,
    executorType: "docker",
    executorHandle: { container: "c1" },
    error: null,
    metrics: {},
    retryAt: null,
    startedAt: 1,
    completedAt: null,
    createdAt: 1,
    updatedAt: 1,
    ...over,
  };
}

describe("ownership", () => {
  test("a block process is left for the next owner only while the stored block run names that very attempt and process", () => {
    expect(leftForNextOwner(node(), row())).toBe(true);
    // ended by the process already (the next owner records what it finds)
    expect(leftForNextOwner(node(), row({ status: "completed" }))).toBe(true);
    expect(leftForNextOwner(node(), row({ attempt: 3 }))).toBe(false);
    expect(leftForNextOwner(node(), row({ executorHandle: { container: "c2" } }))).toBe(false);
    expect(leftForNextOwner(node(), row({ executorHandle: null }))).toBe(false);
    expect(leftForNextOwner(node(), row({ status: "queued" }))).toBe(false);
    expect(leftForNextOwner(node(), undefined)).toBe(false);
    // an in-process run means nothing elsewhere: always stopped
    const transient = { transient: true, id: "x" };
    expect(leftForNextOwner(node({ handle: transient }), row({ executorHandle: transient }))).toBe(false);
  });

  test("live executions: running block runs with an executor and a handle, never a per-item block's controller", () => {
    const nodes = [
      node({ uuid: "a" }),
      node({ uuid: "b", status: "completed" }),
      node({ uuid: "c", handle: null }),
      node({ uuid: "d", executor: null }),
      node({ uuid: "e", kind: "controller" }),
    ];
    expect(liveExecutions(nodes).map((n) => n.uuid)).toEqual(["a"]);
  });

  test("a race lost to another owner is told from a failure of the run", () => {
    const run = { owner: "me" } as PipelineRun;
    expect(lostToAnother(new RunTakenOverError(1, "other"), "me", run)).toBe(true);
    expect(lostToAnother(new RunLostError(1, "frozen"), "me", run)).toBe(true);
    expect(lostToAnother(new LeaseLostError("shard", 3, "token 4"), "me", run)).toBe(true);
    expect(lostToAnother(new IllegalTransitionError("pipeline_run", "pipeline run 1", "cancelled", "running"), "me", run)).toBe(true);
    // a database error while another owner holds the run is theirs to handle, not a failure here
    expect(lostToAnother(new Error("disk I/O error"), "me", { owner: "other" } as PipelineRun)).toBe(true);
    expect(lostToAnother(new Error("disk I/O error"), "me", run)).toBe(false);
    expect(lostToAnother(new Error("disk I/O error"), null, null)).toBe(false);
  });
});
