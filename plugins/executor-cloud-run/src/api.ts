/**
 * The few calls of the Cloud Run Admin API v2 and Cloud Logging API v2 the executor makes, over
 * fetch: the official client (@google-cloud/run) needs Node 22 and gRPC, which Workers lack.
 */
import type { Fetch, TokenSource } from "./auth.ts";
import { messageOf } from "@kiln/core";

/** A Cloud Run condition (Execution.conditions, Task.conditions). */
export interface Condition {
  type?: string;
  state?: string;
  message?: string;
  reason?: string;
  executionReason?: string;
}

/** The parts of a v2 Execution resource the executor reads. */
export interface Execution {
  name: string;
  taskCount?: number;
  runningCount?: number;
  succeededCount?: number;
  failedCount?: number;
  cancelledCount?: number;
  completionTime?: string;
  conditions?: Condition[];
  logUri?: string;
}

/** The parts of a v2 Task resource the executor reads. */
export interface Task {
  name: string;
  index?: number;
  conditions?: Condition[];
  lastAttemptResult?: { status?: { code?: number; message?: string }; exitCode?: number };
}

/** A Cloud Logging entry; Cloud Run jobs' stdout lines come as textPayload, or jsonPayload when a line is JSON. */
export interface LogEntry {
  textPayload?: string;
  jsonPayload?: Record<string, unknown>;
  timestamp?: string;
}

/** What jobs:run takes: overrides for the job's one container and the execution. */
export interface RunOverrides {
  containerOverrides: Array<{ args: string[]; env: Array<{ name: string; value: string }> }>;
  taskCount: number;
  /** Protobuf Duration JSON: seconds with an "s". */
  timeout?: string;
}

/** An error answer from a Google API, with its HTTP status and Google's status name (NOT_FOUND, ...). */
export class GoogleApiError extends Error {
  override readonly name = "GoogleApiError";
  constructor(
    message: string,
    readonly httpStatus: number,
    readonly googleStatus: string | null,
  ) {
    super(message);
  }
}

/** Authenticated JSON calls to one Google API base URL. */
export class GoogleApi {
  constructor(
    private readonly tokens: TokenSource,
    private readonly fetcher: Fetch,
  ) {}

  /** Sends one call; retries once with a fresh token when the API says the token is no good (revoked, or expired early). */
  async call<T>(method: "GET" | "POST" | "DELETE", url: string, body?: unknown): Promise<T> {
    let response = await this.#send(method, url, body);
    if (response.status === 401) {
      this.tokens.invalidate();
      response = await this.#send(method, url, body);
    }
    const text = await response.text();
    if (!response.ok) throw apiError(method, url, response.status, text);
    try {
      return (text === "" ? {} : JSON.parse(text)) as T;
    } catch {
      throw new GoogleApiError(`${method} ${url} answered ${response.status} with a body that is not JSON`, response.status, null);
    }
  }

  async #send(method: string, url: string, body: unknown): Promise<Response> {
    const token = await this.tokens.token();
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await this.fetcher(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new GoogleApiError(`${method} ${url} could not be reached: ${messageOf(error)}`, 0, null);
    }
  }
}

/** Google's error envelope, {error: {code, message, status}}, as an error naming the call. */
function apiError(method: string, url: string, httpStatus: number, text: string): GoogleApiError {
  let status: string | null = null;
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown; status?: unknown } };
    if (typeof parsed.error?.status === "string") status = parsed.error.status;
    if (typeof parsed.error?.message === "string") message = parsed.error.message;
  } catch {
    // not Google's envelope: the raw text (cut short) says what there is to say
  }
  const hint = httpStatus === 401 ? " (the credentials were refused: check the service account's key or the metadata server's account)" : httpStatus === 403 ? " (the service account lacks a role: roles/run.developer runs jobs with overrides, roles/logging.viewer reads logs)" : "";
  return new GoogleApiError(`${method} ${url} answered ${httpStatus}${status ? ` ${status}` : ""}: ${message}${hint}`, httpStatus, status);
}

/** The Cloud Run Admin API v2 and Cloud Logging calls the executor makes. */
export class CloudRunApi {
  readonly #api: GoogleApi;

  constructor(
    tokens: TokenSource,
    fetcher: Fetch,
    private readonly endpoint: string,
    private readonly loggingEndpoint: string,
  ) {
    this.#api = new GoogleApi(tokens, fetcher);
  }

  /** Runs a job with overrides; the answer is a long-running Operation whose metadata is the new Execution. */
  async runJob(jobName: string, overrides: RunOverrides): Promise<Execution> {
    const operation = await this.#api.call<{ name?: string; metadata?: Partial<Execution>; error?: { message?: string } }>(
      "POST",
      `${this.endpoint}/v2/${jobName}:run`,
      { overrides },
    );
    if (operation.error) throw new GoogleApiError(`${jobName}:run failed: ${operation.error.message ?? "no message"}`, 200, null);
    const name = operation.metadata?.name;
    if (typeof name !== "string" || !EXECUTION_NAME.test(name)) {
      throw new GoogleApiError(`${jobName}:run answered an operation without an execution name in its metadata`, 200, null);
    }
    return { ...operation.metadata, name };
  }

  /** The execution resource, by full name. */
  getExecution(name: string): Promise<Execution> {
    return this.#api.call<Execution>("GET", `${this.endpoint}/v2/${name}`);
  }

  /** The execution's tasks (they carry the containers' exit codes). */
  async listTasks(execution: string): Promise<Task[]> {
    const tasks: Task[] = [];
    let pageToken: string | undefined;
    do {
      const query = pageToken ? `?pageToken=${encodeURIComponent(pageToken)}` : "";
      const page = await this.#api.call<{ tasks?: Task[]; nextPageToken?: string }>("GET", `${this.endpoint}/v2/${execution}/tasks${query}`);
      tasks.push(...(page.tasks ?? []));
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
    return tasks;
  }

  /** Asks Cloud Run to cancel an execution (it stops the running tasks). */
  async cancelExecution(name: string): Promise<void> {
    await this.#api.call("POST", `${this.endpoint}/v2/${name}:cancel`, {});
  }

  /** Every log entry of an execution, oldest first. */
  async *logEntries(execution: string): AsyncGenerator<LogEntry> {
    const parts = parseExecutionName(execution);
    const quote = (value: string) => JSON.stringify(value); // the filter language's strings escape as JSON's do
    const filter = [
      'resource.type="cloud_run_job"',
      `resource.labels.job_name=${quote(parts.job)}`,
      `resource.labels.location=${quote(parts.region)}`,
      `labels."run.googleapis.com/execution_name"=${quote(parts.execution)}`,
    ].join(" AND ");
    let pageToken: string | undefined;
    do {
      const body: Record<string, unknown> = { resourceNames: [`projects/${parts.project}`], filter, orderBy: "timestamp asc", pageSize: 1000 };
      if (pageToken) body.pageToken = pageToken;
      const page = await this.#api.call<{ entries?: LogEntry[]; nextPageToken?: string }>("POST", `${this.loggingEndpoint}/v2/entries:list`, body);
      yield* page.entries ?? [];
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
  }
}

const EXECUTION_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)\/executions\/([^/]+)$/;

/** The parts of an execution's full name, projects/{p}/locations/{r}/jobs/{j}/executions/{e}. */
export function parseExecutionName(name: string): { project: string; region: string; job: string; execution: string } {
  const match = EXECUTION_NAME.exec(name);
  if (!match) throw new Error(`not a Cloud Run execution name: ${JSON.stringify(name)}`);
  return { project: match[1]!, region: match[2]!, job: match[3]!, execution: match[4]! };
}
