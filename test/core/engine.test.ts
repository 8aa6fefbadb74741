/** The run engine over a real libSQL file, with in-process blocks and a fake clock for time. */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FakeClock, outputPath, type PipelineRun } from "@kiln/core";
import { metadata, projectFixture, settle, type Fixture } from "../helpers/fixtures.ts";

const IN_PROCESS = "executor_config:\n  in_process: true\n";

async function blockRuns(fx: Fixture, runId: number) {
  const rs = await fx.client.execute({
    sql: "SELECT block_uuid, status, attempt, error, retry_at FROM block_runs WHERE pipeline_run_id = ? ORDER BY id",
    args: [runId],
  });
  return Object.fromEntries(
    rs.rows.map((r) => [String(r.block_uuid), { status: String(r.status), attempt: Number(r.attempt), error: r.error === null ? null : String(r.error), retryAt: r.retry_at === null ? null : Number(r.retry_at) }]),
  );
}

function statusOf(runs: Record<string, { status: string }>): Record<string, string> {
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.status]));
}

async function newRun(fx: Fixture, pipelineUuid = "p", extra: Partial<Parameters<Fixture["store"]["createPipelineRun"]>[0]> = {}): Promise<PipelineRun> {
  const run = await fx.store.createPipelineRun({ pipelineUuid, executionDate: Date.UTC(2026, 4, 1), ...extra });
  if (!run) throw new Error("run not created");
  return run;
}

function readOutput(fx: Fixture, run: PipelineRun, block: string): unknown {
  return JSON.parse(readFileSync(join(fx.root, outputPath(run.pipelineUuid, run.executionPartition, block)), "utf8"));
}

describe("a chain", () => {
  test("completes, each output lands in the run's partition, downstream gets upstream outputs", async () => {
    const fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "load", type: "data_loader" },
        { uuid: "double", type: "transformer", upstream_blocks: ["load"] },
        { uuid: "both", type: "data_exporter", upstream_blocks: ["load", "double"] },
      ]),
      "data_loaders/load.js": "export default () => [1, 2, 3];\n",
      "transformers/double.js": "export default (xs) => xs.map((x) => x * 2);\n",
      "data_exporters/both.js": "export default (a, b, ctx) => ({ a, b, partition: ctx.executionPartition });\n",
    });
    try {
      const run = await newRun(fx);
      const final = await fx.engine.execute(run.id);
      expect(final.status).toBe("completed");
      expect(final.startedAt).not.toBeNull();
      expect(final.completedAt).not.toBeNull();
      expect(statusOf(await blockRuns(fx, run.id))).toEqual({ load: "completed", double: "completed", both: "completed" });
      const partitionDir = join(fx.root, ".variables/pipelines/p", run.executionPartition);
      for (const b of ["load", "double", "both"]) expect(existsSync(join(partitionDir, b, "output_0"))).toBe(true);
      expect(readOutput(fx, run, "both")).toEqual({ a: [1, 2, 3], b: [2, 4, 6], partition: run.executionPartition });
    } finally {
      fx.cleanup();
    }
  });

  test("a downstream block starts in the same engine step its upstream completes (no tick between levels)", async () => {
    const fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "a", type: "data_loader" },
        { uuid: "b", type: "transformer", upstream_blocks: ["a"] },
      ]),
      "data_loaders/a.js": "export default () => 1;\n",
      "transformers/b.js": "export default (x) => x + 1;\n",
    });
    try {
      const run = await newRun(fx);
      const events: string[] = [];
      await fx.engine.execute(run.id, { onEvent: (e) => e.kind === "block" && events.push(`${e.blockUuid}:${e.status}@${e.at}`) });
      const at = (s: string) => Number(events.find((e) => e.startsWith(s))?.split("@")[1]);
      // b's queued and running writes carry the same commit timestamp as a's completion
      expect(at("b:queued")).toBe(at("a:completed"));
      expect(at("b:running")).toBe(at("a:completed"));
    } finally {
      fx.cleanup();
    }
  });
});

