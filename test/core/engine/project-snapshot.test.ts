/** A run keeps the project it started with: setProject changes runs started afterwards only. */
import { expect, test } from "bun:test";
import { FakeClock } from "@kiln/core";
import { type Project } from "@kiln/core/project";
import { metadata, projectFixture, settle } from "../../helpers/fixtures.ts";

test("a run in flight keeps its project's executor type and retries after setProject; the next run takes the new project", async () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const fx = await projectFixture(
    {
      "kiln.yaml": "executor_config:\n  in_process: true\nretry_config:\n  retries: 1\n  delay: 10\n",
      "pipelines/p/metadata.yaml": metadata([{ uuid: "flaky", type: "data_loader" }]),
      "data_loaders/flaky.js": "export default (ctx) => { if (ctx.attempt < 2) throw new Error(`try ${ctx.attempt}`); return ctx.attempt; };\n",
    },
    clock,
  );
  try {
    const first = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 0, 1) });
    if (!first) throw new Error("run not created");
    const done = fx.engine.execute(first.id);
    // attempt 1 failed; its retry waits on the fake clock
    await clock.untilTimers(1);
    await settle();
    expect((await fx.store.getBlockRuns(first.id))[0]).toMatchObject({ status: "failed", attempt: 1 });

    // a reload that would fail the retry on both counts: no retries left, an executor not registered
    const reloaded: Project = {
      ...fx.project,
      settings: { ...fx.project.settings, executorType: "nowhere", retryConfig: { retries: 0 } },
    };
    fx.engine.setProject(reloaded);
    clock.advance(10_000);
    const final = await done;
    expect(final.status).toBe("completed");
    expect((await fx.store.getBlockRuns(first.id))[0]).toMatchObject({ status: "completed", attempt: 2, executorType: "local" });

    const second = await fx.store.createPipelineRun({ pipelineUuid: "p", executionDate: Date.UTC(2026, 0, 2) });
    if (!second) throw new Error("run not created");
    const next = await fx.engine.execute(second.id);
    expect(next.status).toBe("failed");
    const [row] = await fx.store.getBlockRuns(second.id);
    expect(row).toMatchObject({ status: "failed", attempt: 1, executorType: "nowhere" });
    expect(row?.error).toContain('executor_type "nowhere" is not registered');
  } finally {
    fx.cleanup();
  }
});
