/**
 * A fake of AWS ECS (RunTask, DescribeTasks, StopTask) and CloudWatch Logs (GetLogEvents) on
 * 127.0.0.1, speaking their JSON 1.1 protocols, for the ECS executor's tests. It verifies the
 * SigV4 signature of every request on its own (sigv4-verifier.ts), checks request shapes as ECS
 * does, and keeps task state: PROVISIONING -> RUNNING -> STOPPED with the container's exit
 * code. Containers are local processes (FakeContainers), so a task really runs `kiln run-block`.
 */
import { FakeContainers, type FakeContainer } from "./fake-containers.ts";
import { isRefusal, verifySigV4, type FakeAwsCredential } from "./sigv4-verifier.ts";

const ECS_TARGET = "AmazonEC2ContainerServiceV20141113.";
const LOGS_TARGET = "Logs_20140328.";
const JSON_11 = "application/x-amz-json-1.1";

/** A container of a fake task definition. */
export interface FakeContainerDefinition {
  name: string;
  command?: string[];
  environment?: { name: string; value: string }[];
  /** The awslogs driver's options: where its output shows up in the fake CloudWatch Logs. */
  awslogs?: { group: string; streamPrefix: string };
}

/** A registered task definition. */
export interface FakeTaskDefinition {
  family: string;
  revision: number;
  networkMode: "awsvpc" | "bridge" | "host";
  requiresCompatibilities: ("FARGATE" | "EC2")[];
  containers: FakeContainerDefinition[];
  /**
   * Makes every task of it stop before its container starts, as ECS does when it cannot pull
   * the image or fetch a secret: the stop reason, e.g. "CannotPullContainerError: ...".
   */
  startFailure?: string;
}

/** One task as the fake keeps it. */
export interface FakeTask {
  taskArn: string;
  clusterArn: string;
  taskDefinitionArn: string;
  definition: FakeTaskDefinition;
  launchType: string;
  startedBy: string | undefined;
  tags: { key: string; value: string }[];
  lastStatus: "PROVISIONING" | "PENDING" | "RUNNING" | "DEPROVISIONING" | "STOPPED";
  desiredStatus: "RUNNING" | "STOPPED";
  stopCode?: string;
  stoppedReason?: string;
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  /** The container kiln overrides, with its effective command and environment. */
  containerName: string;
  command: string[];
  environment: Record<string, string>;
  cpu?: number;
  memory?: number;
  container: FakeContainer | null;
  /** Set when the container never ran (startFailure, or stopped while provisioning). */
  containerReason?: string;
}

/** A request as the fake saw it, after the signature check. */
export interface RecordedRequest {
  service: "ecs" | "logs";
  action: string;
  body: Record<string, unknown>;
  /** The signer's access key id; null when the signature was refused. */
  accessKeyId: string | null;
  /** What the fake answered: 200, or an AWS error type. */
  outcome: string;
}

export interface FakeEcsOptions {
  region?: string;
  accountId?: string;
  credentials: FakeAwsCredential[];
  clusters?: string[];
  taskDefinitions?: Omit<FakeTaskDefinition, "revision">[];
  /** How long a task stays PROVISIONING before its container starts (ms). */
  provisionMs?: number;
  /** Events per GetLogEvents page unless the request's limit is smaller (small, to exercise paging). */
  logPageSize?: number;
}

class AwsError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const invalid = (message: string) => new AwsError(400, "InvalidParameterException", message);

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalid(`${what} must be an object`);
  return value as Record<string, unknown>;
}