describe("failures", () => {
  const files = (settings = "") => ({
    "kiln.yaml": IN_PROCESS,
    "pipelines/p/metadata.yaml": metadata(
      [
        { uuid: "a", type: "data_loader" },
        { uuid: "bad", type: "transformer", upstream_blocks: ["a"] },
        { uuid: "after_bad", type: "transformer", upstream_blocks: ["bad"] },
        { uuid: "last", type: "data_exporter", upstream_blocks: ["after_bad"] },
        { uuid: "side", type: "transformer", upstream_blocks: ["a"] },
      ],
      settings,
    ),
    "data_loaders/a.js": "export default () => 1;\n",
    "transformers/bad.js": "export default () => { throw new Error('bad input 7'); };\n",
    "transformers/after_bad.js": "export default (x) => x;\n",
    "data_exporters/last.js": "export default (x) => x;\n",
    "transformers/side.js": "export default async (x) => { await new Promise((r) => setTimeout(r, 30)); return x; };\n",
  });

  test("upstream_failed propagates down the whole chain; the run fails with the block's error", async () => {
    const fx = await projectFixture(files());
    try {
      const run = await newRun(fx);
      const final = await fx.engine.execute(run.id);
      expect(final.status).toBe("failed");
      expect(String(final.metrics.error)).toContain("bad input 7");
      const runs = await blockRuns(fx, run.id);
      expect(runs.bad?.status).toBe("failed");
      expect(runs.bad?.error).toBe("bad input 7");
      expect(runs.after_bad?.status).toBe("upstream_failed");
      expect(runs.last?.status).toBe("upstream_failed");
      // without allow_blocks_to_fail the unrelated branch is stopped, never left hanging
      expect(["cancelled", "completed"]).toContain(runs.side?.status ?? "");
      expect(readFileSync(join(fx.root, ".logs/pipelines/p", run.executionPartition, "bad.log"), "utf8")).toContain("bad input 7");
    } finally {
      fx.cleanup();
    }
  });

  test("allow_blocks_to_fail: blocks that do not depend on the failure still run; the run is failed", async () => {
    const fx = await projectFixture(files("settings:\n  allow_blocks_to_fail: true\n"));
    try {
      const run = await newRun(fx);
      const final = await fx.engine.execute(run.id);
      expect(final.status).toBe("failed");
      expect(statusOf(await blockRuns(fx, run.id))).toEqual({
        a: "completed",
        bad: "failed",
        after_bad: "upstream_failed",
        last: "upstream_failed",
        side: "completed",
      });
    } finally {
      fx.cleanup();
    }
  });
});

describe("retries with the fake clock", () => {
  test("waits delay, then doubles, each wait capped by max_delay; succeeds on the third attempt", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const fx = await projectFixture(
      {
        "kiln.yaml": IN_PROCESS,
        "pipelines/p/metadata.yaml": metadata([
          {
            uuid: "flaky",
            type: "data_loader",
            retry_config: { retries: 3, delay: 10, max_delay: 15, exponential_backoff: true },
          },
        ]),
        "data_loaders/flaky.js": "export default (ctx) => { if (ctx.attempt < 3) throw new Error(`try ${ctx.attempt}`); return ctx.attempt; };\n",
      },
      clock,
    );
    try {
      const run = await newRun(fx);
      const done = fx.engine.execute(run.id);
      await clock.untilTimers(1);
      await settle();
      const t0 = clock.now();
      let runs = await blockRuns(fx, run.id);
      expect(runs.flaky).toMatchObject({ status: "failed", attempt: 1, error: "try 1", retryAt: t0 + 10_000 });

      clock.advance(9_999);
      await settle();
      expect((await blockRuns(fx, run.id)).flaky?.attempt).toBe(1);

      clock.advance(1);
      await clock.untilTimers(1);
      await settle();
      runs = await blockRuns(fx, run.id);
      // 10 s doubled is 20 s, capped at max_delay 15 s
      expect(runs.flaky).toMatchObject({ status: "failed", attempt: 2, error: "try 2", retryAt: t0 + 10_000 + 15_000 });

      clock.advance(15_000);
      const final = await done;
      expect(final.status).toBe("completed");
      expect((await blockRuns(fx, run.id)).flaky).toMatchObject({ status: "completed", attempt: 3, error: null });
      expect(readOutput(fx, run, "flaky")).toBe(3);
    } finally {
      fx.cleanup();
    }
  });

  test("gives up after `retries` retries and fails the run", async () => {
    const clock = new FakeClock();
    const fx = await projectFixture(
      {
        "kiln.yaml": `${IN_PROCESS}retry_config:\n  retries: 1\n  delay: 2\n  exponential_backoff: false\n`,
        "pipelines/p/metadata.yaml": metadata([{ uuid: "never", type: "data_loader" }]),
        "data_loaders/never.js": "export default (ctx) => { throw new Error(`no ${ctx.attempt}`); };\n",
      },
      clock,
    );
    try {
      const run = await newRun(fx);
      const done = fx.engine.execute(run.id);
      await clock.untilTimers(1);
      clock.advance(2_000);
      const final = await done;
      expect(final.status).toBe("failed");
      expect((await blockRuns(fx, run.id)).never).toMatchObject({ status: "failed", attempt: 2, error: "no 2" });
    } finally {
      fx.cleanup();
    }
  });
});

