/**
 * triggerPipeline (Mage's trigger_pipeline): from a script and from inside a block (in process
 * and in a block's own process), waiting for the run, error_on_failure, poll_timeout, and
 * against a remote server over HTTP.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TRIGGER_PIPELINE_SCHEDULE, triggerPipeline, TriggerPipelineError, type JsonObject, type PipelineRun } from "@kiln/core";
import { projectFixture } from "../helpers/fixtures.ts";
import { serverFixture, type ServerFixture } from "../helpers/server.ts";

const FILES: Record<string, string> = {
  "kiln.yaml": "executor_config:\n  in_process: true\n",
  "pipelines/child/metadata.yaml": "blocks:\n  - uuid: double\n    type: data_loader\n",
  "data_loaders/double.js": "export default function double(ctx) { return { doubled: Number(ctx.variables.n) * 2 }; }\n",
  "pipelines/failing_child/metadata.yaml": "blocks:\n  - uuid: explode\n    type: data_loader\n",
  "data_loaders/explode.js": "export default function explode() { throw new Error('the child broke'); }\n",
  // a block that runs `child` and waits for it, as Mage's trigger_pipeline(check_status=True)
  "pipelines/parent/metadata.yaml": "blocks:\n  - uuid: kick\n    type: data_exporter\n",
  "data_exporters/kick.js": `export default async function kick(ctx) {
  const run = await ctx.triggerPipeline("child", { variables: { n: ctx.variables.n ?? 21 }, checkStatus: true, pollInterval: 0.02, errorOnFailure: true });
  return { childRunId: run.id, childStatus: run.status };
}
`,
  // the same from a block in its own process (kiln run-block, the database from KILN_DATABASE_URL)
  "pipelines/parent_process/metadata.yaml": "executor_config:\n  in_process: false\nblocks:\n  - uuid: kick_from_process\n    type: data_exporter\n",
  "data_exporters/kick_from_process.js": `export default async function kick(ctx) {
  const run = await ctx.triggerPipeline("child", { variables: { n: 50 }, checkStatus: true, pollInterval: 0.02, scheduleName: "from_a_process" });
  return { childRunId: run.id, childStatus: run.status };
}
`,
  "pipelines/parent_of_failure/metadata.yaml": "blocks:\n  - uuid: kick_failing\n    type: data_exporter\n",
  "data_exporters/kick_failing.js": `export default async function kick(ctx) {
  await ctx.triggerPipeline("failing_child", { checkStatus: true, pollInterval: 0.02, errorOnFailure: true });
  return "not reached";
}
`,
};

let s: ServerFixture;
beforeAll(async () => {
  s = await serverFixture(FILES);
});
afterAll(() => s.close());

const local = () => ({ store: s.store, project: s.project });

async function outputOf(run: PipelineRun, block: string): Promise<unknown> {
  return s.runtime.outputs.read(run.pipelineUuid, run.executionPartition, block);
}

async function scheduleNamed(pipelineUuid: string, name: string): Promise<Array<Record<string, unknown>>> {
  const rs = await s.client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE pipeline_uuid = ? AND name = ?", args: [pipelineUuid, name] });
  return rs.rows as unknown as Array<Record<string, unknown>>;
}

describe("triggerPipeline on a project's database", () => {
  test("a block triggers another pipeline and waits for it (checkStatus), through an api trigger made once", async () => {
    const parent = await triggerPipeline(local(), "parent", { variables: { n: 21 }, checkStatus: true, pollInterval: 0.02, errorOnFailure: true });
    expect(parent.status).toBe("completed");
    const kicked = (await outputOf(parent, "kick")) as { childRunId: number; childStatus: string };
    // the block saw its child completed before it returned
    expect(kicked.childStatus).toBe("completed");
    const child = await s.store.getPipelineRun(kicked.childRunId);
    expect(child?.pipelineUuid).toBe("child");
    expect(child?.variables).toEqual({ n: 21 });
    expect(await outputOf(child as PipelineRun, "double")).toEqual({ doubled: 42 });

    const [schedule] = await scheduleNamed("child", TRIGGER_PIPELINE_SCHEDULE);
    expect(schedule).toMatchObject({ schedule_type: "api", status: "active" });
    expect(child?.pipelineScheduleId).toBe(Number(schedule?.id));

    // a second call goes through the same trigger
    const again = await triggerPipeline(local(), "child", { variables: { n: 1 } });
    expect(again.status).toBe("initial");
    expect(again.pipelineScheduleId).toBe(Number(schedule?.id));
    expect(await scheduleNamed("child", TRIGGER_PIPELINE_SCHEDULE)).toHaveLength(1);
  });

  test("from a block in its own process (kiln run-block), through a named trigger", async () => {
    const parent = await triggerPipeline(local(), "parent_process", { checkStatus: true, pollInterval: 0.02, errorOnFailure: true });
    expect(parent.status).toBe("completed");
    const [blockRun] = await s.store.getBlockRuns(parent.id);
    expect(blockRun?.executorHandle?.mode).toBe("process");
    const kicked = (await outputOf(parent, "kick_from_process")) as { childRunId: number; childStatus: string };
    expect(kicked.childStatus).toBe("completed");
    const child = (await s.store.getPipelineRun(kicked.childRunId)) as PipelineRun;
    expect(await outputOf(child, "double")).toEqual({ doubled: 100 });
    const [named] = await scheduleNamed("child", "from_a_process");
    expect(child.pipelineScheduleId).toBe(Number(named?.id));
  });

  test("errorOnFailure: a failing child fails the block that triggered it; without it, the failed run is returned", async () => {
    const parent = await triggerPipeline(local(), "parent_of_failure", { checkStatus: true, pollInterval: 0.02 });
    expect(parent.status).toBe("failed");
    const [blockRun] = await s.store.getBlockRuns(parent.id);
    expect(blockRun?.status).toBe("failed");
    expect(blockRun?.error).toMatch(/pipeline run \d+ of failing_child failed/);

    const failed = await triggerPipeline(local(), "failing_child", { checkStatus: true, pollInterval: 0.02 });
    expect(failed.status).toBe("failed");
    let thrown: unknown = null;
    await triggerPipeline(local(), "failing_child", { checkStatus: true, pollInterval: 0.02, errorOnFailure: true }).catch((e: unknown) => (thrown = e));
    expect(thrown).toBeInstanceOf(TriggerPipelineError);
    expect((thrown as TriggerPipelineError).pipelineRun?.status).toBe("failed");
    expect((thrown as Error).message).toMatch(/of failing_child failed/);
  });

  test("an unknown pipeline or a bad poll setting throws and writes nothing", async () => {
    const count = async () => Number((await s.client.execute("SELECT (SELECT count(*) FROM pipeline_runs) + (SELECT count(*) FROM pipeline_schedules) AS n")).rows[0]?.n);
    const before = await count();
    await expect(triggerPipeline(local(), "nope")).rejects.toThrow(/no pipeline nope/);
    await expect(triggerPipeline(local(), "child", { pollInterval: -1 })).rejects.toThrow(/pollInterval/);
    await expect(triggerPipeline(local(), "child", { pollTimeout: 0 })).rejects.toThrow(/pollTimeout/);
    expect(await count()).toBe(before);
  });
});

describe("waiting without a scheduler", () => {
  test("pollTimeout throws with the run, which stays waiting; an aborted signal stops the wait", async () => {
    // no scheduler here: the run is created and never started
    const fx = await projectFixture(FILES);
    try {
      const target = { store: fx.store, project: fx.project };
      let thrown: unknown = null;
      await triggerPipeline(target, "child", { checkStatus: true, pollInterval: 0.01, pollTimeout: 0.1 }).catch((e: unknown) => (thrown = e));
      expect(thrown).toBeInstanceOf(TriggerPipelineError);
      expect((thrown as Error).message).toMatch(/did not end within 0.1 s \(it is initial\)/);
      const run = (thrown as TriggerPipelineError).pipelineRun as PipelineRun;
      expect((await fx.store.getPipelineRun(run.id))?.status).toBe("initial");

      const controller = new AbortController();
      const waiting = triggerPipeline(target, "child", { checkStatus: true, pollInterval: 3600, signal: controller.signal }).catch((e: unknown) => e);
      setTimeout(() => controller.abort(), 20);
      const stopped = await waiting;
      expect(stopped).toBeInstanceOf(TriggerPipelineError);
      expect((stopped as Error).message).toMatch(/aborted/);

      const statuses: string[] = [];
      await triggerPipeline(target, "child", { log: (m) => statuses.push(m) });
      expect(statuses).toEqual([expect.stringMatching(/^pipeline run \d+ of child: initial$/)]);
    } finally {
      fx.cleanup();
    }
  });
});

describe("triggerPipeline against a remote server", () => {
  const remote = (role: "editor" | "viewer" = "editor") => ({ url: `${s.url}/`, apiKey: s.keys[role] });

  test("runs the pipeline over HTTP and waits for it", async () => {
    const run = await triggerPipeline(remote(), "child", { variables: { n: 5 }, checkStatus: true, pollInterval: 0.02, errorOnFailure: true });
    expect(run.status).toBe("completed");
    expect(run.variables).toEqual({ n: 5 });
    expect(typeof run.completedAt).toBe("number");
    const stored = (await s.store.getPipelineRun(run.id)) as PipelineRun;
    expect(stored.status).toBe("completed");
    expect(await outputOf(stored, "double")).toEqual({ doubled: 10 });
    // the trigger the local calls made is found over the API, not made again
    const [schedule] = await scheduleNamed("child", TRIGGER_PIPELINE_SCHEDULE);
    expect(run.pipelineScheduleId).toBe(Number(schedule?.id));
    expect(await scheduleNamed("child", TRIGGER_PIPELINE_SCHEDULE)).toHaveLength(1);
  });

  test("creates the named trigger over HTTP when missing; errorOnFailure throws on a failed run", async () => {
    const run = await triggerPipeline(remote(), "child", { variables: { n: 7 }, scheduleName: "remote_made", checkStatus: true, pollInterval: 0.02 });
    expect(run.status).toBe("completed");
    const [made] = await scheduleNamed("child", "remote_made");
    expect(made).toMatchObject({ schedule_type: "api", status: "active" });
    expect(run.pipelineScheduleId).toBe(Number(made?.id));

    let thrown: unknown = null;
    await triggerPipeline(remote(), "failing_child", { checkStatus: true, pollInterval: 0.02, errorOnFailure: true }).catch((e: unknown) => (thrown = e));
    expect(thrown).toBeInstanceOf(TriggerPipelineError);
    expect((thrown as TriggerPipelineError).pipelineRun?.status).toBe("failed");
  });

  test("the server's refusals come back as TriggerPipelineErrors with the status", async () => {
    await expect(triggerPipeline(remote("viewer"), "child", { scheduleName: "viewer_made" })).rejects.toThrow(/HTTP 403/);
    await expect(triggerPipeline({ url: s.url, apiKey: "kiln_not_a_key" }, "child")).rejects.toThrow(/HTTP 401/);
    await expect(triggerPipeline(remote(), "nope")).rejects.toThrow(/HTTP 404/);
    await expect(triggerPipeline({ url: "http://127.0.0.1:1", apiKey: "x" }, "child")).rejects.toThrow(TriggerPipelineError);
    expect(await scheduleNamed("child", "viewer_made")).toHaveLength(0);
  });

  test("a fetch can be injected (e.g. a Worker's service binding)", async () => {
    const seen: string[] = [];
    const recording: typeof fetch = Object.assign(
      (input: string | URL | Request, init?: RequestInit) => {
        seen.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
      { preconnect: fetch.preconnect },
    );
    const run = await triggerPipeline({ ...remote(), fetch: recording }, "child", { variables: { n: 1 } as JsonObject });
    expect(run.status).toBe("initial");
    expect(seen).toEqual(["GET /api/pipelines/child/pipeline_schedules", `POST /api/pipeline_schedules/${run.pipelineScheduleId}/pipeline_runs`]);
  });
});
