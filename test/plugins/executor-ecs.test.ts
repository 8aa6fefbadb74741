/**
 * The ECS executor against a fake ECS and CloudWatch Logs on 127.0.0.1 (test/helpers/fake-ecs.ts)
 * that verifies every request's SigV4 signature and runs each task's container as a local
 * `kiln run-block` process: the conformance suite, then request shapes, credentials, config
 * checks and the ways a task ends without an exit code.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ECSClient, StopTaskCommand } from "@aws-sdk/client-ecs";
import { logPath, type ExecutionStatus, type Executor, type ExecutorContext, type JsonObject } from "@kiln/core";
import { runExecutorConformance, settleExecution } from "@kiln/core/conformance";
import { databaseOutputStore } from "@kiln/core/output-store";
import { CANCEL_REASON, ecsExecutor, logStreamName, parseEcsConfig, runTaskInput } from "@kiln/executor-ecs";
import { conformanceProject } from "../helpers/conformance.ts";
import { CLI_MAIN } from "../helpers/fixtures.ts";
import { FakeEcs } from "../helpers/fake-ecs.ts";
import { startLibsqlServer } from "../helpers/libsql-server.ts";

const KEY = { accessKeyId: "AKIAKILNTESTKEY00001", secretAccessKey: "kiln+test/secret+key/0123456789abcdefghij" };
const TEMPORARY = { accessKeyId: "ASIAKILNTESTKEY00002", secretAccessKey: "temporary/secret+key/abcdefghij0123456789", sessionToken: "kiln-test-session-token//+=" };
const LOG_GROUP = "/ecs/kiln-blocks";
const LOG_PREFIX = "kiln";

const fake = new FakeEcs({
  credentials: [KEY, TEMPORARY],
  clusters: ["default", "kiln-test"],
  taskDefinitions: [
    {
      family: "kiln-blocks",
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE", "EC2"],
      // the image's own command; kiln overrides it per block run
      containers: [{ name: "kiln", command: ["kiln", "--version"], awslogs: { group: LOG_GROUP, streamPrefix: LOG_PREFIX } }],
    },
    {
      family: "kiln-bridge",
      networkMode: "bridge",
      requiresCompatibilities: ["EC2"],
      containers: [{ name: "sidecar", command: ["true"] }, { name: "runner", command: ["kiln", "--version"] }],
    },
    {
      family: "kiln-unpullable",
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      containers: [{ name: "kiln" }],
      startFailure: "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/kiln:missing: not found",
    },
  ],
  // one event per page, so logs() has to follow nextForwardToken
  logPageSize: 1,
}).start();
const sqld = await startLibsqlServer();
// registered before anything else can throw at load, so the servers never outlive a failed setup
afterAll(() => {
  fake.stop();
  sqld.stop();
});

const BASE_CONFIG: JsonObject = {
  cluster: "kiln-test",
  task_definition: "kiln-blocks",
  subnets: ["subnet-0a1b2c3d"],
  security_groups: ["sg-0kiln"],
  assign_public_ip: true,
  region: fake.region,
  endpoint: fake.url,
  log_group: LOG_GROUP,
  log_stream_prefix: LOG_PREFIX,
  env: { KILN_TEST_EXTRA: "from executor_config" },
};

// blocks run "remotely": the database is a libSQL server and outputs live in it
const fixture = await conformanceProject({
  executorType: "ecs",
  executorConfig: BASE_CONFIG,
  databaseUrl: sqld.url,
  settings: { output_store: { type: "database" } },
  outputs: (project, client) => databaseOutputStore(client, { maxBytes: 1_000_000 }),
});

afterAll(() => fixture.close());

function context(env: Record<string, string | undefined> = { AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey }): ExecutorContext {
  return { projectRoot: fixture.root, blockEnv: { KILN_DATABASE_URL: sqld.url }, env, logs: { append() {} } };
}

/** A job for `block` with `config` over the project's, and the project where the fake container finds it. */
async function job(block: "succeeds" | "fails" | "sleeps" | "logs", config: JsonObject = {}) {
  const made = await fixture.harness.job(block);
  made.executorConfig = { ...made.executorConfig, project_root: fixture.root, ...config };
  return made;
}

/** Polls status until the block run ends. */
const settle = (executor: Executor, handle: JsonObject, limitMs = 30_000): Promise<ExecutionStatus> => settleExecution(executor, handle, limitMs, 50);