describe("timeouts and cancel", () => {
  const hanging = {
    "data_loaders/hang.js": "export default (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('stopped')));\n",
  };

  test("a block timeout fails the block run and the run", async () => {
    const clock = new FakeClock();
    const fx = await projectFixture(
      { "kiln.yaml": IN_PROCESS, "pipelines/p/metadata.yaml": metadata([{ uuid: "hang", type: "data_loader", timeout: 5 }]), ...hanging },
      clock,
    );
    try {
      const run = await newRun(fx);
      const done = fx.engine.execute(run.id);
      await clock.untilTimers(1);
      clock.advance(5_000);
      const final = await done;
      expect(final.status).toBe("failed");
      expect((await blockRuns(fx, run.id)).hang).toMatchObject({ status: "failed", error: "block run timed out after 5 s" });
    } finally {
      fx.cleanup();
    }
  });

  test("a run timeout gives the run timeout_status and cancels its block runs", async () => {
    const clock = new FakeClock();
    const fx = await projectFixture(
      {
        "kiln.yaml": IN_PROCESS,
        "pipelines/p/metadata.yaml": metadata([{ uuid: "hang", type: "data_loader" }], "settings:\n  timeout: 10\n  timeout_status: cancelled\n"),
        ...hanging,
      },
      clock,
    );
    try {
      const run = await newRun(fx);
      const done = fx.engine.execute(run.id);
      await clock.untilTimers(1);
      clock.advance(10_000);
      const final = await done;
      expect(final.status).toBe("cancelled");
      expect(String(final.metrics.error)).toContain("timed out after 10 s");
      expect((await blockRuns(fx, run.id)).hang?.status).toBe("cancelled");
    } finally {
      fx.cleanup();
    }
  });

  test("cancel stops a running run: its block runs are cancelled and nothing downstream starts", async () => {
    const fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "hang", type: "data_loader" },
        { uuid: "next", type: "transformer", upstream_blocks: ["hang"] },
      ]),
      ...hanging,
      "transformers/next.js": "export default (x) => x;\n",
    });
    try {
      const run = await newRun(fx);
      let running!: () => void;
      const started = new Promise<void>((r) => (running = r));
      const done = fx.engine.execute(run.id, { onEvent: (e) => e.kind === "block" && e.status === "running" && running() });
      await started;
      expect(fx.engine.cancel(run.id)).toBe(true);
      const final = await done;
      expect(final.status).toBe("cancelled");
      expect(statusOf(await blockRuns(fx, run.id))).toEqual({ hang: "cancelled", next: "cancelled" });
      expect(existsSync(join(fx.root, outputPath("p", run.executionPartition, "next")))).toBe(false);
    } finally {
      fx.cleanup();
    }
  });

  test("a run cancelled by another process starts nothing more here", async () => {
    const fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "gate", type: "data_loader" },
        { uuid: "next", type: "transformer", upstream_blocks: ["gate"] },
      ]),
      "data_loaders/gate.js": "export default async () => { while (!globalThis.kilnGateOpen) await new Promise((r) => setTimeout(r, 5)); return 1; };\n",
      "transformers/next.js": "export default (x) => x;\n",
    });
    try {
      const run = await newRun(fx);
      let running!: () => void;
      const started = new Promise<void>((r) => (running = r));
      const done = fx.engine.execute(run.id, { onEvent: (e) => e.kind === "block" && e.status === "running" && running() });
      await started;
      // another process (here: a plain write on the same database) cancels the run
      await fx.store.commit(fx.store.batch().transitionPipelineRun(run.id, "running", "cancelled"));
      (globalThis as { kilnGateOpen?: boolean }).kilnGateOpen = true;
      const final = await done;
      expect(final.status).toBe("cancelled");
      expect(existsSync(join(fx.root, outputPath("p", run.executionPartition, "next")))).toBe(false);
      const runs = await blockRuns(fx, run.id);
      expect(runs.next?.status).not.toBe("running");
      expect(runs.next?.status).not.toBe("completed");
    } finally {
      delete (globalThis as { kilnGateOpen?: boolean }).kilnGateOpen;
      fx.cleanup();
    }
  });
});

