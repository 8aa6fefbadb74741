/**
 * The engine's DAG rules (core/src/engine/dag-rules.ts) over block runs held in memory: no
 * project on disk, no database, no executor. Pipelines are built here as the loader would.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BLOCK_RUN_STATUSES, type BlockRunStatus } from "../../../core/src/domain.ts";
import {
  controllerOutcome,
  fanOut,
  itemCountOf,
  nodeKindOf,
  readiness,
  runOutcome,
  type DagNode,
  type DagView,
} from "../../../core/src/engine/dag-rules.ts";
import type { BlockConfig, BlockConfiguration, Pipeline } from "../../../core/src/project/types.ts";
import { BLOCK_RUN_TERMINAL } from "../../../core/src/state-machine.ts";

interface BlockSpec {
  uuid: string;
  upstream?: string[];
  configuration?: BlockConfiguration;
}

/** A loaded pipeline, in memory: blocks in metadata order with their downstream lists derived. */
function pipelineOf(specs: BlockSpec[]): Pipeline {
  const blocks: BlockConfig[] = specs.map((spec) => ({
    uuid: spec.uuid,
    name: spec.uuid,
    type: "transformer",
    upstreamBlocks: spec.upstream ?? [],
    downstreamBlocks: specs.filter((other) => other.upstream?.includes(spec.uuid)).map((other) => other.uuid),
    executorType: null,
    executorConfig: {},
    retryConfig: {},
    timeout: null,
    configuration: spec.configuration ?? {},
    modulePath: `transformers/${spec.uuid}.ts`,
  }));
  return {
    uuid: "p",
    name: "p",
    description: null,
    blocks,
    blocksByUuid: new Map(blocks.map((b) => [b.uuid, b])),
    executorType: null,
    executorConfig: {},
    retryConfig: {},
    concurrencyConfig: {},
    variables: {},
    settings: {},
    notificationConfig: {},
    triggers: [],
  };
}

/** A run's view: block runs by uuid, with the given statuses (items as `block:index`). */
class View implements DagView {
  readonly nodes = new Map<string, DagNode>();
  readonly itemCounts = new Map<string, number>();
  constructor(readonly pipeline: Pipeline) {
    for (const block of pipeline.blocks) this.add(block.uuid);
  }

  add(uuid: string, status: BlockRunStatus = "initial", retryPending = false): DagNode {
    const at = uuid.lastIndexOf(":");
    const blockUuid = at < 0 ? uuid : uuid.slice(0, at);
    const index = at < 0 ? null : Number(uuid.slice(at + 1));
    const block = this.pipeline.blocksByUuid.get(blockUuid);
    if (!block) throw new Error(`no block ${blockUuid}`);
    const node: DagNode = { uuid, block, kind: nodeKindOf(this.pipeline, blockUuid, index), index, status, retryPending };
    this.nodes.set(uuid, node);
    return node;
  }

  set(uuid: string, status: BlockRunStatus, retryPending = false): this {
    const node = this.nodes.get(uuid) ?? this.add(uuid);
    node.status = status;
    node.retryPending = retryPending;
    return this;
  }

  node(uuid: string): DagNode {
    const node = this.nodes.get(uuid);
    if (!node) throw new Error(`no node ${uuid}`);
    return node;
  }
}

const chain = () => pipelineOf([{ uuid: "a" }, { uuid: "b", upstream: ["a"] }, { uuid: "c", upstream: ["b"] }]);
const join = () => pipelineOf([{ uuid: "a" }, { uuid: "b" }, { uuid: "c", upstream: ["a", "b"] }]);
// a dynamic loader, a per-item transformer, a reducer of its items, and a block after the reduce
const fan = (reduce = true) =>
  pipelineOf([
    { uuid: "load", configuration: { dynamic: true } },
    { uuid: "each", upstream: ["load"] },
    { uuid: "gather", upstream: ["each"], configuration: reduce ? { reduceOutput: true } : {} },
    { uuid: "after", upstream: ["gather"] },
  ]);

describe("nodeKindOf", () => {
  test("a block outside any fan-out runs once; downstream of a dynamic block it is a controller; an index makes an item", () => {
    const p = fan();
    expect(nodeKindOf(p, "load", null)).toBe("block");
    expect(nodeKindOf(p, "each", null)).toBe("controller");
    expect(nodeKindOf(p, "gather", null)).toBe("controller");
    expect(nodeKindOf(p, "after", null)).toBe("block");
    expect(nodeKindOf(p, "each", 3)).toBe("item");
  });
});