describe("executor-ecs: conformance against the fake ECS", () => {
  runExecutorConformance(
    () => ecsExecutor(context()),
    {
      ...fixture.harness,
      job: (block) => job(block),
      stopped: async (handle) => fake.tasks.get(String(handle.taskArn))?.lastStatus === "STOPPED",
      invalidConfig: { config: { ...BASE_CONFIG, task_definition: undefined }, field: "task_definition" },
      settleMs: 30_000,
    },
    test,
  );
});

describe("executor-ecs: requests", () => {
  test("RunTask carries the FARGATE network configuration, the container overrides, tags and startedBy", async () => {
    const executor = ecsExecutor(context());
    const made = await job("succeeds", { cpu: 512, memory: 1024 });
    const handle = await executor.start(made);
    const request = fake.requestsOf("RunTask").at(-1)!;
    expect(request.accessKeyId).toBe(KEY.accessKeyId);
    const body = request.body as {
      cluster: string;
      taskDefinition: string;
      launchType: string;
      startedBy: string;
      clientToken: string;
      networkConfiguration: unknown;
      tags: { key: string; value: string }[];
      overrides: { containerOverrides: { name: string; command: string[]; environment: { name: string; value: string }[]; cpu: number; memory: number }[] };
    };
    expect(body.cluster).toBe("kiln-test");
    expect(body.taskDefinition).toBe("kiln-blocks");
    expect(body.launchType).toBe("FARGATE");
    expect(body.startedBy).toBe("kiln");
    expect(body.clientToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.networkConfiguration).toEqual({ awsvpcConfiguration: { subnets: ["subnet-0a1b2c3d"], securityGroups: ["sg-0kiln"], assignPublicIp: "ENABLED" } });
    const override = body.overrides.containerOverrides[0]!;
    expect(body.overrides.containerOverrides).toHaveLength(1);
    expect(override.name).toBe("kiln");
    expect(override.command).toEqual(["kiln", "run-block", fixture.root, "conformance", "succeeds", "--pipeline-run-id", String(made.pipelineRunId), "--block-run-id", String(made.blockRunId)]);
    expect(override.cpu).toBe(512);
    expect(override.memory).toBe(1024);
    const env = Object.fromEntries(override.environment.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      KILN_DATABASE_URL: sqld.url,
      KILN_BLOCK_LOGS: "stdout",
      KILN_BLOCK_RUN_ID: String(made.blockRunId),
      KILN_PIPELINE_RUN_ID: String(made.pipelineRunId),
      KILN_TEST_EXTRA: "from executor_config",
    });
    // no AWS credential travels into the task
    expect(Object.keys(env).filter((name) => name.startsWith("AWS_"))).toEqual([]);
    expect(Object.fromEntries(body.tags.map((t) => [t.key, t.value]))).toEqual({
      "kiln.pipeline-uuid": "conformance",
      "kiln.pipeline-run-id": String(made.pipelineRunId),
      "kiln.block-run-id": String(made.blockRunId),
      "kiln.attempt": String(made.attempt),
    });
    // the handle holds where the task is, and nothing secret
    expect(handle).toEqual({ cluster: `arn:aws:ecs:${fake.region}:${fake.accountId}:cluster/kiln-test`, taskArn: expect.stringContaining(":task/kiln-test/"), region: fake.region, endpoint: fake.url, container: "kiln", logGroup: LOG_GROUP, logStreamPrefix: LOG_PREFIX });
    expect(JSON.stringify(handle)).not.toContain(KEY.secretAccessKey);
    expect((await settle(executor, handle)).state).toBe("completed");
  }, 60_000);

  test("EC2 on a bridge-mode task definition sends no network configuration and overrides the named container", async () => {
    const executor = ecsExecutor(context());
    const made = await job("succeeds", { launch_type: "EC2", task_definition: "kiln-bridge:1", container_name: "runner", subnets: undefined, security_groups: undefined, assign_public_ip: undefined, log_group: undefined, log_stream_prefix: undefined });
    const handle = await executor.start(made);
    const body = fake.requestsOf("RunTask").at(-1)!.body as { launchType: string; networkConfiguration?: unknown; overrides: { containerOverrides: { name: string }[] } };
    expect(body.launchType).toBe("EC2");
    expect(body.networkConfiguration).toBeUndefined();
    expect(body.overrides.containerOverrides.map((o) => o.name)).toEqual(["runner"]);
    expect(await settle(executor, handle)).toEqual({ state: "completed", metrics: { ecs_task_arn: String(handle.taskArn), exit_code: 0 } });
    // no log settings: logs() says so in one line instead of failing
    const lines: string[] = [];
    for await (const line of executor.logs!(handle)) lines.push(line);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("log_group");
  }, 60_000);

  test("logs() follows CloudWatch's pages from the awslogs stream <prefix>/<container>/<task id>", async () => {
    const executor = ecsExecutor(context());
    const handle = await executor.start(await job("logs"));
    expect((await settle(executor, handle)).state).toBe("completed");
    const lines: string[] = [];
    for await (const line of executor.logs!(handle)) lines.push(line);
    const task = fake.tasks.get(String(handle.taskArn))!;
    const expected = task.container!.output.split("\n").filter((line, i, all) => i < all.length - 1 || line !== "");
    expect(lines).toEqual(expected);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.some((line) => line.includes("conformance log line"))).toBe(true);
    const requests = fake.requestsOf("GetLogEvents").filter((r) => r.body.logStreamName === logStreamName(LOG_PREFIX, "kiln", String(handle.taskArn)));
    // a page per line, then one more call that answers the token it was given: the stream's end
    expect(requests.length).toBe(lines.length + 1);
    expect(requests.every((r) => r.service === "logs" && r.body.logGroupName === LOG_GROUP && r.accessKeyId === KEY.accessKeyId)).toBe(true);
  }, 60_000);

  test("temporary credentials sign with AWS_SESSION_TOKEN", async () => {
    const executor = ecsExecutor(context({ AWS_ACCESS_KEY_ID: TEMPORARY.accessKeyId, AWS_SECRET_ACCESS_KEY: TEMPORARY.secretAccessKey, AWS_SESSION_TOKEN: TEMPORARY.sessionToken }));
    const handle = await executor.start(await job("succeeds"));
    expect(fake.requestsOf("RunTask").at(-1)!.accessKeyId).toBe(TEMPORARY.accessKeyId);
    expect((await settle(executor, handle)).state).toBe("completed");
  }, 60_000);
});