/** The fake service; `start()` it, point the executor's endpoint at `url`, `stop()` it in teardown. */
export class FakeEcs {
  readonly region: string;
  readonly accountId: string;
  readonly containers = new FakeContainers();
  readonly tasks = new Map<string, FakeTask>();
  readonly requests: RecordedRequest[] = [];
  /** Signature refusals, with the reason the fake gave (the signature itself is never kept). */
  readonly refusals: { action: string; type: string; message: string }[] = [];
  readonly #credentials: FakeAwsCredential[];
  readonly #clusters = new Set<string>();
  readonly #definitions = new Map<string, FakeTaskDefinition>();
  readonly #clientTokens = new Map<string, string>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #provisionMs: number;
  readonly #logPageSize: number;
  #server: ReturnType<typeof Bun.serve> | null = null;
  #nextId = 1;

  constructor(options: FakeEcsOptions) {
    this.region = options.region ?? "us-east-1";
    this.accountId = options.accountId ?? "123456789012";
    this.#credentials = options.credentials;
    this.#provisionMs = options.provisionMs ?? 20;
    this.#logPageSize = options.logPageSize ?? 10_000;
    for (const name of options.clusters ?? ["default"]) this.#clusters.add(name);
    for (const definition of options.taskDefinitions ?? []) this.registerTaskDefinition(definition);
  }

  /** Listens on 127.0.0.1 at a free port. */
  start(): this {
    this.#server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => this.#handle(request) });
    return this;
  }

  get url(): string {
    if (!this.#server) throw new Error("fake ECS: not started");
    return `http://127.0.0.1:${this.#server.port}`;
  }

  /** Stops the server, the pending state changes and every container still running. */
  stop(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.containers.stopAll();
    void this.#server?.stop(true);
    this.#server = null;
  }

  /** Registers a task definition (the next revision of its family). */
  registerTaskDefinition(definition: Omit<FakeTaskDefinition, "revision">): FakeTaskDefinition {
    const revision = [...this.#definitions.values()].filter((d) => d.family === definition.family).length + 1;
    const registered: FakeTaskDefinition = { ...definition, revision };
    this.#definitions.set(`${definition.family}:${revision}`, registered);
    return registered;
  }

  /** Drops a task, as ECS does with stopped tasks after about an hour. */
  forget(taskArn: string): void {
    this.tasks.delete(taskArn);
  }

  /** The recorded requests of one action, e.g. "RunTask". */
  requestsOf(action: string): RecordedRequest[] {
    return this.requests.filter((r) => r.action === action);
  }

  #clusterArn(name: string): string {
    return `arn:aws:ecs:${this.region}:${this.accountId}:cluster/${name}`;
  }

  #definitionArn(definition: FakeTaskDefinition): string {
    return `arn:aws:ecs:${this.region}:${this.accountId}:task-definition/${definition.family}:${definition.revision}`;
  }

  /** A cluster name from a name or ARN; ClusterNotFoundException when the fake has no such cluster. */
  #cluster(value: unknown): string {
    const given = value === undefined ? "default" : value;
    if (typeof given !== "string" || given === "") throw invalid("cluster must be a string");
    const prefix = `arn:aws:ecs:${this.region}:${this.accountId}:cluster/`;
    const name = given.startsWith("arn:") ? (given.startsWith(prefix) ? given.slice(prefix.length) : "") : given;
    if (!this.#clusters.has(name)) throw new AwsError(400, "ClusterNotFoundException", "Cluster not found.");
    return name;
  }

  /** "family", "family:revision" or the ARN, as RunTask accepts it. */
  #definition(value: unknown): FakeTaskDefinition {
    if (typeof value !== "string" || value === "") throw invalid("taskDefinition can not be blank.");
    const prefix = `arn:aws:ecs:${this.region}:${this.accountId}:task-definition/`;
    const reference = value.startsWith(prefix) ? value.slice(prefix.length) : value;
    let found: FakeTaskDefinition | undefined;
    if (reference.includes(":")) found = this.#definitions.get(reference);
    else {
      for (const definition of this.#definitions.values()) if (definition.family === reference && (!found || definition.revision > found.revision)) found = definition;
    }
    if (!found) throw new AwsError(400, "ClientException", "Unable to describe task definition.");
    return found;
  }

