/**
 * The "ecs" executor: each block run is an AWS ECS task (Fargate or EC2) of the project's task
 * definition, its container's command overridden to `kiln run-block ...`. Stateless: the
 * handle (cluster, task ARN, region, endpoint) is all it needs to poll, cancel or read logs, so
 * any scheduler process can pick a block run up again, and nothing blocks while a task runs.
 *
 * It speaks to AWS through the official clients (@aws-sdk/client-ecs and
 * @aws-sdk/client-cloudwatch-logs), whose fetch and WebCrypto builds run on Workers too; no
 * node: import and no process.env here: credentials come from the ExecutorContext's env.
 * The SDK is imported on first use (sdk.ts), so loading kiln does not pay for it.
 */
import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { AwsVpcConfiguration, ECSClient, KeyValuePair, RunTaskCommandInput, Task } from "@aws-sdk/client-ecs";
import { blockRunEnv, blockRunLabels, runBlockArgs, type BlockJob, type ExecutionHandle, type ExecutionStatus, type Executor, type ExecutorContext, type ExecutorFactory, type JsonObject, messageOf } from "@kiln/core";
import { checkEcsConfig, parseEcsConfig, type EcsSettings } from "./config.ts";

export { checkEcsConfig, parseEcsConfig, type EcsSettings } from "./config.ts";

/** The StopTask reason kiln gives; a task stopped with it reads as cancelled, from any process. */
export const CANCEL_REASON = "kiln: block run cancelled";

/**
 * How long one attempt at an AWS call may take (ms): a hung connection must not stall a
 * scheduler's poll. The SDK tries a call three times, so about 45 s at worst.
 */
const REQUEST_TIMEOUT_MS = 15_000;

/** RunTask's startedBy for every task kiln starts (ListTasks can filter on it). */
export const STARTED_BY = "kiln";

/** What a stored handle holds: enough to find the task again without the block's config. */
export interface EcsHandle {
  cluster: string;
  taskArn: string;
  region: string;
  /** Absent for AWS's own endpoint. */
  endpoint?: string;
  /** The container whose exit code decides the block run. */
  container: string;
  /** CloudWatch Logs group and awslogs stream prefix, when the config names them. */
  logGroup?: string;
  logStreamPrefix?: string;
}

interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The standard AWS environment variables, from kiln's environment (never process.env: Workers have none). */
function credentialsFrom(env: Record<string, string | undefined>): AwsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error("executor ecs: AWS credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials) in kiln's environment");
  }
  return env.AWS_SESSION_TOKEN ? { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN } : { accessKeyId, secretAccessKey };
}

/** Reads a handle that came back from the database, refusing one this executor did not make. */
function handleOf(handle: ExecutionHandle): EcsHandle {
  const { cluster, taskArn, region, endpoint, container, logGroup, logStreamPrefix } = handle;
  if (typeof cluster !== "string" || typeof taskArn !== "string" || typeof region !== "string" || typeof container !== "string") {
    throw new Error(`executor ecs: not an ECS task handle: ${JSON.stringify(handle)}`);
  }
  const result: EcsHandle = { cluster, taskArn, region, container };
  if (typeof endpoint === "string") result.endpoint = endpoint;
  if (typeof logGroup === "string") result.logGroup = logGroup;
  if (typeof logStreamPrefix === "string") result.logStreamPrefix = logStreamPrefix;
  return result;
}

/** The task id, the last part of its ARN (arn:aws:ecs:region:account:task/cluster/id). */
export function taskIdOf(taskArn: string): string {
  return taskArn.slice(taskArn.lastIndexOf("/") + 1);
}

/** The awslogs driver's stream name for a task's container. */
export function logStreamName(prefix: string, container: string, taskArn: string): string {
  return `${prefix}/${container}/${taskIdOf(taskArn)}`;
}

