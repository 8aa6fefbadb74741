/**
 * Executor.release: once the engine has committed a block run's end, it tells the executor, so
 * what the executor kept for a kiln that restarts before that commit (the local executor's
 * result file) can go. The executor here is a real one over the in-process runner that, at each
 * release, reads the block run's row back: the end must be in the database by then, and each
 * execution is released once (a retried block run once per attempt, a cancelled one once stopped).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type BlockJob, type BlockRuntime, type ExecutionHandle, type ExecutionStatus, type Executor } from "@kiln/core";
import type { Store } from "@kiln/core/store";
import { InProcessRunner } from "@kiln/executor-local/in-process";
import { metadata, projectFixture, until, type Fixture } from "../helpers/fixtures.ts";

const fixtures: Fixture[] = [];
afterAll(() => {
  for (const fx of fixtures) fx.cleanup();
});

interface Released {
  blockUuid: string;
  attempt: number;
  /** The block run's status in the database when its execution was released. */
  storedStatus: string | undefined;
}

/** Runs blocks in process; at each release, notes the block run's stored status. */
function releasingExecutor(runtime: BlockRuntime, store: Store): Executor & { released: Released[]; cancelled: number } {
  const runner = new InProcessRunner(runtime);
  const jobs = new Map<string, BlockJob>();
  const executor = {
    type: "releasing",
    released: [] as Released[],
    cancelled: 0,
    async start(job: BlockJob): Promise<ExecutionHandle> {
      const handle = runner.start(job);
      jobs.set(String(handle.key), job);
      return handle;
    },
    wait: (handle: ExecutionHandle): Promise<ExecutionStatus> => runner.wait(handle),
    status: (handle: ExecutionHandle): Promise<ExecutionStatus> => runner.status(handle),
    async cancel(handle: ExecutionHandle) {
      executor.cancelled++;
      await runner.cancel(handle);
    },
    release(handle: ExecutionHandle) {
      const job = jobs.get(String(handle.key))!;
      // read now, synchronously after the call: a promise here would see later commits too
      const reading = store.getBlockRuns(job.pipelineRunId).then((rows) => rows.find((r) => r.blockUuid === job.blockUuid)?.status);
      void reading.then((storedStatus) => executor.released.push({ blockUuid: job.blockUuid, attempt: job.attempt, storedStatus }));
    },
  };
  return executor;
}

async function fixture(blocks: Array<Record<string, unknown>>, modules: Record<string, string>) {
  let executor!: ReturnType<typeof releasingExecutor>;
  const fx = await projectFixture({ "kiln.yaml": "executor_type: releasing\n", "pipelines/p/metadata.yaml": metadata(blocks), ...modules }, undefined, {
    type: "releasing",
    make: (runtime) => (executor = releasingExecutor(runtime, runtime.store!)),
  });
  fixtures.push(fx);
  const run = (await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 0, 1) }))!;
  return { store: fx.store, engine: fx.engine, executor, run };
}

describe("Executor.release", () => {
  test("each completed and failed execution is released once, after its end is in the database; a retried block run once per attempt", async () => {
    const fx = await fixture(
      [
        { uuid: "ok", type: "custom" },
        { uuid: "flaky", type: "custom", upstream_blocks: ["ok"], retry_config: { retries: 1, delay: 1 } },
      ],
      {
        "custom/ok.js": "export default function ok() { return 1; }\n",
        "custom/flaky.js": "export default function flaky(input, ctx) { if (ctx.attempt < 2) throw new Error('first attempt fails'); return 2; }\n",
      },
    );
    expect((await fx.engine.execute(fx.run.id)).status).toBe("completed");
    await until(() => fx.executor.released.length >= 3, `three releases (got ${JSON.stringify(fx.executor.released)})`, 2_000);
    await new Promise((r) => setTimeout(r, 100));
    const byRun = fx.executor.released.map((r) => [r.blockUuid, r.attempt, r.storedStatus]).sort((a, b) => String(a).localeCompare(String(b)));
    // the first attempt's failure was in the database when it was released (its retry waits a second)
    expect(byRun).toEqual([
      ["flaky", 1, "failed"],
      ["flaky", 2, "completed"],
      ["ok", 1, "completed"],
    ]);
  }, 30_000);

  test("a block run cancelled with its run is released once its execution has stopped", async () => {
    const fx = await fixture([{ uuid: "slow", type: "custom" }], {
      "custom/slow.js": "export default async function slow(ctx) { await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)); }\n",
    });
    const finished = fx.engine.execute(fx.run.id);
    for (let i = 0; i < 200; i++) {
      const [row] = await fx.store.getBlockRuns(fx.run.id);
      if (row?.status === "running") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(fx.engine.cancel(fx.run.id)).toBe(true);
    expect((await finished).status).toBe("cancelled");
    await until(() => fx.executor.released.length >= 1, "the cancelled execution's release", 2_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(fx.executor.cancelled).toBeGreaterThanOrEqual(1);
    expect(fx.executor.released).toEqual([{ blockUuid: "slow", attempt: 1, storedStatus: "cancelled" }]);
  }, 30_000);
});