describe("executor-ecs: credentials", () => {
  test("a wrong secret key fails RunTask clearly, the fake having refused the signature", async () => {
    const refusalsBefore = fake.refusals.length;
    const tasksBefore = fake.tasks.size;
    const wrongSecret = "not+the/right+secret/key0000000000000000";
    const executor = ecsExecutor(context({ AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: wrongSecret }));
    const error = await executor.start(await job("succeeds")).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toContain("RunTask failed: InvalidSignatureException");
    expect(error!.message).toContain("AWS_SECRET_ACCESS_KEY");
    expect(error!.message).not.toContain(wrongSecret);
    expect(error!.message).not.toContain(KEY.secretAccessKey);
    // refused once (InvalidSignatureException is not retried), and no task was started
    expect(fake.refusals.slice(refusalsBefore)).toEqual([{ action: "RunTask", type: "InvalidSignatureException", message: expect.stringContaining("signature we calculated does not match") }]);
    expect(fake.tasks.size).toBe(tasksBefore);
  }, 30_000);

  test("a refused signature's error keeps no session token (AWS's message quotes the canonical request)", async () => {
    const wrongSecret = "wrong/temporary+secret/0000000000000000000";
    const executor = ecsExecutor(context({ AWS_ACCESS_KEY_ID: TEMPORARY.accessKeyId, AWS_SECRET_ACCESS_KEY: wrongSecret, AWS_SESSION_TOKEN: TEMPORARY.sessionToken }));
    const error = await executor.start(await job("succeeds")).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain("RunTask failed: InvalidSignatureException");
    // the fake's refusal did quote the token, as AWS's does
    expect(fake.refusals.at(-1)?.message).toContain(TEMPORARY.sessionToken);
    expect(error!.message).not.toContain(TEMPORARY.sessionToken);
    expect(error!.message).not.toContain(wrongSecret);
  }, 30_000);

  test("an unknown access key is refused as UnrecognizedClientException", async () => {
    const executor = ecsExecutor(context({ AWS_ACCESS_KEY_ID: "AKIAUNKNOWN000000000", AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey }));
    const handle = { cluster: "kiln-test", taskArn: `arn:aws:ecs:${fake.region}:${fake.accountId}:task/kiln-test/0`, region: fake.region, endpoint: fake.url, container: "kiln" };
    await expect(executor.status(handle)).rejects.toThrow(/DescribeTasks failed: UnrecognizedClientException.*AWS_ACCESS_KEY_ID/);
    expect(fake.refusals.at(-1)).toMatchObject({ action: "DescribeTasks", type: "UnrecognizedClientException" });
  }, 30_000);

  test("missing credentials name the environment variables, without a request", async () => {
    const before = fake.requests.length;
    const executor = ecsExecutor(context({}));
    await expect(executor.start(await job("succeeds"))).rejects.toThrow(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    expect(fake.requests.length).toBe(before);
  });
});

describe("executor-ecs: tasks that end without an exit code, or vanish", () => {
  test("a task whose image cannot be pulled fails with ECS's stop reason", async () => {
    const executor = ecsExecutor(context());
    const handle = await executor.start(await job("succeeds", { task_definition: "kiln-unpullable" }));
    const status = await settle(executor, handle);
    expect(status.state).toBe("failed");
    if (status.state === "failed") {
      expect(status.error).toContain("TaskFailedToStart");
      expect(status.error).toContain("CannotPullContainerError");
      expect(status.error).not.toContain("exit code");
    }
  }, 30_000);

  test("a task ECS no longer knows fails, saying it is missing", async () => {
    const executor = ecsExecutor(context());
    const handle = await executor.start(await job("succeeds"));
    expect((await settle(executor, handle)).state).toBe("completed");
    fake.forget(String(handle.taskArn));
    const status = await executor.status(handle);
    expect(status.state).toBe("failed");
    if (status.state === "failed") expect(status.error).toMatch(/missing from cluster .*MISSING/);
    // cancelling it is not an error: there is nothing left to stop
    await executor.cancel(handle);
  }, 60_000);

  test("a task stopped by someone else fails with their reason; kiln's own stop reads as cancelled", async () => {
    const executor = ecsExecutor(context());
    const handle = await executor.start(await job("sleeps"));
    const task = fake.tasks.get(String(handle.taskArn))!;
    for (let i = 0; i < 200 && task.lastStatus !== "RUNNING"; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(task.lastStatus).toBe("RUNNING");
    // another operator's StopTask, with their own reason: the container is killed (exit code 143)
    const operator = new ECSClient({ region: fake.region, endpoint: fake.url, credentials: KEY });
    await operator.send(new StopTaskCommand({ cluster: "kiln-test", task: String(handle.taskArn), reason: "Scaling activity initiated by deployment" }));
    const status = await settle(executor, handle);
    expect(status.state).toBe("failed");
    if (status.state === "failed") {
      expect(status.error).toMatch(/exit code (143|137)/);
      expect(status.error).toContain("Scaling activity initiated by deployment");
    }
  }, 60_000);

  test("a cancel of a running task stops its container through StopTask, and reads as cancelled", async () => {
    const executor = ecsExecutor(context());
    const handle = await executor.start(await job("sleeps"));
    const task = fake.tasks.get(String(handle.taskArn))!;
    for (let i = 0; i < 200 && task.lastStatus !== "RUNNING"; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(task.lastStatus).toBe("RUNNING");
    await executor.cancel(handle);
    expect(await settle(executor, handle)).toEqual({ state: "cancelled" });
    expect(task.container!.state).toBe("exited");
    expect(task.stoppedReason).toBe(CANCEL_REASON);
    // a second cancel (another scheduler's, say) changes nothing
    await executor.cancel(handle);
    expect(await ecsExecutor(context()).status(handle)).toEqual({ state: "cancelled" });
  }, 30_000);

  test("a cancel while the task is still provisioning stops it before any container runs", async () => {
    const executor = ecsExecutor(context());
    const handle = await executor.start(await job("sleeps"));
    await executor.cancel(handle);
    const stop = fake.requestsOf("StopTask").at(-1)!;
    expect(stop.body).toEqual({ cluster: handle.cluster, task: handle.taskArn, reason: CANCEL_REASON });
    expect(await settle(executor, handle)).toEqual({ state: "cancelled" });
  }, 30_000);
});

describe("executor-ecs: validateConfig", () => {
  const executor = ecsExecutor(context({ AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey }));
  const check = (config: JsonObject) => executor.validateConfig!({ ...BASE_CONFIG, ...config });
  test("a full config passes", () => {
    expect(check({})).toBeNull();
  });
  test.each([
    [{ task_definition: undefined }, "executor_config.task_definition"],
    [{ task_definition: "" }, "executor_config.task_definition"],
    [{ launch_type: "LAMBDA" }, "executor_config.launch_type"],
    [{ subnets: [] }, "executor_config.subnets"],
    [{ subnets: "subnet-1" }, "executor_config.subnets"],
    [{ security_groups: [1] }, "executor_config.security_groups"],
    [{ assign_public_ip: "yes" }, "executor_config.assign_public_ip"],
    [{ launch_type: "EC2", assign_public_ip: true }, "executor_config.assign_public_ip"],
    [{ command: [] }, "executor_config.command"],
    [{ project_root: "app" }, "executor_config.project_root"],
    [{ cpu: 0.5 }, "executor_config.cpu"],
    [{ memory: "2GB" }, "executor_config.memory"],
    [{ env: { "BAD-NAME": "x" } }, "executor_config.env.BAD-NAME"],
    [{ env: ["A=1"] }, "executor_config.env"],
    [{ endpoint: "ftp://example" }, "executor_config.endpoint"],
    [{ log_stream_prefix: undefined }, "executor_config.log_stream_prefix"],
    [{ log_group: undefined }, "executor_config.log_group"],
    [{ container_name: 7 }, "executor_config.container_name"],
  ] as [JsonObject, string][])("%j is refused naming %s", (config, field) => {
    const problem = check(config);
    expect(problem).not.toBeNull();
    expect(problem!.startsWith(`${field}:`)).toBe(true);
  });
  test("EC2 needs no subnets; FARGATE does", () => {
    expect(check({ launch_type: "EC2", subnets: undefined, security_groups: undefined, assign_public_ip: undefined })).toBeNull();
    expect(check({ subnets: undefined })).toStartWith("executor_config.subnets:");
  });
  test("the region comes from AWS_REGION or AWS_DEFAULT_REGION when the config has none", () => {
    const noRegion = { ...BASE_CONFIG, region: undefined };
    expect(ecsExecutor(context({})).validateConfig!(noRegion)).toStartWith("executor_config.region:");
    expect(ecsExecutor(context({ AWS_REGION: "eu-west-1" })).validateConfig!(noRegion)).toBeNull();
    expect(ecsExecutor(context({ AWS_DEFAULT_REGION: "eu-west-1" })).validateConfig!(noRegion)).toBeNull();
  });
  test("project_root is the project's folder in the image; by default the same path as kiln's", async () => {
    const made = await fixture.harness.job("succeeds");
    const commandOf = (config: JsonObject) => runTaskInput(made, parseEcsConfig({ ...BASE_CONFIG, ...config }, {}), {}, "token").overrides?.containerOverrides?.[0]?.command;
    expect(commandOf({ project_root: "/srv/project" })?.slice(0, 3)).toEqual(["kiln", "run-block", "/srv/project"]);
    expect(commandOf({})?.slice(0, 3)).toEqual(["kiln", "run-block", made.projectRoot]);
    expect(commandOf({ command: ["bun", "/app/cli/main.ts"] })?.slice(0, 3)).toEqual(["bun", "/app/cli/main.ts", "run-block"]);
  });
  test("start refuses a bad config with the same message, before any request", async () => {
    const before = fake.requests.length;
    await expect(executor.start(await job("succeeds", { subnets: [] }))).rejects.toThrow(/^executor_config\.subnets:/);
    expect(fake.requests.length).toBe(before);
  });
  test("ECS's own refusals name the config field: an unknown cluster", async () => {
    await expect(executor.start(await job("succeeds", { cluster: "nope" }))).rejects.toThrow(/RunTask failed: ClusterNotFoundException.*executor_config\.cluster: "nope"/);
  });
});

describe("executor-ecs: through kiln", () => {
  test("kiln run starts the block as an ECS task and copies its CloudWatch log into the block run's log", async () => {
    const before = new Set(fake.tasks.keys());
    // not spawnSync: the fake answers from this process's event loop
    const child = spawn(process.execPath, [CLI_MAIN, "run", fixture.root, "conformance", "--block-uuid", "logs"], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, KILN_DATABASE_URL: sqld.url, AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    const status = await new Promise<number | null>((resolve) => child.once("close", resolve));
    expect(output).not.toContain(KEY.secretAccessKey);
    if (status !== 0) throw new Error(`kiln run exited ${status}:\n${output}`);
    const started = [...fake.tasks.values()].filter((task) => !before.has(task.taskArn));
    expect(started).toHaveLength(1);
    expect(started[0]!.command.slice(0, 3)).toEqual(["kiln", "run-block", fixture.root]);
    expect(started[0]!.lastStatus).toBe("STOPPED");
    const partition = String(started[0]!.environment.KILN_EXECUTION_PARTITION);
    const log = readFileSync(join(fixture.root, logPath("conformance", partition, "logs")), "utf8");
    expect(log).toContain("conformance log line");
    expect(log).toContain("conformance log line (stdout)");
  }, 90_000);
});