/**
 * What an AWS error says, with a hint naming the setting to look at; never a key, token or
 * signature. A refused signature's message goes on with the canonical request AWS expected,
 * which holds the session token: only its first line is kept.
 */
function awsError(action: string, error: unknown, env: Record<string, string | undefined>, settings?: { cluster?: string; taskDefinition?: string }): Error {
  const name = error instanceof Error ? error.name : "Error";
  let message = messageOf(error);
  if (name === "InvalidSignatureException" || name === "SignatureDoesNotMatch") message = message.split("\n")[0] ?? "";
  for (const secret of [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN]) {
    if (secret) message = message.split(secret).join("[redacted]");
  }
  let hint = "";
  if (name === "InvalidSignatureException" || name === "SignatureDoesNotMatch") {
    hint = " (the request signature was refused: check AWS_SECRET_ACCESS_KEY in kiln's environment)";
  } else if (name === "UnrecognizedClientException" || name === "InvalidClientTokenId") {
    hint = " (the access key was not recognised: check AWS_ACCESS_KEY_ID and AWS_SESSION_TOKEN in kiln's environment)";
  } else if (name === "ExpiredTokenException") {
    hint = " (the temporary credentials expired: renew AWS_SESSION_TOKEN)";
  } else if (name === "ClusterNotFoundException" && settings?.cluster) {
    hint = ` (executor_config.cluster: ${JSON.stringify(settings.cluster)})`;
  } else if (name === "ClientException" && /task ?definition/i.test(message) && settings?.taskDefinition) {
    hint = ` (executor_config.task_definition: ${JSON.stringify(settings.taskDefinition)})`;
  }
  return new Error(`executor ecs: ${action} failed: ${name}: ${message}${hint}`, { cause: error });
}

/** The RunTask request for a block run: the task definition with kiln's command, env and tags. */
export function runTaskInput(job: BlockJob, settings: EcsSettings, blockEnv: Record<string, string>, clientToken: string): RunTaskCommandInput {
  const environment: KeyValuePair[] = Object.entries({ ...blockEnv, ...blockRunEnv(job), ...settings.env }).map(([name, value]) => ({ name, value }));
  const tags = Object.entries(blockRunLabels(job)).map(([key, value]) => ({ key, value }));
  const input: RunTaskCommandInput = {
    cluster: settings.cluster,
    taskDefinition: settings.taskDefinition,
    launchType: settings.launchType,
    count: 1,
    startedBy: STARTED_BY,
    // an SDK retry of a RunTask whose answer was lost must not start a second task
    clientToken,
    tags,
    overrides: {
      containerOverrides: [
        {
          name: settings.containerName,
          command: [...settings.command, ...runBlockArgs(job, settings.projectRoot ?? job.projectRoot)],
          environment,
          ...(settings.cpu !== undefined ? { cpu: settings.cpu } : {}),
          ...(settings.memory !== undefined ? { memory: settings.memory } : {}),
        },
      ],
    },
  };
  if (settings.subnets.length > 0) {
    const awsvpc: AwsVpcConfiguration = { subnets: settings.subnets };
    if (settings.securityGroups.length > 0) awsvpc.securityGroups = settings.securityGroups;
    if (settings.launchType === "FARGATE") awsvpc.assignPublicIp = settings.assignPublicIp ? "ENABLED" : "DISABLED";
    input.networkConfiguration = { awsvpcConfiguration: awsvpc };
  }
  return input;
}