describe("readiness", () => {
  test("a root is ready; a downstream waits until its upstream completed", () => {
    const v = new View(chain());
    expect(readiness(v, v.node("a"))).toBe("ready");
    for (const status of ["initial", "queued", "running"] as const) {
      v.set("a", status);
      expect(readiness(v, v.node("b"))).toBe("wait");
    }
    v.set("a", "completed");
    expect(readiness(v, v.node("b"))).toBe("ready");
    expect(readiness(v, v.node("c"))).toBe("wait");
  });

  test("a failed, cancelled or upstream_failed upstream makes the block upstream_failed", () => {
    for (const status of ["failed", "cancelled", "upstream_failed"] as const) {
      const v = new View(join()).set("a", "completed").set("b", status);
      expect(readiness(v, v.node("c"))).toBe("upstream_failed");
    }
  });

  test("a failed block waiting for its retry is not a failure yet: its downstream waits", () => {
    const v = new View(chain()).set("a", "failed", true);
    expect(readiness(v, v.node("b"))).toBe("wait");
  });

  test("condition_failed upstream passes on as condition_failed, unless another upstream failed", () => {
    const v = new View(join()).set("a", "condition_failed").set("b", "completed");
    expect(readiness(v, v.node("c"))).toBe("condition_failed");
    v.set("b", "running");
    expect(readiness(v, v.node("c"))).toBe("condition_failed");
    v.set("b", "failed");
    expect(readiness(v, v.node("c"))).toBe("upstream_failed");
  });

  test("an upstream outside the run (a single-block run) counts as there", () => {
    const v = new View(chain());
    v.nodes.delete("a");
    v.nodes.delete("c");
    expect(readiness(v, v.node("b"))).toBe("ready");
  });

  test("a controller is ready once its source is counted; each item waits for its own item of a per-item source", () => {
    const v = new View(fan());
    expect(readiness(v, v.node("each"))).toBe("wait");
    v.set("load", "completed");
    v.itemCounts.set("load", 2);
    expect(readiness(v, v.node("each"))).toBe("ready");
    // items of a dynamic block's child read the dynamic block's status
    v.add("each:0");
    expect(readiness(v, v.node("each:0"))).toBe("ready");
    // the reducer of `each` is a controller too: ready once `each` is counted
    expect(readiness(v, v.node("gather"))).toBe("wait");
    v.itemCounts.set("each", 2);
    expect(readiness(v, v.node("gather"))).toBe("ready");
  });

  test("items of a per-item block below a per-item block follow their own item upstream", () => {
    const p = pipelineOf([
      { uuid: "load", configuration: { dynamic: true } },
      { uuid: "each", upstream: ["load"] },
      { uuid: "then", upstream: ["each"] },
    ]);
    const v = new View(p).set("load", "completed");
    v.itemCounts.set("load", 2).set("each", 2).set("then", 2);
    v.add("each:0", "completed");
    v.add("each:1", "failed");
    v.add("then:0");
    v.add("then:1");
    expect(readiness(v, v.node("then:0"))).toBe("ready");
    expect(readiness(v, v.node("then:1"))).toBe("upstream_failed");
  });

  test("a controller fails at once when an upstream other than its source failed", () => {
    const p = pipelineOf([
      { uuid: "load", configuration: { dynamic: true } },
      { uuid: "side" },
      { uuid: "each", upstream: ["load", "side"] },
    ]);
    const v = new View(p).set("side", "running");
    expect(readiness(v, v.node("each"))).toBe("wait");
    v.set("load", "completed");
    v.itemCounts.set("load", 1);
    // the controller does not wait for `side`: its items do
    expect(readiness(v, v.node("each"))).toBe("ready");
    v.add("each:0");
    expect(readiness(v, v.node("each:0"))).toBe("wait");
    v.set("side", "failed");
    expect(readiness(v, v.node("each"))).toBe("upstream_failed");
  });
});

describe("fanOut", () => {
  test("one item run per item of the source, named block:index; none when the source made none", () => {
    const v = new View(fan());
    v.itemCounts.set("load", 3);
    expect(fanOut(v, v.node("each"))).toEqual({
      count: 3,
      items: [
        { uuid: "each:0", index: 0 },
        { uuid: "each:1", index: 1 },
        { uuid: "each:2", index: 2 },
      ],
    });
    v.itemCounts.set("load", 0);
    expect(fanOut(v, v.node("each"))).toEqual({ count: 0, items: [] });
  });

  test("the count of a dynamic block's output is its list's length (none if it is no list)", () => {
    expect(itemCountOf([1, 2, 3])).toBe(3);
    expect(itemCountOf([])).toBe(0);
    expect(itemCountOf({ length: 4 })).toBe(0);
    expect(itemCountOf(null)).toBe(0);
  });
});

