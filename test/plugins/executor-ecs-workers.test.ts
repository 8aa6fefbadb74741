/**
 * The ECS executor inside Cloudflare's workerd: a Worker bundled by `wrangler deploy --dry-run`
 * (no nodejs_compat flag: fetch and WebCrypto only) starts, polls, cancels and reads the logs
 * of tasks on the fake ECS, credentials coming from the Worker's bindings. Each request builds
 * a fresh executor from the stored handle, as a Worker invocation would.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { BlockJob, ExecutionStatus, JsonObject } from "@kiln/core";
import { startExecutorWorker, workerJob } from "../helpers/executor-worker.ts";
import { FakeEcs } from "../helpers/fake-ecs.ts";

const KEY = { accessKeyId: "AKIAKILNWORKERKEY001", secretAccessKey: "worker/secret+key/0123456789abcdefghijk" };
const fake = new FakeEcs({
  credentials: [KEY],
  clusters: ["edge"],
  taskDefinitions: [{ family: "kiln", networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], containers: [{ name: "kiln", awslogs: { group: "/ecs/kiln", streamPrefix: "kiln" } }] }],
}).start();

const worker = await startExecutorWorker({
  name: "ecs",
  module: "plugins/executor-ecs/src/index.ts",
  importClause: "{ ecsExecutor as factory }",
  bindings: { AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey, AWS_REGION: fake.region },
});
const { call, settle } = worker;

afterAll(async () => {
  await worker.dispose();
  fake.stop();
});

function job(script: string, blockRunId: number): BlockJob {
  // the fake runs the command as a local process: a shell stands in for kiln here
  return workerJob("ecs", { cluster: "edge", task_definition: "kiln", subnets: ["subnet-edge"], endpoint: fake.url, command: ["sh", "-c", script], log_group: "/ecs/kiln", log_stream_prefix: "kiln" }, blockRunId);
}

describe("executor-ecs in workerd", () => {
  test("starts a task, reads its exit code and its CloudWatch log", async () => {
    const handle = (await call("start", { job: job("echo started in ECS from a Worker; exit 3", 1) })) as JsonObject;
    const runTask = fake.requestsOf("RunTask").at(-1)!;
    expect(runTask.accessKeyId).toBe(KEY.accessKeyId);
    expect(runTask.outcome).toBe("200");
    expect(await settle(handle)).toMatchObject({ state: "failed", error: expect.stringContaining("exit code 3") });
    expect(await call("logs", { handle })).toEqual(["started in ECS from a Worker"]);
    expect(fake.refusals).toEqual([]);
  }, 60_000);

  test("cancels a running task, and a later invocation reads it as cancelled", async () => {
    const handle = (await call("start", { job: job("sleep 60", 2) })) as JsonObject;
    const task = fake.tasks.get(String(handle.taskArn))!;
    for (let i = 0; i < 200 && task.lastStatus !== "RUNNING"; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await call("status", { handle })) as ExecutionStatus).toEqual({ state: "running" });
    await call("cancel", { handle });
    expect(await settle(handle)).toEqual({ state: "cancelled" });
    expect(task.container!.state).toBe("exited");
  }, 60_000);
});