/** A stopped task's outcome: its container's exit code, or why ECS stopped it without one. */
export function stoppedStatus(task: Task, container: string): ExecutionStatus {
  if (task.stoppedReason === CANCEL_REASON) return { state: "cancelled" };
  const main = task.containers?.find((c) => c.name === container) ?? (task.containers?.length === 1 ? task.containers[0] : undefined);
  const exitCode = main?.exitCode;
  const why = [task.stopCode, task.stoppedReason].filter(Boolean).join(": ");
  const metrics: JsonObject = { ecs_task_arn: task.taskArn ?? null };
  if (typeof exitCode === "number") {
    if (exitCode === 0) return { state: "completed", metrics: { ...metrics, exit_code: 0 } };
    const detail = [main?.reason, why].filter(Boolean).join("; ");
    return { state: "failed", error: `ECS task ended with exit code ${exitCode}${detail ? ` (${detail})` : ""}`, metrics: { ...metrics, exit_code: exitCode } };
  }
  // no exit code: the container never ran (image pull, secrets, ENI, capacity) or was lost
  const detail = [why, main?.reason ? `container ${main.name}: ${main.reason}` : ""].filter(Boolean).join("; ");
  return { state: "failed", error: `ECS task stopped before its container ${container} exited: ${detail || "no reason given"}`, metrics };
}

