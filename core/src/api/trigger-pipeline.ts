/**
 * trigger_pipeline: the TypeScript counterpart of Mage's
 * `mage_ai.orchestration.triggers.api.trigger_pipeline`, for scripts and blocks. It creates a run
 * of a pipeline through a trigger (the named one, or an `api` trigger made on first use), and
 * with `checkStatus` waits for the run to end, throwing on failure with `errorOnFailure`.
 *
 * The target is either a project's database (the run starts when a scheduler picks it up, as
 * in Mage) or a remote kiln server, reached through its REST API with an editor API key.
 *
 * ```ts
 * const run = await triggerPipeline({ store, project }, "downstream", { variables: { date: "2024-01-01" } });
 * await triggerPipeline({ url: "http://kiln:6789", apiKey }, "etl", { checkStatus: true, pollInterval: 5, errorOnFailure: true });
 * ```
 */
import { systemClock, type Clock } from "../clock.ts";
import type { JsonObject, PipelineRun, PipelineRunStatus, PipelineSchedule } from "../domain.ts";
import type { Project } from "../project/types.ts";
import type { Store } from "../store/index.ts";
import { messageOf } from "../errors.ts";
import { TriggerPipelineError } from "./trigger-pipeline-error.ts";

export { TriggerPipelineError } from "./trigger-pipeline-error.ts";

/** The trigger kiln creates for triggerPipeline when no schedule name is given. */
export const TRIGGER_PIPELINE_SCHEDULE = "trigger_pipeline";

/** A project's database: the run is created there and started by a scheduler. */
export interface LocalTarget {
  store: Store;
  project: Project;
}

/** A kiln server: `url` like `http://kiln:6789`, `apiKey` an editor key (`kiln_...`). */
export interface RemoteTarget {
  url: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** For the waits between polls; the system clock by default. */
  clock?: Clock;
}

export type TriggerTarget = LocalTarget | RemoteTarget;

export interface TriggerPipelineOptions {
  /** The run's variables (they override the trigger's). */
  variables?: JsonObject;
  /** Wait for the run to end (completed, failed or cancelled). */
  checkStatus?: boolean;
  /** With checkStatus: throw a TriggerPipelineError when the run failed. */
  errorOnFailure?: boolean;
  /** Seconds between status checks (Mage's default, 60). */
  pollInterval?: number;
  /** Seconds to wait at most; past it a TriggerPipelineError is thrown (the run goes on). */
  pollTimeout?: number | null;
  /** The trigger to run through; created as an active api trigger if the pipeline has none by that name. */
  scheduleName?: string;
  /** Told the run's status at every check (Mage's verbose). */
  log?: (message: string) => void;
  /** Stops waiting (not the run) when aborted. */
  signal?: AbortSignal;
}

const ENDED: readonly PipelineRunStatus[] = ["completed", "failed", "cancelled"];

/** What a target must do; one implementation talks to the database, the other to a server. */
interface Backend {
  clock: Clock;
  scheduleId(pipelineUuid: string, name: string): Promise<number>;
  createRun(scheduleId: number, variables: JsonObject): Promise<PipelineRun>;
  getRun(id: number): Promise<PipelineRun>;
}