  async #handle(request: Request): Promise<Response> {
    const target = request.headers.get("x-amz-target") ?? "";
    const service = target.startsWith(ECS_TARGET) ? "ecs" : target.startsWith(LOGS_TARGET) ? "logs" : null;
    const action = service === "ecs" ? target.slice(ECS_TARGET.length) : service === "logs" ? target.slice(LOGS_TARGET.length) : target;
    const body = new Uint8Array(await request.arrayBuffer());
    const answer = (status: number, payload: unknown, outcome: string, accessKeyId: string | null, parsed: Record<string, unknown>) => {
      this.requests.push({ service: service ?? "ecs", action, body: parsed, accessKeyId, outcome });
      const headers: Record<string, string> = { "content-type": JSON_11, "x-amzn-requestid": crypto.randomUUID() };
      if (status !== 200) headers["x-amzn-errortype"] = outcome;
      return new Response(JSON.stringify(payload), { status, headers });
    };
    const error = (e: AwsError, accessKeyId: string | null, parsed: Record<string, unknown>) =>
      answer(e.status, { __type: e.type, message: e.message }, e.type, accessKeyId, parsed);

    if (request.method !== "POST" || !service) return error(new AwsError(400, "UnknownOperationException", `unknown target ${JSON.stringify(target)}`), null, {});
    const verdict = verifySigV4(
      { method: request.method, url: request.url, headers: request.headers, body },
      { credentials: this.#credentials, service, region: this.region },
    );
    if (isRefusal(verdict)) {
      this.refusals.push({ action, type: verdict.type, message: verdict.message });
      return error(new AwsError(verdict.status, verdict.type, verdict.message), null, {});
    }
    if (!(request.headers.get("content-type") ?? "").startsWith(JSON_11)) {
      return error(new AwsError(400, "SerializationException", `expected Content-Type ${JSON_11}`), verdict.accessKeyId, {});
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = record(JSON.parse(new TextDecoder().decode(body) || "{}"), "the request body");
    } catch {
      return error(new AwsError(400, "SerializationException", "the request body is not a JSON object"), verdict.accessKeyId, {});
    }
    try {
      const result =
        service === "ecs"
          ? action === "RunTask"
            ? this.#runTask(parsed)
            : action === "DescribeTasks"
              ? this.#describeTasks(parsed)
              : action === "StopTask"
                ? this.#stopTask(parsed)
                : null
          : action === "GetLogEvents"
            ? this.#getLogEvents(parsed)
            : null;
      if (result === null) throw new AwsError(400, "UnknownOperationException", `the fake does not implement ${action}`);
      return answer(200, result, "200", verdict.accessKeyId, parsed);
    } catch (e) {
      if (e instanceof AwsError) return error(e, verdict.accessKeyId, parsed);
      throw e;
    }
  }

  #runTask(body: Record<string, unknown>): unknown {
    const cluster = this.#cluster(body.cluster);
    const definition = this.#definition(body.taskDefinition);
    const launchType = body.launchType ?? "EC2";
    if (launchType !== "FARGATE" && launchType !== "EC2") throw invalid(`launchType ${JSON.stringify(launchType)} is not FARGATE or EC2.`);
    if (!definition.requiresCompatibilities.includes(launchType)) throw new AwsError(400, "ClientException", `Task definition does not support launch_type ${launchType}.`);
    const count = body.count ?? 1;
    if (count !== 1) throw invalid("the fake runs one task per RunTask (count 1)");
    if (body.startedBy !== undefined && (typeof body.startedBy !== "string" || body.startedBy.length > 128)) throw invalid("startedBy must be a string of at most 128 characters.");

