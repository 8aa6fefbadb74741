/**
 * A fake of Google Cloud Run Jobs (Admin API v2: jobs:run, executions get/cancel/delete, tasks
 * list), Cloud Logging (entries:list), Google's OAuth token endpoint and the GCE metadata server,
 * all on 127.0.0.1, for the Cloud Run executor's tests. The token endpoint verifies the JWT
 * assertion's RS256 signature against the service account's public key (and its iss, sub, aud,
 * scope and lifetime) before issuing an opaque token; every API call must carry an issued,
 * unexpired token. Request shapes are checked as Google does (400 INVALID_ARGUMENT, 404
 * NOT_FOUND, in Google's error envelope). Executions keep state: running while their tasks'
 * containers (local processes, FakeContainers) run, then succeeded, failed with the exit code,
 * or cancelled after :cancel; deleted after DELETE.
 */
import { importSPKI, jwtVerify, type CryptoKey as JoseKey } from "jose";
import { FakeContainers, type FakeContainer } from "./fake-containers.ts";

const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A Cloud Run Job the fake knows: its container's entrypoint (the image's) and default args. */
export interface FakeJob {
  /** The entrypoint; a first word `kiln` runs this repository's CLI. */
  command: string[];
  args?: string[];
  env?: Record<string, string>;
  taskCount?: number;
}

export interface FakeCloudRunOptions {
  project: string;
  region: string;
  jobs: Record<string, FakeJob>;
  /** The service account whose keys the token endpoint accepts: its email and public key (SPKI PEM). */
  serviceAccount: { clientEmail: string; publicKeyPem: string };
  /** Seconds an issued token lives (default 3600). */
  tokenLifetimeSeconds?: number;
  /** The largest page entries:list and tasks list answer with (default 1000, as Google's). */
  maxPageSize?: number;
}

/** One request as the fake saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The parsed JSON body, or the form fields of a token request. */
  body: unknown;
  headers: Record<string, string>;
  /** The status the fake answered. */
  status: number;
}

interface FakeTask {
  index: number;
  container: FakeContainer;
  timedOut: boolean;
}

/** One execution as the fake keeps it. */
export interface FakeExecution {
  name: string;
  job: string;
  createTime: string;
  taskCount: number;
  timeoutSeconds: number | null;
  tasks: FakeTask[];
  cancelRequested: boolean;
  deleted: boolean;
  /** The args and env the containers got (after overrides). */
  args: string[];
  env: Record<string, string>;
}

interface IssuedToken {
  expiresAt: number;
  via: "jwt-bearer" | "metadata";
}

class GoogleError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly status: string,
    message: string,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The fake; `start()` it, point the executor's endpoints at `url`, `stop()` it in teardown. */
export class FakeCloudRun {
  readonly containers = new FakeContainers();
  readonly requests: RecordedRequest[] = [];
  readonly executions = new Map<string, FakeExecution>();
  /** Why the token endpoint refused each assertion it refused. */
  readonly tokenRefusals: string[] = [];
  /** Tokens issued so far, by how. */
  readonly issued: IssuedToken["via"][] = [];
  readonly #tokens = new Map<string, IssuedToken>();
  #server: ReturnType<typeof Bun.serve> | null = null;
  #publicKey: JoseKey | null = null;
  #next = 1;

  constructor(readonly options: FakeCloudRunOptions) {}

  /** Listens on a free port of 127.0.0.1. */
  async start(): Promise<this> {
    this.#publicKey = await importSPKI(this.options.serviceAccount.publicKeyPem, "RS256");
    this.#server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => this.#handle(request) });
    return this;
  }

  /** http://127.0.0.1:PORT: the Run, Logging, token and metadata endpoints all live here. */
  get url(): string {
    if (!this.#server) throw new Error("the fake is not started");
    return `http://127.0.0.1:${this.#server.port}`;
  }

  /** The token_uri to put in the test's service-account key. */
  get tokenUri(): string {
    return `${this.url}/token`;
  }

  /** Stops the server and every container still running. */
  stop(): void {
    this.containers.stopAll();
    void this.#server?.stop(true);
    this.#server = null;
  }

  /** Makes every token issued so far invalid, as when they expire or are revoked. */
  revokeTokens(): void {
    this.#tokens.clear();
  }

  /** Requests whose path ends with `suffix` (e.g. ":run", "/token"). */
  requestsTo(suffix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.endsWith(suffix));
  }