/** Creates a run of `pipelineUuid` and, with checkStatus, waits for it to end; returns the run as last seen. */
export async function triggerPipeline(target: TriggerTarget, pipelineUuid: string, options: TriggerPipelineOptions = {}): Promise<PipelineRun> {
  const pollMs = (options.pollInterval ?? 60) * 1000;
  if (!(pollMs >= 0) || !Number.isFinite(pollMs)) throw new TriggerPipelineError(`pollInterval: expected a non-negative number of seconds, got ${options.pollInterval}`);
  const timeout = options.pollTimeout ?? null;
  if (timeout !== null && !(timeout > 0)) throw new TriggerPipelineError(`pollTimeout: expected a positive number of seconds, got ${timeout}`);
  const backend = "store" in target ? localBackend(target) : remoteBackend(target);
  const scheduleId = await backend.scheduleId(pipelineUuid, options.scheduleName ?? TRIGGER_PIPELINE_SCHEDULE);
  let run = await backend.createRun(scheduleId, options.variables ?? {});
  options.log?.(`pipeline run ${run.id} of ${pipelineUuid}: ${run.status}`);
  if (!options.checkStatus) return run;

  const deadline = timeout === null ? null : backend.clock.now() + timeout * 1000;
  while (!ENDED.includes(run.status)) {
    if (options.signal?.aborted) throw new TriggerPipelineError(`stopped waiting for pipeline run ${run.id} of ${pipelineUuid}: aborted`, run);
    if (deadline !== null && backend.clock.now() >= deadline) {
      throw new TriggerPipelineError(`pipeline run ${run.id} of ${pipelineUuid} did not end within ${timeout} s (it is ${run.status})`, run);
    }
    const wait = deadline === null ? pollMs : Math.min(pollMs, Math.max(0, deadline - backend.clock.now()));
    await pause(backend.clock, wait, options.signal);
    if (options.signal?.aborted) throw new TriggerPipelineError(`stopped waiting for pipeline run ${run.id} of ${pipelineUuid}: aborted`, run);
    run = await backend.getRun(run.id);
    options.log?.(`pipeline run ${run.id} of ${pipelineUuid}: ${run.status}`);
  }
  if (run.status === "failed" && options.errorOnFailure) {
    const reason = typeof run.metrics.error === "string" ? `: ${run.metrics.error}` : "";
    throw new TriggerPipelineError(`pipeline run ${run.id} of ${pipelineUuid} failed${reason}`, run);
  }
  return run;
}