describe("dynamic blocks", () => {
  test("fan out to 100 items, each its own block run, bounded by block_run_limit, then reduce", async () => {
    const fx = await projectFixture({
      "kiln.yaml": `${IN_PROCESS}concurrency_config:\n  block_run_limit: 8\n`,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "ids", type: "data_loader", configuration: { dynamic: true } },
        { uuid: "square", type: "transformer", upstream_blocks: ["ids"] },
        { uuid: "plus_one", type: "transformer", upstream_blocks: ["square"], configuration: { reduce_output: true } },
        { uuid: "total", type: "data_exporter", upstream_blocks: ["plus_one"] },
      ]),
      "data_loaders/ids.js": "export default () => Array.from({ length: 100 }, (_, i) => i);\n",
      "transformers/square.js": `
        const g = globalThis;
        export default async (x, ctx) => {
          g.kilnLive = (g.kilnLive ?? 0) + 1;
          g.kilnPeak = Math.max(g.kilnPeak ?? 0, g.kilnLive);
          await new Promise((r) => setTimeout(r, 2));
          g.kilnLive--;
          return { index: ctx.dynamicBlockIndex, value: x * x };
        };\n`,
      "transformers/plus_one.js": "export default (item, ctx) => { if (item.index !== ctx.dynamicBlockIndex) throw new Error('wrong item'); return item.value + 1; };\n",
      "data_exporters/total.js": "export default (values) => ({ count: values.length, sum: values.reduce((a, b) => a + b, 0), first: values.slice(0, 3) });\n",
    });
    const g = globalThis as { kilnPeak?: number; kilnLive?: number };
    try {
      const run = await newRun(fx);
      const final = await fx.engine.execute(run.id);
      expect(final.status).toBe("completed");
      const runs = await blockRuns(fx, run.id);
      for (let i = 0; i < 100; i++) {
        expect(runs[`square:${i}`]?.status).toBe("completed");
        expect(runs[`plus_one:${i}`]?.status).toBe("completed");
      }
      expect(runs.square?.status).toBe("completed");
      expect(runs.plus_one?.status).toBe("completed");
      expect(Object.keys(runs).length).toBe(1 + 1 + 100 + 1 + 100 + 1);
      // sum of i^2 + 1 for i < 100
      expect(readOutput(fx, run, "total")).toEqual({ count: 100, sum: 328_350 + 100, first: [1, 2, 5] });
      expect(readOutput(fx, run, "plus_one")).toHaveLength(100);
      expect(g.kilnPeak).toBeGreaterThan(1);
      expect(g.kilnPeak).toBeLessThanOrEqual(8);
    } finally {
      delete g.kilnPeak;
      delete g.kilnLive;
      fx.cleanup();
    }
  });

  test("an item that fails marks its own downstream upstream_failed and fails the block", async () => {
    const fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata(
        [
          { uuid: "ids", type: "data_loader", configuration: { dynamic: true } },
          { uuid: "check", type: "transformer", upstream_blocks: ["ids"] },
          { uuid: "after", type: "transformer", upstream_blocks: ["check"] },
        ],
        "settings:\n  allow_blocks_to_fail: true\n",
      ),
      "data_loaders/ids.js": "export default () => [1, 2, 3];\n",
      "transformers/check.js": "export default (x) => { if (x === 2) throw new Error('two'); return x; };\n",
      "transformers/after.js": "export default (x) => x;\n",
    });
    try {
      const run = await newRun(fx);
      const final = await fx.engine.execute(run.id);
      expect(final.status).toBe("failed");
      const s = statusOf(await blockRuns(fx, run.id));
      expect(s).toMatchObject({
        "check:0": "completed",
        "check:1": "failed",
        "check:2": "completed",
        "after:0": "completed",
        "after:1": "upstream_failed",
        "after:2": "completed",
        check: "failed",
        after: "failed",
      });
    } finally {
      fx.cleanup();
    }
  });

  test("a dynamic block that returns no list fails with a message saying so", async () => {
    const fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "ids", type: "data_loader", configuration: { dynamic: true } },
        { uuid: "each", type: "transformer", upstream_blocks: ["ids"] },
      ]),
      "data_loaders/ids.js": "export default () => ({ not: 'a list' });\n",
      "transformers/each.js": "export default (x) => x;\n",
    });
    try {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("failed");
      expect((await blockRuns(fx, run.id)).ids?.error).toBe("dynamic block ids must return a list (one item per downstream run), got object");
    } finally {
      fx.cleanup();
    }
  });

  test("an empty list completes the per-item blocks with no items", async () => {
    const fx = await projectFixture({
      "kiln.yaml": IN_PROCESS,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "ids", type: "data_loader", configuration: { dynamic: true } },
        { uuid: "each", type: "transformer", upstream_blocks: ["ids"], configuration: { reduce_output: true } },
        { uuid: "count", type: "data_exporter", upstream_blocks: ["each"] },
      ]),
      "data_loaders/ids.js": "export default () => [];\n",
      "transformers/each.js": "export default (x) => x;\n",
      "data_exporters/count.js": "export default (xs) => xs.length;\n",
    });
    try {
      const run = await newRun(fx);
      expect((await fx.engine.execute(run.id)).status).toBe("completed");
      expect(readOutput(fx, run, "count")).toBe(0);
    } finally {
      fx.cleanup();
    }
  });
});