/** Builds the ECS executor for a project; credentials and the default region come from `context.env`. */
export function ecsExecutor(context: ExecutorContext): Executor {
  let sdk: Promise<typeof import("./sdk.ts")> | undefined;
  const loadSdk = () => (sdk ??= import("./sdk.ts"));
  const ecsClients = new Map<string, ECSClient>();
  const logsClients = new Map<string, CloudWatchLogsClient>();
  const clientKey = (region: string, endpoint: string | undefined) => `${region} ${endpoint ?? ""}`;

  /** One client per region and endpoint, made on first use, so a factory without credentials still loads. */
  async function ecs(region: string, endpoint: string | undefined): Promise<ECSClient> {
    const key = clientKey(region, endpoint);
    let client = ecsClients.get(key);
    if (!client) {
      const credentials = credentialsFrom(context.env);
      const { ECSClient } = await loadSdk();
      client = new ECSClient({ region, credentials, requestHandler: { requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true }, ...(endpoint ? { endpoint } : {}) });
      ecsClients.set(key, client);
    }
    return client;
  }

  async function logsClient(region: string, endpoint: string | undefined): Promise<CloudWatchLogsClient> {
    const key = clientKey(region, endpoint);
    let client = logsClients.get(key);
    if (!client) {
      const credentials = credentialsFrom(context.env);
      const { CloudWatchLogsClient } = await loadSdk();
      client = new CloudWatchLogsClient({ region, credentials, requestHandler: { requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true }, ...(endpoint ? { endpoint } : {}) });
      logsClients.set(key, client);
    }
    return client;
  }

  return {
    type: "ecs",
    remote: true,

    async start(job: BlockJob): Promise<ExecutionHandle> {
      const settings = parseEcsConfig(job.executorConfig, context.env);
      const input = runTaskInput(job, settings, context.blockEnv, crypto.randomUUID());
      const client = await ecs(settings.region, settings.endpoint);
      const { RunTaskCommand } = await loadSdk();
      let tasks: Task[];
      try {
        const output = await client.send(new RunTaskCommand(input));
        tasks = output.tasks ?? [];
        if (tasks.length === 0) {
          // RunTask answers 200 with failures (no capacity, bad placement) rather than an error
          const reasons = (output.failures ?? []).map((f) => [f.reason, f.detail].filter(Boolean).join(": ")).join("; ");
          throw new Error(`executor ecs: RunTask started no task in cluster ${settings.cluster}: ${reasons || "no reason given"}`);
        }
      } catch (error) {
        if (error instanceof Error && error.message.startsWith("executor ecs:")) throw error;
        throw awsError("RunTask", error, context.env, settings);
      }
      const task = tasks[0]!;
      if (!task.taskArn) throw new Error("executor ecs: RunTask answered a task without a taskArn");
      const handle: EcsHandle = { cluster: task.clusterArn ?? settings.cluster, taskArn: task.taskArn, region: settings.region, container: settings.containerName };
      if (settings.endpoint) handle.endpoint = settings.endpoint;
      if (settings.logGroup && settings.logStreamPrefix) {
        handle.logGroup = settings.logGroup;
        handle.logStreamPrefix = settings.logStreamPrefix;
      }
      return { ...handle };
    },

    async status(stored: ExecutionHandle): Promise<ExecutionStatus> {
      const handle = handleOf(stored);
      const client = await ecs(handle.region, handle.endpoint);
      const { DescribeTasksCommand } = await loadSdk();
      let output;
      try {
        output = await client.send(new DescribeTasksCommand({ cluster: handle.cluster, tasks: [handle.taskArn] }));
      } catch (error) {
        throw awsError("DescribeTasks", error, context.env, { cluster: handle.cluster });
      }
      const task = output.tasks?.find((t) => t.taskArn === handle.taskArn) ?? output.tasks?.[0];
      if (!task) {
        const failure = output.failures?.find((f) => f.arn === handle.taskArn) ?? output.failures?.[0];
        // ECS forgets stopped tasks after about an hour, and never knew a task of another account or region
        return {
          state: "failed",
          error: `ECS task ${handle.taskArn} is missing from cluster ${handle.cluster} (DescribeTasks: ${failure?.reason ?? "no such task"}${failure?.detail ? `, ${failure.detail}` : ""}); ECS keeps a stopped task for about an hour`,
        };
      }
      if (task.lastStatus !== "STOPPED") return { state: "running" };
      return stoppedStatus(task, handle.container);
    },

    async cancel(stored: ExecutionHandle): Promise<void> {
      const handle = handleOf(stored);
      const client = await ecs(handle.region, handle.endpoint);
      const { StopTaskCommand } = await loadSdk();
      try {
        await client.send(new StopTaskCommand({ cluster: handle.cluster, task: handle.taskArn, reason: CANCEL_REASON }));
      } catch (error) {
        // a task ECS no longer knows has nothing left to stop; status says it is missing
        if (error instanceof Error && error.name === "InvalidParameterException" && /not found/i.test(error.message)) return;
        throw awsError("StopTask", error, context.env, { cluster: handle.cluster });
      }
    },

    async *logs(stored: ExecutionHandle): AsyncIterable<string> {
      const handle = handleOf(stored);
      if (!handle.logGroup || !handle.logStreamPrefix) {
        yield "kiln: the ECS task's logs are not read: executor_config has no log_group and log_stream_prefix (the awslogs options of the task definition's container)";
        return;
      }
      const client = await logsClient(handle.region, handle.endpoint);
      const { GetLogEventsCommand } = await loadSdk();
      const stream = logStreamName(handle.logStreamPrefix, handle.container, handle.taskArn);
      let nextToken: string | undefined;
      for (;;) {
        let output;
        try {
          output = await client.send(new GetLogEventsCommand({ logGroupName: handle.logGroup, logStreamName: stream, startFromHead: true, ...(nextToken ? { nextToken } : {}) }));
        } catch (error) {
          if (error instanceof Error && error.name === "ResourceNotFoundException") {
            yield `kiln: no CloudWatch log stream ${stream} in log group ${handle.logGroup} (the container may never have started, or the task definition's awslogs options differ from executor_config log_group/log_stream_prefix)`;
            return;
          }
          throw awsError("GetLogEvents", error, context.env);
        }
        for (const event of output.events ?? []) {
          if (event.message !== undefined) yield event.message.replace(/\r?\n$/, "");
        }
        // CloudWatch answers the token it was given once the stream's end is reached
        if (!output.nextForwardToken || output.nextForwardToken === nextToken) return;
        nextToken = output.nextForwardToken;
      }
    },

    validateConfig: (config: JsonObject) => checkEcsConfig(config, context.env),
  };
}

/** The executor factory kiln's CLI registers (and a plugin list could name). */
const ecsExecutorFactory: ExecutorFactory = (context) => ecsExecutor(context);
export default ecsExecutorFactory;