/** Waits `ms` of the clock's time, or until the signal is aborted. */
function pause(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const cancel = clock.setTimer(ms, done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The database side's modules, imported on first use: @kiln/core's entry (what every block
 * imports) then loads neither the store's queries nor the trigger settings' schema.
 */
const databaseModules = () => Promise.all([import("../store/schedules.ts"), import("./schedules.ts")]);

function localBackend({ store, project }: LocalTarget): Backend {
  const find = async (pipelineUuid: string, name: string): Promise<PipelineSchedule | null> => (await databaseModules())[0].scheduleByName(store.client, pipelineUuid, name);
  return {
    clock: store.clock,
    async scheduleId(pipelineUuid, name) {
      if (!project.pipelines.has(pipelineUuid)) throw new TriggerPipelineError(`no pipeline ${pipelineUuid} in the project`);
      const { createSchedule } = (await databaseModules())[1];
      const existing = await find(pipelineUuid, name);
      if (existing) return existing.id;
      try {
        return (await createSchedule(store, project, { name, pipelineUuid, scheduleType: "api", status: "active" })).id;
      } catch (error) {
        // another caller created it between our read and our insert: use theirs
        const raced = await find(pipelineUuid, name);
        if (raced) return raced.id;
        throw error;
      }
    },
    createRun: async (scheduleId, variables) => (await databaseModules())[1].createRunForSchedule(store, scheduleId, { variables }),
    async getRun(id) {
      const run = await store.getPipelineRun(id);
      if (!run) throw new TriggerPipelineError(`pipeline run ${id} no longer exists`);
      return run;
    },
  };
}

function remoteBackend(target: RemoteTarget): Backend {
  const base = target.url.replace(/\/+$/, "");
  const doFetch = target.fetch ?? globalThis.fetch;
  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: JsonObject }> {
    const headers: Record<string, string> = { authorization: `Bearer ${target.apiKey}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (error) {
      throw new TriggerPipelineError(`${method} ${base}${path}: ${messageOf(error)}`);
    }
    const text = await response.text();
    let json: JsonObject = {};
    try {
      const parsed: unknown = text ? JSON.parse(text) : {};
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) json = parsed as JsonObject;
    } catch {
      // not JSON (a proxy's error page): the status says enough
    }
    return { status: response.status, json };
  }
  const fail = (what: string, answer: { status: number; json: JsonObject }): never => {
    const error = answer.json.error as { message?: unknown } | undefined;
    throw new TriggerPipelineError(`${what}: HTTP ${answer.status}${typeof error?.message === "string" ? ` ${error.message}` : ""}`);
  };
  const path = (uuid: string) => `/api/pipelines/${encodeURIComponent(uuid)}/pipeline_schedules`;
  async function find(pipelineUuid: string, name: string): Promise<number | null> {
    let after: string | null = null;
    do {
      const answer = await call("GET", `${path(pipelineUuid)}?_limit=1000${after ? `&_after=${encodeURIComponent(after)}` : ""}`);
      if (answer.status !== 200) fail(`listing the triggers of ${pipelineUuid}`, answer);
      const schedules = (answer.json.pipeline_schedules ?? []) as Array<{ id: number; name: string }>;
      const found = schedules.find((s) => s.name === name);
      if (found) return Number(found.id);
      const next = (answer.json.metadata as { next?: unknown } | undefined)?.next;
      after = typeof next === "string" ? next : null;
    } while (after !== null);
    return null;
  }
  return {
    clock: target.clock ?? systemClock,
    async scheduleId(pipelineUuid, name) {
      const existing = await find(pipelineUuid, name);
      if (existing !== null) return existing;
      const created = await call("POST", path(pipelineUuid), { pipeline_schedule: { name, schedule_type: "api", status: "active" } });
      if (created.status === 201) return Number((created.json.pipeline_schedule as { id: number }).id);
      // 409: created by another caller meanwhile
      if (created.status === 409) {
        const raced = await find(pipelineUuid, name);
        if (raced !== null) return raced;
      }
      return fail(`creating trigger ${name} of ${pipelineUuid}`, created);
    },
    async createRun(scheduleId, variables) {
      const answer = await call("POST", `/api/pipeline_schedules/${scheduleId}/pipeline_runs`, { pipeline_run: { variables } });
      if (answer.status !== 201) fail(`creating a run of trigger ${scheduleId}`, answer);
      return runFromJson(answer.json.pipeline_run as JsonObject);
    },
    async getRun(id) {
      const answer = await call("GET", `/api/pipeline_runs/${id}`);
      if (answer.status !== 200) fail(`reading pipeline run ${id}`, answer);
      return runFromJson(answer.json.pipeline_run as JsonObject);
    },
  };
}

/** A run as the API shows it (snake_case, ISO times), back into the domain's shape. */
function runFromJson(json: JsonObject): PipelineRun {
  const time = (value: unknown): number | null => (typeof value === "string" ? Date.parse(value) : null);
  const object = (value: unknown): JsonObject => (value !== null && typeof value === "object" && !Array.isArray(value) ? (value as JsonObject) : {});
  return {
    id: Number(json.id),
    pipelineScheduleId: json.pipeline_schedule_id === null || json.pipeline_schedule_id === undefined ? null : Number(json.pipeline_schedule_id),
    pipelineUuid: String(json.pipeline_uuid),
    executionDate: time(json.execution_date) ?? 0,
    executionPartition: String(json.execution_partition),
    status: String(json.status) as PipelineRunStatus,
    variables: object(json.variables),
    event: json.event === null || json.event === undefined ? null : object(json.event),
    metrics: object(json.metrics),
    backfillId: json.backfill_id === null || json.backfill_id === undefined ? null : Number(json.backfill_id),
    owner: null,
    passedSla: json.passed_sla === true,
    startedAt: time(json.started_at),
    completedAt: time(json.completed_at),
    createdAt: time(json.created_at) ?? 0,
    updatedAt: time(json.updated_at) ?? 0,
  };
}