  /** The execution with this short id or full name. */
  execution(idOrName: string): FakeExecution | undefined {
    return this.executions.get(idOrName) ?? [...this.executions.values()].find((e) => e.name.endsWith(`/executions/${idOrName}`));
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const headers = Object.fromEntries(request.headers.entries());
    const text = await request.text();
    let body: unknown = text;
    let response: Response;
    try {
      if (url.pathname === "/token") {
        const form = Object.fromEntries(new URLSearchParams(text).entries());
        body = form;
        response = await this.#token(request, form);
      } else if (url.pathname.startsWith("/computeMetadata/v1/")) {
        response = this.#metadata(request, url.pathname.slice("/computeMetadata/v1/".length));
      } else {
        if (text !== "") {
          try {
            body = JSON.parse(text);
          } catch {
            throw new GoogleError(400, "INVALID_ARGUMENT", `Invalid JSON payload received. Unexpected token.\n${text.slice(0, 40)}`);
          }
        }
        this.#authorize(request);
        response = this.#api(request.method, url, body);
      }
    } catch (error) {
      if (!(error instanceof GoogleError)) throw error;
      response = Response.json({ error: { code: error.httpStatus, message: error.message, status: error.status } }, { status: error.httpStatus });
    }
    this.requests.push({ method: request.method, path: url.pathname, body, headers, status: response.status });
    return response;
  }

  // --- OAuth token endpoint, as oauth2.googleapis.com/token answers a jwt-bearer grant

  async #token(request: Request, form: Record<string, string>): Promise<Response> {
    const refuse = (error: string, description: string) => {
      this.tokenRefusals.push(`${error}: ${description}`);
      return Response.json({ error, error_description: description }, { status: 400 });
    };
    if (request.method !== "POST") return new Response("Method Not Allowed", { status: 405 });
    if (!(request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
      return refuse("invalid_request", "Expected a form-encoded body");
    }
    if (form.grant_type !== JWT_BEARER) return refuse("unsupported_grant_type", `Invalid grant_type: ${form.grant_type ?? ""}`);
    if (!form.assertion) return refuse("invalid_request", "Missing required parameter: assertion");
    const account = this.options.serviceAccount;
    let payload: Record<string, unknown>;
    try {
      const verified = await jwtVerify(form.assertion, this.#publicKey!, {
        algorithms: ["RS256"],
        issuer: account.clientEmail,
        subject: account.clientEmail,
        audience: this.tokenUri,
        requiredClaims: ["iat", "exp"],
      });
      payload = verified.payload as Record<string, unknown>;
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") return refuse("invalid_grant", "Invalid JWT Signature.");
      if (code === "ERR_JWT_EXPIRED") return refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
      return refuse("invalid_grant", `Invalid JWT: ${code || "malformed"}`);
    }
    const iat = payload.iat as number;
    const exp = payload.exp as number;
    if (exp - iat > 3600 || iat > Date.now() / 1000 + 300) {
      return refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    const scopes = typeof payload.scope === "string" ? payload.scope.split(" ") : [];
    if (!scopes.includes(CLOUD_PLATFORM_SCOPE)) return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    return Response.json(this.#issue("jwt-bearer"));
  }

  #issue(via: IssuedToken["via"]): { access_token: string; expires_in: number; token_type: "Bearer" } {
    const lifetime = this.options.tokenLifetimeSeconds ?? 3600;
    const token = `ya29.fake-${crypto.randomUUID()}`;
    this.#tokens.set(token, { expiresAt: Date.now() + lifetime * 1000, via });
    this.issued.push(via);
    return { access_token: token, expires_in: lifetime, token_type: "Bearer" };
  }

  // --- the metadata server (metadata.google.internal)