    // awsvpc: Fargate always, EC2 when the task definition says so
    const network = body.networkConfiguration === undefined ? undefined : record(body.networkConfiguration, "networkConfiguration");
    if (definition.networkMode === "awsvpc" || launchType === "FARGATE") {
      const awsvpc = network?.awsvpcConfiguration === undefined ? undefined : record(network.awsvpcConfiguration, "awsvpcConfiguration");
      if (!awsvpc) throw invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.");
      if (!isStringArray(awsvpc.subnets) || awsvpc.subnets.length === 0) throw invalid("subnets can not be empty.");
      if (awsvpc.securityGroups !== undefined && !isStringArray(awsvpc.securityGroups)) throw invalid("securityGroups must be a list of strings.");
      if (awsvpc.assignPublicIp !== undefined && awsvpc.assignPublicIp !== "ENABLED" && awsvpc.assignPublicIp !== "DISABLED") throw invalid("assignPublicIp must be ENABLED or DISABLED.");
      if (launchType === "EC2" && awsvpc.assignPublicIp === "ENABLED") throw invalid("Assign public IP is not supported for this launch type.");
    } else if (network !== undefined) {
      throw invalid("Network Configuration is not valid for the given networkMode of this task definition.");
    }

    const tags: { key: string; value: string }[] = [];
    if (body.tags !== undefined) {
      if (!Array.isArray(body.tags) || body.tags.length > 50) throw invalid("tags must be a list of at most 50 tags.");
      for (const tag of body.tags) {
        const { key, value } = record(tag, "a tag");
        if (typeof key !== "string" || key.length === 0 || key.length > 128 || !/^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u.test(key)) throw invalid(`Tag key ${JSON.stringify(key)} is not valid.`);
        if (typeof value !== "string" || value.length > 256) throw invalid(`Tag value for ${key} is not valid.`);
        tags.push({ key, value });
      }
    }

    if (typeof body.clientToken === "string") {
      const earlier = this.#clientTokens.get(body.clientToken);
      const task = earlier ? this.tasks.get(earlier) : undefined;
      if (task) return { tasks: [this.#describe(task)], failures: [] };
    }

    // the overridden container: command and environment over the definition's
    const main = definition.containers[0];
    if (!main) throw new AwsError(400, "ClientException", "the task definition has no container");
    let container = main;
    let command = main.command ?? [];
    const environment: Record<string, string> = Object.fromEntries((main.environment ?? []).map((e) => [e.name, e.value]));
    let cpu: number | undefined;
    let memory: number | undefined;
    const overrides = body.overrides === undefined ? {} : record(body.overrides, "overrides");
    const containerOverrides = overrides.containerOverrides ?? [];
    if (!Array.isArray(containerOverrides)) throw invalid("containerOverrides must be a list.");
    for (const raw of containerOverrides) {
      const override = record(raw, "a container override");
      const named = definition.containers.find((c) => c.name === override.name);
      if (!named) throw invalid(`Override for container named ${String(override.name)} is not a container in the TaskDefinition.`);
      container = named;
      if (override.command !== undefined) {
        if (!isStringArray(override.command)) throw invalid("containerOverrides.command must be a list of strings.");
        command = override.command;
      }
      if (override.environment !== undefined) {
        if (!Array.isArray(override.environment)) throw invalid("containerOverrides.environment must be a list.");
        for (const pair of override.environment) {
          const { name, value } = record(pair, "an environment variable");
          if (typeof name !== "string" || typeof value !== "string") throw invalid("environment entries need a string name and value.");
          environment[name] = value;
        }
      }
      for (const field of ["cpu", "memory"] as const) {
        const n = override[field];
        if (n !== undefined && (typeof n !== "number" || !Number.isInteger(n) || n <= 0)) throw invalid(`containerOverrides.${field} must be a positive integer.`);
      }
      cpu = override.cpu as number | undefined;
      memory = override.memory as number | undefined;
    }
    if (command.length === 0) throw invalid("the container has no command.");

    const id = `${Date.now().toString(16)}${(this.#nextId++).toString(16).padStart(8, "0")}`;
    const task: FakeTask = {
      taskArn: `arn:aws:ecs:${this.region}:${this.accountId}:task/${cluster}/${id}`,
      clusterArn: this.#clusterArn(cluster),
      taskDefinitionArn: this.#definitionArn(definition),
      definition,
      launchType,
      startedBy: body.startedBy as string | undefined,
      tags,
      lastStatus: "PROVISIONING",
      desiredStatus: "RUNNING",
      createdAt: Date.now(),
      containerName: container.name,
      command,
      environment,
      container: null,
      ...(cpu !== undefined ? { cpu } : {}),
      ...(memory !== undefined ? { memory } : {}),
    };
    this.tasks.set(task.taskArn, task);
    if (typeof body.clientToken === "string") this.#clientTokens.set(body.clientToken, task.taskArn);
    this.#later(() => this.#provisioned(task));
    return { tasks: [this.#describe(task)], failures: [] };
  }

  #later(step: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      step();
    }, this.#provisionMs);
    this.#timers.add(timer);
  }

  /** Provisioning done: start the container, or stop as ECS does when the image cannot be pulled. */
  #provisioned(task: FakeTask): void {
    if (task.lastStatus !== "PROVISIONING" || task.desiredStatus === "STOPPED") return;
    if (task.definition.startFailure) {
      this.#stopped(task, "TaskFailedToStart", task.definition.startFailure);
      task.containerReason = task.definition.startFailure;
      return;
    }
    task.lastStatus = "RUNNING";
    task.startedAt = Date.now();
    task.container = this.containers.run(task.command, task.environment);
    this.#watch(task);
  }