describe("variables and sensors", () => {
  test("precedence: project < pipeline < trigger < run < runtime", async () => {
    const fx = await projectFixture({
      "kiln.yaml": `${IN_PROCESS}variables:\n  a: project\n  b: project\n  c: project\n  d: project\n  e: project\n`,
      "pipelines/p/metadata.yaml": metadata(
        [{ uuid: "vars", type: "data_loader" }],
        "variables:\n  b: pipeline\n  c: pipeline\n  d: pipeline\n  e: pipeline\n",
      ),
      "data_loaders/vars.js": "export default (ctx) => ({ ...ctx.variables });\n",
    });
    try {
      const schedule = await fx.store.createPipelineSchedule({
        name: "t",
        pipelineUuid: "p",
        scheduleType: "api",
        variables: { c: "trigger", d: "trigger", e: "trigger" },
      });
      const run = await newRun(fx, "p", { pipelineScheduleId: schedule.id, variables: { d: "run", e: "run" } });
      await fx.engine.execute(run.id, { runtimeVariables: { e: "runtime" } });
      // Mage's runtime variables come on top (test/node/runtime-variables.test.ts checks them)
      expect(readOutput(fx, run, "vars")).toMatchObject({ a: "project", b: "pipeline", c: "trigger", d: "run", e: "runtime", trigger_name: "t" });
      expect(run.executionPartition).toBe(`${schedule.id}/20260501T000000`);
    } finally {
      fx.cleanup();
    }
  });

  test("a sensor is polled on its interval until it holds", async () => {
    const clock = new FakeClock();
    const fx = await projectFixture(
      {
        "kiln.yaml": IN_PROCESS,
        "pipelines/p/metadata.yaml": metadata([
          { uuid: "ready", type: "sensor", configuration: { poll_interval: 30 } },
          { uuid: "go", type: "transformer", upstream_blocks: ["ready"] },
        ]),
        "sensors/ready.js": "export default () => { globalThis.kilnPolls = (globalThis.kilnPolls ?? 0) + 1; return globalThis.kilnPolls >= 3; };\n",
        "transformers/go.js": "export default (ok) => ok;\n",
      },
      clock,
    );
    const g = globalThis as { kilnPolls?: number };
    try {
      const run = await newRun(fx);
      const done = fx.engine.execute(run.id);
      await clock.untilTimers(1);
      expect(g.kilnPolls).toBe(1);
      clock.advance(30_000);
      await clock.untilTimers(1);
      expect(g.kilnPolls).toBe(2);
      clock.advance(30_000);
      expect((await done).status).toBe("completed");
      expect(g.kilnPolls).toBe(3);
      expect(readOutput(fx, run, "go")).toBe(true);
    } finally {
      delete g.kilnPolls;
      fx.cleanup();
    }
  });
});

describe("executor limits", () => {
  test("concurrency_config.executor_limits bounds block runs per executor across runs", async () => {
    const fx = await projectFixture({
      "kiln.yaml": `${IN_PROCESS}concurrency_config:\n  executor_limits:\n    local: 2\n`,
      "pipelines/p/metadata.yaml": metadata([
        { uuid: "a", type: "data_loader" },
        { uuid: "b", type: "data_loader" },
        { uuid: "c", type: "data_loader" },
      ]),
      ...Object.fromEntries(
        ["a", "b", "c"].map((b) => [
          `data_loaders/${b}.js`,
          `const g = globalThis;
export default async () => {
  g.kilnExecLive = (g.kilnExecLive ?? 0) + 1;
  g.kilnExecPeak = Math.max(g.kilnExecPeak ?? 0, g.kilnExecLive);
  await new Promise((r) => setTimeout(r, 5));
  g.kilnExecLive--;
  return 1;
};\n`,
        ]),
      ),
    });
    const g = globalThis as { kilnExecPeak?: number; kilnExecLive?: number };
    try {
      const runs = await Promise.all([newRun(fx), newRun(fx), newRun(fx)]);
      const finals = await Promise.all(runs.map((r) => fx.engine.execute(r.id)));
      expect(finals.map((f) => f.status)).toEqual(["completed", "completed", "completed"]);
      expect(g.kilnExecPeak).toBe(2);
    } finally {
      delete g.kilnExecPeak;
      delete g.kilnExecLive;
      fx.cleanup();
    }
  });
});