  #metadata(request: Request, path: string): Response {
    if (request.headers.get("metadata-flavor") !== "Google") {
      return new Response("Missing required header: Metadata-Flavor: Google\n", { status: 403 });
    }
    if (path === "instance/service-accounts/default/token") return Response.json(this.#issue("metadata"));
    if (path === "project/project-id") return new Response(this.options.project, { headers: { "content-type": "application/text" } });
    return new Response("Not Found\n", { status: 404 });
  }

  #authorize(request: Request): void {
    const match = /^Bearer (\S+)$/.exec(request.headers.get("authorization") ?? "");
    const issued = match ? this.#tokens.get(match[1]!) : undefined;
    if (!issued || issued.expiresAt <= Date.now()) {
      throw new GoogleError(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
      );
    }
  }

  // --- Cloud Run Admin API v2 and Cloud Logging v2

  #api(method: string, url: URL, body: unknown): Response {
    const path = url.pathname;
    if (path === "/v2/entries:list" && method === "POST") return Response.json(this.#listEntries(body));
    const jobRun = /^\/v2\/projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/:]+):run$/.exec(path);
    if (jobRun && method === "POST") return Response.json(this.#run(jobRun[1]!, jobRun[2]!, jobRun[3]!, body));
    const executionPath = /^\/v2\/(projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)\/executions\/([^/:]+))(:cancel|\/tasks)?$/.exec(path);
    if (executionPath) {
      const [, name, project, region, job, id, suffix] = executionPath;
      this.#checkJob(project!, region!, job!);
      const execution = this.executions.get(name!);
      if (!execution || execution.deleted) throw new GoogleError(404, "NOT_FOUND", `Resource '${id}' of kind 'EXECUTION' in region '${region}' in project '${project}' does not exist.`);
      if (suffix === ":cancel" && method === "POST") return Response.json(this.#cancel(execution, body));
      if (suffix === "/tasks" && method === "GET") return Response.json(this.#tasks(execution, url));
      if (suffix === undefined && method === "GET") return Response.json(this.#resource(execution));
      if (suffix === undefined && method === "DELETE") {
        execution.deleted = true;
        for (const task of execution.tasks) this.containers.stop(task.container.id, 1_000);
        return Response.json(this.#operation(execution, true));
      }
    }
    throw new GoogleError(404, "NOT_FOUND", `The requested URL ${path} was not found on this server.`);
  }

  #checkJob(project: string, region: string, job: string): FakeJob {
    const known = project === this.options.project && region === this.options.region ? this.options.jobs[job] : undefined;
    if (!known) throw new GoogleError(404, "NOT_FOUND", `Resource '${job}' of kind 'JOB' in region '${region}' in project '${project}' does not exist.`);
    return known;
  }

  #run(project: string, region: string, jobName: string, body: unknown): unknown {
    const job = this.#checkJob(project, region, jobName);
    const request = asObject(body, "");
    unknownFields(request, ["overrides", "validateOnly", "etag"], "");
    const overrides = request.overrides === undefined ? {} : asObject(request.overrides, "overrides");
    unknownFields(overrides, ["containerOverrides", "taskCount", "timeout"], "overrides");
    let args = job.args ?? [];
    const env: Record<string, string> = { ...job.env };
    if (overrides.containerOverrides !== undefined) {
      if (!Array.isArray(overrides.containerOverrides)) invalid("overrides.container_overrides", "expected a list");
      // the fake's jobs have one container
      if (overrides.containerOverrides.length > 1) invalid("overrides.container_overrides", "the job has 1 container; more overrides were given");
      for (const [i, entry] of overrides.containerOverrides.entries()) {
        const where = `overrides.container_overrides[${i}]`;
        const override = asObject(entry, where);
        unknownFields(override, ["name", "args", "env", "clearArgs"], where);
        if (override.args !== undefined) {
          if (!Array.isArray(override.args) || !override.args.every((a) => typeof a === "string")) invalid(`${where}.args`, "expected a list of strings");
          args = override.args as string[];
        }
        if (override.clearArgs === true) args = [];
        if (override.env !== undefined) {
          if (!Array.isArray(override.env)) invalid(`${where}.env`, "expected a list");
          const seen = new Set<string>();
          for (const [j, variable] of override.env.entries()) {
            const at = `${where}.env[${j}]`;
            const pair = asObject(variable, at);
            unknownFields(pair, ["name", "value", "valueSource"], at);
            if (typeof pair.name !== "string" || !ENV_NAME.test(pair.name)) invalid(`${at}.name`, "must be a valid environment variable name");
            if (pair.name.startsWith("CLOUD_RUN_")) invalid(`${at}.name`, `${pair.name} is a reserved environment variable`);
            if (seen.has(pair.name)) invalid(`${at}.name`, `duplicate environment variable ${pair.name}`);
            seen.add(pair.name);
            if (typeof pair.value !== "string") invalid(`${at}.value`, "expected a string");
            env[pair.name] = pair.value;
          }
        }
      }
    }
    let taskCount = job.taskCount ?? 1;
    if (overrides.taskCount !== undefined) {
      if (typeof overrides.taskCount !== "number" || !Number.isInteger(overrides.taskCount) || overrides.taskCount < 1 || overrides.taskCount > 10_000) {
        invalid("overrides.task_count", "must be between 1 and 10000");
      }
      taskCount = overrides.taskCount;
    }
    let timeoutSeconds: number | null = null;
    if (overrides.timeout !== undefined) {
      const match = typeof overrides.timeout === "string" ? /^(\d+)(?:\.\d{1,9})?s$/.exec(overrides.timeout) : null;
      if (!match) invalid("overrides.timeout", `Invalid value at 'overrides.timeout' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(overrides.timeout)}`);
      timeoutSeconds = Number(match[1]);
    }
    if (request.validateOnly === true) return this.#operationOf(`projects/${project}/locations/${region}/jobs/${jobName}`, null, true);

    const id = `${jobName}-${String(this.#next++).padStart(5, "0")}`;
    const name = `projects/${project}/locations/${region}/jobs/${jobName}/executions/${id}`;
    const execution: FakeExecution = {
      name,
      job: jobName,
      createTime: new Date().toISOString(),
      taskCount,
      timeoutSeconds,
      tasks: [],
      cancelRequested: false,
      deleted: false,
      args,
      env,
    };
    for (let index = 0; index < taskCount; index++) {
      // what Cloud Run sets in every task's container
      const taskEnv = { ...env, CLOUD_RUN_JOB: jobName, CLOUD_RUN_EXECUTION: id, CLOUD_RUN_TASK_INDEX: String(index), CLOUD_RUN_TASK_ATTEMPT: "0", CLOUD_RUN_TASK_COUNT: String(taskCount) };
      const task: FakeTask = { index, container: this.containers.run([...job.command, ...args], taskEnv), timedOut: false };
      execution.tasks.push(task);
      if (timeoutSeconds !== null) {
        const timer = setTimeout(() => {
          if (task.container.state === "running") {
            task.timedOut = true;
            this.containers.stop(task.container.id, 1_000);
          }
        }, timeoutSeconds * 1000);
        timer.unref();
      }
    }
    this.executions.set(name, execution);
    return this.#operation(execution, false);
  }

  #cancel(execution: FakeExecution, body: unknown): unknown {
    unknownFields(asObject(body ?? {}, ""), ["validateOnly", "etag"], "");
    if (execution.tasks.every((task) => task.container.state === "exited")) {
      throw new GoogleError(400, "FAILED_PRECONDITION", `Execution ${execution.name.split("/").pop()} has already completed and cannot be cancelled.`);
    }
    execution.cancelRequested = true;
    for (const task of execution.tasks) this.containers.stop(task.container.id, 1_000);
    return this.#operation(execution, false);
  }

  #operation(execution: FakeExecution, done: boolean): unknown {
    const [project, , region] = execution.name.split("/").slice(1);
    return this.#operationOf(`projects/${project}/locations/${region}`, this.#resource(execution), done);
  }

  #operationOf(parent: string, metadata: unknown, done: boolean): unknown {
    const location = parent.split("/").slice(0, 4).join("/");
    const operation: Record<string, unknown> = { name: `${location}/operations/${crypto.randomUUID()}`, done };
    if (metadata) operation.metadata = { "@type": "type.googleapis.com/google.cloud.run.v2.Execution", ...(metadata as object) };
    return operation;
  }

  #taskState(task: FakeTask, execution: FakeExecution): "running" | "succeeded" | "failed" | "cancelled" {
    if (task.container.state === "running") return "running";
    if (execution.cancelRequested) return "cancelled";
    return task.container.exitCode === 0 && !task.timedOut ? "succeeded" : "failed";
  }

  #taskName(execution: FakeExecution, task: FakeTask): string {
    return `${execution.name}/tasks/${execution.name.split("/").pop()}-task${task.index}`;
  }

  /** The Execution resource as Run v2 renders it. */
  #resource(execution: FakeExecution): Record<string, unknown> {
    const states = execution.tasks.map((task) => this.#taskState(task, execution));
    const count = (state: string) => states.filter((s) => s === state).length;
    const finished = !states.includes("running");
    const resource: Record<string, unknown> = {
      name: execution.name,
      uid: execution.name.split("/").pop(),
      job: execution.job,
      createTime: execution.createTime,
      startTime: execution.createTime,
      taskCount: execution.taskCount,
      parallelism: execution.taskCount,
      runningCount: count("running"),
      succeededCount: count("succeeded"),
      failedCount: count("failed"),
      cancelledCount: count("cancelled"),
      logUri: `https://console.cloud.google.com/logs/viewer?project=${this.options.project}`,
    };
    const completed: Record<string, unknown> = { type: "Completed", lastTransitionTime: new Date().toISOString() };
    if (!finished) {
      completed.state = "CONDITION_PENDING";
      if (execution.cancelRequested) completed.executionReason = "CANCELLING";
    } else {
      const endedAt = Math.max(...execution.tasks.map((task) => task.container.finishedAt ?? Date.now()));
      resource.completionTime = new Date(endedAt).toISOString();
      if (execution.cancelRequested) {
        completed.state = "CONDITION_FAILED";
        completed.executionReason = "CANCELLED";
        completed.message = "The execution was cancelled.";
      } else if (count("failed") > 0) {
        const task = execution.tasks[states.indexOf("failed")]!;
        completed.state = "CONDITION_FAILED";
        completed.executionReason = "NON_ZERO_EXIT_CODE";
        completed.message = task.timedOut
          ? `Task ${this.#taskName(execution, task).split("/").pop()} failed: the task timed out after ${execution.timeoutSeconds}s.`
          : `Task ${this.#taskName(execution, task).split("/").pop()} failed with message: The container exited with an exit code of ${task.container.exitCode}.`;
      } else {
        completed.state = "CONDITION_SUCCEEDED";
        completed.message = `Execution completed successfully in ${((endedAt - Date.parse(execution.createTime)) / 1000).toFixed(1)}s.`;
      }
    }
    resource.conditions = [
      { type: "ResourcesAvailable", state: "CONDITION_SUCCEEDED" },
      { type: "Started", state: "CONDITION_SUCCEEDED" },
      completed,
    ];
    return resource;
  }

  #tasks(execution: FakeExecution, url: URL): unknown {
    const pageSize = Math.min(Number(url.searchParams.get("pageSize") ?? 1000) || 1000, this.options.maxPageSize ?? 1000);
    const start = Number(url.searchParams.get("pageToken") ?? 0);
    const tasks = execution.tasks.slice(start, start + pageSize).map((task) => {
      const state = this.#taskState(task, execution);
      const resource: Record<string, unknown> = { name: this.#taskName(execution, task), index: task.index, execution: execution.name.split("/").pop() };
      if (state !== "running") {
        resource.lastAttemptResult =
          state === "succeeded"
            ? { status: {}, exitCode: 0 }
            : { status: { code: 2, message: task.timedOut ? "Task timed out." : `The container exited with an exit code of ${task.container.exitCode}.` }, exitCode: task.container.exitCode };
      }
      return resource;
    });
    const next = start + pageSize;
    return next < execution.tasks.length ? { tasks, nextPageToken: String(next) } : { tasks };
  }

  /** Cloud Logging's entries:list over the executions' container output, one entry per line (JSON lines as jsonPayload). */
  #listEntries(body: unknown): unknown {
    const request = asObject(body, "");
    unknownFields(request, ["resourceNames", "filter", "orderBy", "pageSize", "pageToken", "projectIds"], "");
    if (!Array.isArray(request.resourceNames) || request.resourceNames.length === 0) invalid("resource_names", "at least one resource name is required");
    if (!request.resourceNames.includes(`projects/${this.options.project}`)) {
      throw new GoogleError(403, "PERMISSION_DENIED", `The caller does not have permission on ${JSON.stringify(request.resourceNames)}`);
    }
    const filter = typeof request.filter === "string" ? request.filter : "";
    if (!filter.includes('resource.type="cloud_run_job"')) invalid("filter", 'the fake answers only filters on resource.type="cloud_run_job"');
    const byExecution = /labels\."run\.googleapis\.com\/execution_name"="([^"]+)"/.exec(filter);
    if (!byExecution) invalid("filter", 'the fake answers only filters on labels."run.googleapis.com/execution_name"');
    if (request.orderBy !== undefined && request.orderBy !== "timestamp asc" && request.orderBy !== "timestamp desc") invalid("order_by", `unsupported ${JSON.stringify(request.orderBy)}`);
    const execution = this.execution(byExecution[1]!);
    const entries: Record<string, unknown>[] = [];
    for (const task of execution?.tasks ?? []) {
      const lines = task.container.output.split("\n");
      if (lines.at(-1) === "") lines.pop();
      lines.forEach((line, i) => {
        const entry: Record<string, unknown> = {
          logName: `projects/${this.options.project}/logs/run.googleapis.com%2Fstdout`,
          resource: { type: "cloud_run_job", labels: { job_name: execution!.job, location: this.options.region, project_id: this.options.project } },
          labels: { "run.googleapis.com/execution_name": execution!.name.split("/").pop(), "run.googleapis.com/task_index": String(task.index) },
          timestamp: new Date(task.container.startedAt + i).toISOString(),
          insertId: `${task.container.id}-${i}`,
        };
        // Cloud Logging turns a stdout line that is a JSON object into a structured entry
        const json = line.startsWith("{") ? tryParseObject(line) : null;
        if (json) entry.jsonPayload = json;
        else entry.textPayload = line;
        entries.push(entry);
      });
    }
    entries.sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));
    if (request.orderBy === "timestamp desc") entries.reverse();
    const pageSize = Math.min(typeof request.pageSize === "number" ? request.pageSize : 50, this.options.maxPageSize ?? 1000);
    const start = typeof request.pageToken === "string" ? Number(request.pageToken) : 0;
    const page = entries.slice(start, start + pageSize);
    return start + pageSize < entries.length ? { entries: page, nextPageToken: String(start + pageSize) } : { entries: page };
  }

  /** Waits until every container of every execution has exited (teardown, or before asserting on a stop). */
  async settled(limitMs = 10_000): Promise<void> {
    const deadline = Date.now() + limitMs;
    while ([...this.containers.containers.values()].some((c) => c.state === "running") && Date.now() < deadline) await sleep(50);
  }
}

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) invalid(where || "request", "expected an object");
  return value as Record<string, unknown>;
}

/** Google's JSON parser refuses fields the message type does not have. */
function unknownFields(object: Record<string, unknown>, known: string[], where: string): void {
  for (const field of Object.keys(object)) {
    if (!known.includes(field)) {
      throw new GoogleError(400, "INVALID_ARGUMENT", `Invalid JSON payload received. Unknown name "${field}" at '${where}': Cannot find field.`);
    }
  }
}

function invalid(field: string, problem: string): never {
  throw new GoogleError(400, "INVALID_ARGUMENT", `Invalid value for field '${field}': ${problem}`);
}

function tryParseObject(line: string): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