  /** Polls the container's process: when it exits, the task stops (all of its containers are essential). */
  #watch(task: FakeTask): void {
    this.#later(() => {
      if (task.container?.state === "exited") {
        if (task.desiredStatus === "STOPPED") this.#stopped(task, task.stopCode ?? "UserInitiated", task.stoppedReason ?? "Task stopped by user");
        else this.#stopped(task, "EssentialContainerExited", "Essential container in task exited");
      } else {
        this.#watch(task);
      }
    });
  }

  #stopped(task: FakeTask, stopCode: string, reason: string): void {
    task.lastStatus = "STOPPED";
    task.desiredStatus = "STOPPED";
    task.stopCode = stopCode;
    task.stoppedReason = reason;
    task.stoppedAt = Date.now();
  }

  #describeTasks(body: Record<string, unknown>): unknown {
    const cluster = this.#cluster(body.cluster);
    if (!isStringArray(body.tasks) || body.tasks.length === 0) throw invalid("Tasks cannot be empty.");
    if (body.tasks.length > 100) throw invalid("Tasks cannot contain more than 100 elements.");
    const tasks: unknown[] = [];
    const failures: unknown[] = [];
    for (const reference of body.tasks) {
      const task = [...this.tasks.values()].find((t) => (t.taskArn === reference || t.taskArn.endsWith(`/${reference}`)) && t.clusterArn === this.#clusterArn(cluster));
      if (task) tasks.push(this.#describe(task));
      else failures.push({ arn: reference.startsWith("arn:") ? reference : `arn:aws:ecs:${this.region}:${this.accountId}:task/${cluster}/${reference}`, reason: "MISSING" });
    }
    return { tasks, failures };
  }

  #stopTask(body: Record<string, unknown>): unknown {
    const cluster = this.#cluster(body.cluster);
    if (typeof body.task !== "string" || body.task === "") throw invalid("task can not be blank.");
    if (body.reason !== undefined && (typeof body.reason !== "string" || body.reason.length > 255)) throw invalid("reason must be a string of at most 255 characters.");
    const reference = body.task;
    const task = [...this.tasks.values()].find((t) => (t.taskArn === reference || t.taskArn.endsWith(`/${reference}`)) && t.clusterArn === this.#clusterArn(cluster));
    if (!task) throw invalid("The referenced task was not found.");
    // ECS keeps the first stop's reason; stopping a stopped task changes nothing
    if (task.desiredStatus !== "STOPPED") {
      task.desiredStatus = "STOPPED";
      task.stopCode = "UserInitiated";
      task.stoppedReason = (body.reason as string | undefined) ?? "Task stopped by user";
      if (task.lastStatus === "PROVISIONING" || task.lastStatus === "PENDING") {
        this.#stopped(task, task.stopCode, task.stoppedReason);
      } else if (task.container) {
        task.lastStatus = "DEPROVISIONING";
        this.containers.stop(task.container.id, 2_000);
      }
    }
    return { task: this.#describe(task) };
  }

  #getLogEvents(body: Record<string, unknown>): unknown {
    if (typeof body.logGroupName !== "string" || typeof body.logStreamName !== "string") throw invalid("logGroupName and logStreamName are required.");
    const task = [...this.tasks.values()].find((t) => {
      const container = t.definition.containers.find((c) => c.name === t.containerName);
      const id = t.taskArn.slice(t.taskArn.lastIndexOf("/") + 1);
      const awslogs = container?.awslogs;
      return awslogs !== undefined && awslogs.group === body.logGroupName && `${awslogs.streamPrefix}/${t.containerName}/${id}` === body.logStreamName;
    });
    // awslogs creates the stream when the container starts
    if (!task?.container) throw new AwsError(400, "ResourceNotFoundException", "The specified log stream does not exist.");
    if (body.startFromHead !== true && body.nextToken === undefined) throw invalid("the fake serves streams from the head only (startFromHead: true)");
    const lines = task.container.output.split("\n");
    if (lines.at(-1) === "") lines.pop();
    let from = 0;
    if (body.nextToken !== undefined) {
      const m = typeof body.nextToken === "string" ? /^f\/(\d+)$/.exec(body.nextToken) : null;
      if (!m) throw invalid("The specified nextToken is invalid.");
      from = Number(m[1]);
    }
    const limit = typeof body.limit === "number" ? Math.min(body.limit, this.#logPageSize) : this.#logPageSize;
    const page = lines.slice(from, from + limit);
    const base = task.startedAt ?? task.createdAt;
    return {
      events: page.map((message, i) => ({ timestamp: base + from + i, message, ingestionTime: base + from + i })),
      nextForwardToken: `f/${from + page.length}`,
      nextBackwardToken: `b/${from}`,
    };
  }

  /** A task as DescribeTasks shows it. */
  #describe(task: FakeTask): Record<string, unknown> {
    const container: Record<string, unknown> = {
      containerArn: `${task.taskArn.replace(":task/", ":container/")}/${task.containerName}`,
      taskArn: task.taskArn,
      name: task.containerName,
      lastStatus: task.container?.state === "exited" ? "STOPPED" : task.container ? "RUNNING" : task.lastStatus === "STOPPED" ? "STOPPED" : "PENDING",
    };
    if (task.container?.state === "exited" && task.container.exitCode !== null) container.exitCode = task.container.exitCode;
    if (task.containerReason) container.reason = task.containerReason;
    const described: Record<string, unknown> = {
      taskArn: task.taskArn,
      clusterArn: task.clusterArn,
      taskDefinitionArn: task.taskDefinitionArn,
      lastStatus: task.lastStatus,
      desiredStatus: task.desiredStatus,
      launchType: task.launchType,
      createdAt: task.createdAt / 1000,
      containers: [container],
      tags: task.tags,
      overrides: { containerOverrides: [{ name: task.containerName }] },
    };
    if (task.startedBy) described.startedBy = task.startedBy;
    if (task.startedAt) described.startedAt = task.startedAt / 1000;
    if (task.stoppedAt) described.stoppedAt = task.stoppedAt / 1000;
    if (task.stopCode && task.lastStatus === "STOPPED") described.stopCode = task.stopCode;
    if (task.stoppedReason) described.stoppedReason = task.stoppedReason;
    return described;
  }
}