describe("controllerOutcome", () => {
  const started = (reduce = true) => {
    const v = new View(fan(reduce)).set("load", "completed").set("each", "running");
    v.itemCounts.set("load", 3).set("each", 3);
    for (let i = 0; i < 3; i++) v.add(`each:${i}`, "running");
    return v;
  };

  test("none while an item is live or waits for its retry", () => {
    const v = started().set("each:0", "completed").set("each:1", "completed");
    expect(controllerOutcome(v, v.node("each"), false, new Map())).toBeNull();
    v.set("each:2", "failed", true);
    expect(controllerOutcome(v, v.node("each"), false, new Map())).toBeNull();
  });

  test("completes when every item completed or was condition_failed; a reduce gathers the loaded outputs in item order", () => {
    const v = started().set("each:0", "completed").set("each:1", "condition_failed").set("each:2", "completed");
    expect(controllerOutcome(v, v.node("each"), false, new Map())).toEqual({ status: "completed", reduced: null });
    // `gather` reduces the items of `each`
    v.set("gather", "running");
    v.itemCounts.set("gather", 3);
    for (let i = 0; i < 3; i++) v.add(`gather:${i}`, "completed");
    const outputs = new Map<string, unknown>([
      ["gather:2", "c"],
      ["gather:0", "a"],
      ["gather:1", { b: 1 }],
    ]);
    expect(controllerOutcome(v, v.node("gather"), false, outputs)).toEqual({ status: "completed", reduced: ["a", { b: 1 }, "c"] });
  });

  test("a reduce whose item outputs were not loaded is refused, naming the item", () => {
    const v = started(true).set("gather", "running");
    v.itemCounts.set("gather", 1);
    v.add("gather:0", "completed");
    expect(() => controllerOutcome(v, v.node("gather"), false, new Map())).toThrow("block run gather:0 completed but its output was not loaded");
  });

  test("fails when an item did not complete, counting them; cancelled only when stopping and every such item was cancelled", () => {
    const v = started().set("each:0", "completed").set("each:1", "failed").set("each:2", "upstream_failed");
    expect(controllerOutcome(v, v.node("each"), false, new Map())).toEqual({ status: "failed", error: "2 of 3 items did not complete" });
    expect(controllerOutcome(v, v.node("each"), true, new Map())).toEqual({ status: "failed", error: "2 of 3 items did not complete" });
    v.set("each:1", "cancelled").set("each:2", "cancelled");
    expect(controllerOutcome(v, v.node("each"), true, new Map())).toEqual({ status: "cancelled", error: "2 of 3 items did not complete" });
    expect(controllerOutcome(v, v.node("each"), false, new Map())).toEqual({ status: "failed", error: "2 of 3 items did not complete" });
  });

  test("a controller with no items completes at once", () => {
    const v = new View(fan()).set("load", "completed").set("each", "running");
    v.itemCounts.set("load", 0).set("each", 0);
    expect(controllerOutcome(v, v.node("each"), false, new Map())).toEqual({ status: "completed", reduced: null });
  });
});

describe("runOutcome", () => {
  test("none while a block run is live or waits for a retry", () => {
    const v = new View(chain()).set("a", "completed").set("b", "running");
    expect(runOutcome(v, null)).toBeNull();
    v.set("b", "failed", true);
    expect(runOutcome(v, null)).toBeNull();
  });

  test("completed when every block run completed or was condition_failed", () => {
    const v = new View(chain()).set("a", "completed").set("b", "condition_failed").set("c", "condition_failed");
    expect(runOutcome(v, null)).toEqual({ status: "completed", error: null });
  });

  test("failed when one failed, was cancelled or upstream_failed; a stop's status and reason win", () => {
    for (const status of ["failed", "cancelled", "upstream_failed"] as const) {
      const v = new View(chain()).set("a", "completed").set("b", status).set("c", "upstream_failed");
      expect(runOutcome(v, null)).toEqual({ status: "failed", error: "some blocks failed" });
    }
    const v = new View(chain()).set("a", "cancelled").set("b", "cancelled").set("c", "cancelled");
    expect(runOutcome(v, { status: "cancelled", reason: "cancelled by a user" })).toEqual({ status: "cancelled", error: "cancelled by a user" });
  });

  test("property: the run ends exactly when every block run is terminal and none waits for a retry", () => {
    const statuses = fc.constantFrom(...BLOCK_RUN_STATUSES);
    fc.assert(
      fc.property(fc.array(fc.tuple(statuses, fc.boolean()), { minLength: 3, maxLength: 3 }), (rows) => {
        const v = new View(chain());
        rows.forEach(([status, retryPending], i) => v.set(["a", "b", "c"][i] as string, status, retryPending && status === "failed"));
        const ends = [...v.nodes.values()].every((n) => BLOCK_RUN_TERMINAL.has(n.status) && !n.retryPending);
        const outcome = runOutcome(v, null);
        expect(outcome !== null).toBe(ends);
        if (outcome) {
          const ok = [...v.nodes.values()].every((n) => n.status === "completed" || n.status === "condition_failed");
          expect(outcome.status).toBe(ok ? "completed" : "failed");
        }
      }),
    );
  });
});
