/**
 * Executors whose platform retries the block itself (Executor.retriesItself, as Cloudflare
 * Workflows' step retries do for the workflows executor): the engine starts the block run once,
 * arms no block timeout of its own (the platform enforces it per attempt), records the attempts
 * the executor reports as the block run's attempt, and retries only what is left after them.
 * The executor here is a real one over the in-process runner: it runs the block's attempts one
 * after another, as retry_config allows, and reports how many it made.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type BlockJob, type BlockRuntime, type ExecutionHandle, type ExecutionStatus, type Executor } from "@kiln/core";
import { effectiveRetryConfig } from "@kiln/core/engine";
import type { Project } from "@kiln/core/project";
import { InProcessRunner } from "@kiln/executor-local/in-process";
import { metadata, projectFixture, type Fixture } from "../helpers/fixtures.ts";

const fixtures: Fixture[] = [];
afterAll(() => {
  for (const fx of fixtures) fx.cleanup();
});

/** Runs a block's attempts in process, one after another, as its retry_config allows; counts its starts. */
function selfRetryingExecutor(runtime: BlockRuntime, project: Project): Executor & { starts: number } {
  const runner = new InProcessRunner(runtime);
  const runs = new Map<number, Promise<ExecutionStatus>>();
  let next = 1;
  const executor = {
    type: "self_retrying",
    retriesItself: true,
    starts: 0,
    async start(job: BlockJob): Promise<ExecutionHandle> {
      executor.starts++;
      const pipeline = project.pipelines.get(job.pipelineUuid)!;
      const block = pipeline.blocksByUuid.get(job.blockUuid)!;
      const retry = effectiveRetryConfig(project.settings.retryConfig, pipeline.retryConfig, block.retryConfig);
      const key = next++;
      runs.set(
        key,
        (async (): Promise<ExecutionStatus> => {
          for (let attempt = 1; ; attempt++) {
            const result = await runner.wait(runner.start({ ...job, attempt: job.attempt + attempt - 1 }));
            if (result.state === "completed") return { ...result, attempts: attempt };
            if (result.state === "failed" && attempt > retry.retries) return { ...result, attempts: attempt };
            if (result.state === "cancelled") return result;
          }
        })(),
      );
      return { key, transient: true };
    },
    wait: (handle: ExecutionHandle) => runs.get(Number(handle.key))!,
    status: (handle: ExecutionHandle) => Promise.race([runs.get(Number(handle.key))!, Promise.resolve<ExecutionStatus>({ state: "running" })]),
    async cancel() {},
  };
  return executor;
}

async function fixture(blocks: Array<Record<string, unknown>>, modules: Record<string, string>) {
  let executor!: ReturnType<typeof selfRetryingExecutor>;
  const fx = await projectFixture({ "kiln.yaml": "executor_type: self_retrying\n", "pipelines/p/metadata.yaml": metadata(blocks), ...modules }, undefined, {
    type: "self_retrying",
    make: (runtime) => (executor = selfRetryingExecutor(runtime, runtime.project)),
  });
  fixtures.push(fx);
  const run = (await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 0, 1) }))!;
  return { root: fx.root, store: fx.store, engine: fx.engine, executor, run };
}

/** A block that fails until attempt `succeedsOn` (never, with 0), each attempt taking `ms`; it notes each call in the project's `calls` file. */
function flakyBlock(succeedsOn: number, ms: number): string {
  return `import { appendFileSync } from "node:fs";
export default async function flaky(ctx) {
  appendFileSync(new URL("../calls", import.meta.url), ctx.attempt + "\\n");
  await new Promise((r) => setTimeout(r, ${ms}));
  if (${succeedsOn} === 0 || ctx.attempt < ${succeedsOn}) throw new Error("planned failure on attempt " + ctx.attempt);
  return { attempt: ctx.attempt };
}
`;
}

describe("an executor that retries by itself", () => {
  test("the block run is started once, completes on the executor's third attempt, and records it; no block timeout of the engine's cuts the attempts short", async () => {
    // each attempt (0.6 s) fits the 1-s timeout, the three together do not: only the executor's timeout applies
    const fx = await fixture([{ uuid: "flaky", type: "custom", timeout: 1, retry_config: { retries: 2, delay: 0 } }], { "custom/flaky.js": flakyBlock(3, 600) });
    const final = await fx.engine.execute(fx.run.id);
    expect(final.status).toBe("completed");
    const [row] = await fx.store.getBlockRuns(fx.run.id);
    expect([row?.status, row?.attempt, row?.error]).toEqual(["completed", 3, null]);
    expect(fx.executor.starts).toBe(1);
    expect(readFileSync(join(fx.root, "calls"), "utf8")).toBe("1\n2\n3\n");
  }, 30_000);

  test("a block that fails on every attempt the executor made is failed with that attempt, and the engine retries no more", async () => {
    const fx = await fixture([{ uuid: "flaky", type: "custom", retry_config: { retries: 1, delay: 0 } }], { "custom/flaky.js": flakyBlock(0, 10) });
    const final = await fx.engine.execute(fx.run.id);
    expect(final.status).toBe("failed");
    const [row] = await fx.store.getBlockRuns(fx.run.id);
    expect([row?.status, row?.attempt, row?.error]).toEqual(["failed", 2, "planned failure on attempt 2"]);
    expect(fx.executor.starts).toBe(1);
    expect(readFileSync(join(fx.root, "calls"), "utf8")).toBe("1\n2\n");
  }, 30_000);
});
