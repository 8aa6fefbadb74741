/**
 * Triggers (Mage's pipeline_schedules): list and create under a pipeline, get/update/delete by
 * id, runs of a schedule, and the API trigger `POST /api/pipeline_schedules/:id/pipeline_runs/:token`.
 */
import { SCHEDULE_STATUSES, SCHEDULE_TYPES, type JsonObject, type PipelineSchedule, isKilnError } from "@kiln/core";
import { createRunForSchedule, createSchedule, deleteSchedule, lastPipelineRunStatus, nextPipelineRunDate, runtimeAverage, updateSchedule } from "@kiln/core/api";
import { hasRole } from "@kiln/core/auth";
import { boundedInteger, NameSchema } from "@kiln/core/bound-schemas";
import { MAX_SETTING_NUMBER } from "@kiln/core/bounds";
import { scheduleRunCounts, type PageRequest, type PipelineScheduleFilter } from "@kiln/core/store";
import type { Context, Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Principal } from "../auth.ts";
import { codeTriggerAccess, type Env, type ServerDeps } from "../deps.ts";
import { one, paged } from "../envelope.ts";
import { ApiError, notFound } from "../errors.ts";
import { pipelineRunListViews } from "../run-views.ts";
import { pipelineRunJson, scheduleJson } from "../serialize.ts";
import { idParam, InstantSchema, JsonObjectSchema, PageQuery, parseWith, readBody, readQuery, pageOf, RepeatedQuery } from "../validate.ts";

const ScheduleFields = {
  name: NameSchema,
  schedule_type: v.picklist(SCHEDULE_TYPES, `expected one of ${SCHEDULE_TYPES.join(", ")}`),
  schedule_interval: v.nullish(v.pipe(v.string(), v.maxLength(100))),
  start_time: v.nullish(InstantSchema),
  timezone: v.pipe(v.string(), v.maxLength(64)),
  status: v.picklist(SCHEDULE_STATUSES, `expected one of ${SCHEDULE_STATUSES.join(", ")}`),
  variables: JsonObjectSchema,
  sla: v.nullish(boundedInteger(1, MAX_SETTING_NUMBER, `expected a whole number of seconds from 1 to ${MAX_SETTING_NUMBER}`)),
  settings: JsonObjectSchema,
  description: v.nullish(v.pipe(v.string(), v.maxLength(10_000))),
  token: v.nullish(v.pipe(v.string(), v.minLength(16, "expected at least 16 characters"), v.maxLength(200))),
  /** Event triggers: the EventBridge-style pattern events must match (checked by core). */
  event_pattern: v.nullish(JsonObjectSchema),
  /** Mage's trigger tags. */
  tags: v.pipe(v.array(v.pipe(v.string(), v.minLength(1, "expected a non-empty tag"), v.maxLength(100)), "expected a list of strings"), v.maxLength(50, "expected at most 50 tags")),
};

const CreateBody = v.strictObject({
  pipeline_schedule: v.strictObject({
    ...ScheduleFields,
    schedule_type: v.optional(ScheduleFields.schedule_type, "time"),
    timezone: v.optional(ScheduleFields.timezone),
    status: v.optional(ScheduleFields.status),
    variables: v.optional(ScheduleFields.variables),
    settings: v.optional(ScheduleFields.settings),
    tags: v.optional(ScheduleFields.tags),
  }),
});

const UpdateBody = v.strictObject({
  pipeline_schedule: v.strictObject({
    name: v.optional(ScheduleFields.name),
    schedule_interval: v.optional(ScheduleFields.schedule_interval),
    start_time: v.optional(ScheduleFields.start_time),
    timezone: v.optional(ScheduleFields.timezone),
    status: v.optional(ScheduleFields.status),
    variables: v.optional(ScheduleFields.variables),
    sla: v.optional(ScheduleFields.sla),
    settings: v.optional(ScheduleFields.settings),
    description: v.optional(ScheduleFields.description),
    token: v.optional(ScheduleFields.token),
    event_pattern: v.optional(ScheduleFields.event_pattern),
    tags: v.optional(ScheduleFields.tags),
    rotate_token: v.optional(v.boolean()),
  }),
});

const ListQuery = v.strictObject({ ...PageQuery, status: v.optional(ScheduleFields.status), schedule_type: v.optional(ScheduleFields.schedule_type), "tag[]": RepeatedQuery });

/** Mage's `tag[]` (repeated or comma-separated): triggers with any of the tags. */
function tagsQuery(c: Context): { tags: string[] } | Record<string, never> {
  const raw = c.req.queries("tag[]");
  if (raw === undefined) return {};
  const tags = raw.flatMap((value) => value.split(",")).map((value) => value.trim()).filter((value) => value !== "");
  return tags.length > 0 ? { tags } : {};
}

/** The run to create: Mage's writable fields. */
const RunBody = v.strictObject({
  pipeline_run: v.optional(
    v.strictObject({
      variables: v.optional(JsonObjectSchema),
      execution_date: v.optional(InstantSchema),
    }),
    {},
  ),
});

/** The API trigger's body: `pipeline_run` plus any other keys, which become the run's event. */
const TriggerBody = v.objectWithRest(
  {
    pipeline_run: v.optional(
      v.strictObject({
        variables: v.optional(JsonObjectSchema),
        execution_date: v.optional(InstantSchema),
      }),
      {},
    ),
  },
  v.unknown(),
);

const PipelineParam = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,200}$/, "expected a pipeline uuid"));

/**
 * The schedule as the API shows it, with its next run date and its last run's status. The
 * trigger's token starts runs with variables of the caller's choosing, so it is a write
 * credential: only a principal that may write (editor, admin) gets it; for others it is omitted.
 */
export async function scheduleView(deps: ServerDeps, schedule: PipelineSchedule, principal: Principal | null): Promise<Record<string, unknown>> {
  const [lastStatus, counts, average] = await Promise.all([
    lastPipelineRunStatus(deps.store, schedule.id),
    scheduleRunCounts(deps.store.client, [schedule.id]),
    runtimeAverage(deps.store, schedule.id),
  ]);
  const view = scheduleJson(schedule, {
    nextPipelineRunDate: schedule.status === "active" ? nextPipelineRunDate(schedule, deps.clock.now()) : null,
    lastPipelineRunStatus: lastStatus,
  });
  // Mage's presenter fields: run counts (from the run counters) and the mean runtime in seconds
  view.pipeline_runs_count = counts.get(schedule.id)?.total ?? 0;
  view.pipeline_in_progress_runs_count = counts.get(schedule.id)?.inProgress ?? 0;
  view.runtime_average = average;
  if (principal && hasRole(principal.role, "editor")) view.token = schedule.hasToken ? await deps.store.revealTriggerToken(schedule.id) : null;
  return view;
}

/** A page of triggers as the API shows them, with the total matching the filter (Mage's metadata.count). */
async function scheduleList(c: Context<Env>, deps: ServerDeps, filter: PipelineScheduleFilter, page: PageRequest): Promise<Response> {
  const [found, total] = await Promise.all([deps.store.listPipelineSchedules(filter, page), deps.store.countPipelineSchedules(filter)]);
  const views = await Promise.all(found.items.map((s) => scheduleView(deps, s, c.get("principal"))));
  return paged(c, "pipeline_schedules", views, found.next, total);
}

async function scheduleOr404(deps: ServerDeps, id: number): Promise<PipelineSchedule> {
  const schedule = await deps.store.getPipelineSchedule(id);
  if (!schedule) throw notFound("pipeline schedule", id);
  return schedule;
}

function pipelineOr404(deps: ServerDeps, c: Context): string {
  const uuid = parseWith(PipelineParam, c.req.param("uuid"), "path.uuid");
  if (!deps.project().pipelines.has(uuid)) throw notFound("pipeline", uuid);
  return uuid;
}

export function scheduleRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/pipelines/:uuid/pipeline_schedules", summary: "A pipeline's triggers", role: "viewer", query: ListQuery, responseKey: "pipeline_schedules" });
  app.get("/api/pipelines/:uuid/pipeline_schedules", async (c) => {
    const pipelineUuid = pipelineOr404(deps, c);
    const query = readQuery(c, ListQuery);
    const filter = { pipelineUuid, ...(query.status ? { status: query.status } : {}), ...(query.schedule_type ? { scheduleType: query.schedule_type } : {}), ...tagsQuery(c) };
    return scheduleList(c, deps, filter, pageOf(query));
  });

  // Mage's route for every pipeline's triggers (its UI's triggers page)
  const AllQuery = v.strictObject({ ...PageQuery, status: v.optional(ScheduleFields.status), schedule_type: v.optional(ScheduleFields.schedule_type), pipeline_uuid: v.optional(PipelineParam), "tag[]": RepeatedQuery });
  doc.add({ method: "get", path: "/api/pipeline_schedules", summary: "Every pipeline's triggers (Mage's route)", role: "viewer", query: AllQuery, responseKey: "pipeline_schedules" });
  app.get("/api/pipeline_schedules", async (c) => {
    const query = readQuery(c, AllQuery);
    const filter = {
      ...(query.pipeline_uuid ? { pipelineUuid: query.pipeline_uuid } : {}),
      ...(query.status ? { status: query.status } : {}),
      ...(query.schedule_type ? { scheduleType: query.schedule_type } : {}),
      ...tagsQuery(c),
    };
    return scheduleList(c, deps, filter, pageOf(query));
  });

  doc.add({ method: "post", path: "/api/pipelines/:uuid/pipeline_schedules", summary: "Create a trigger", role: "editor", body: CreateBody, responseKey: "pipeline_schedule" });
  app.post("/api/pipelines/:uuid/pipeline_schedules", async (c) => {
    const pipelineUuid = pipelineOr404(deps, c);
    const { pipeline_schedule: s } = await readBody(c, CreateBody);
    const schedule = await createSchedule(deps.store, deps.project(), {
      name: s.name,
      pipelineUuid,
      scheduleType: s.schedule_type,
      scheduleInterval: s.schedule_interval ?? null,
      startTime: s.start_time ?? null,
      ...(s.timezone !== undefined ? { timezone: s.timezone } : {}),
      ...(s.status !== undefined ? { status: s.status } : {}),
      ...(s.variables !== undefined ? { variables: s.variables } : {}),
      sla: s.sla ?? null,
      ...(s.settings !== undefined ? { settings: s.settings } : {}),
      description: s.description ?? null,
      token: s.token ?? null,
      eventPattern: s.event_pattern ?? null,
      ...(s.tags !== undefined ? { tags: s.tags } : {}),
    }).catch((error: unknown) => {
      if (isKilnError(error, "conflict") && error.field === "name") {
        throw new ApiError("conflict", error.message, [{ field: "pipeline_schedule.name", message: "taken" }]);
      }
      throw error;
    });
    return one(c, "pipeline_schedule", await scheduleView(deps, schedule, c.get("principal")), 201);
  });

  doc.add({ method: "get", path: "/api/pipeline_schedules/:id", summary: "A trigger", role: "viewer", responseKey: "pipeline_schedule" });
  app.get("/api/pipeline_schedules/:id", async (c) => {
    const schedule = await scheduleOr404(deps, idParam(c));
    return one(c, "pipeline_schedule", await scheduleView(deps, schedule, c.get("principal")));
  });

  doc.add({ method: "put", path: "/api/pipeline_schedules/:id", summary: "Update a trigger (status, settings, variables; rotate_token)", role: "editor", body: UpdateBody, responseKey: "pipeline_schedule" });
  app.put("/api/pipeline_schedules/:id", async (c) => {
    const id = idParam(c);
    const { pipeline_schedule: s } = await readBody(c, UpdateBody);
    await scheduleOr404(deps, id);
    const updated = await updateSchedule(deps.store, id, {
      ...(s.name !== undefined ? { name: s.name } : {}),
      ...(s.schedule_interval !== undefined ? { scheduleInterval: s.schedule_interval } : {}),
      ...(s.start_time !== undefined ? { startTime: s.start_time } : {}),
      ...(s.timezone !== undefined ? { timezone: s.timezone } : {}),
      ...(s.status !== undefined ? { status: s.status } : {}),
      ...(s.variables !== undefined ? { variables: s.variables } : {}),
      ...(s.sla !== undefined ? { sla: s.sla } : {}),
      ...(s.settings !== undefined ? { settings: s.settings } : {}),
      ...(s.description !== undefined ? { description: s.description } : {}),
      ...(s.token !== undefined ? { token: s.token } : {}),
      ...(s.event_pattern !== undefined ? { eventPattern: s.event_pattern } : {}),
      ...(s.tags !== undefined ? { tags: s.tags } : {}),
      ...(s.rotate_token ? { rotateToken: true } : {}),
    }, codeTriggerAccess(deps));
    return one(c, "pipeline_schedule", await scheduleView(deps, updated, c.get("principal")));
  });

  doc.add({ method: "delete", path: "/api/pipeline_schedules/:id", summary: "Delete a trigger (its runs stay)", role: "editor", responseKey: "pipeline_schedule" });
  app.delete("/api/pipeline_schedules/:id", async (c) => {
    const schedule = await scheduleOr404(deps, idParam(c));
    const view = await scheduleView(deps, schedule, c.get("principal"));
    await deleteSchedule(deps.store, schedule.id);
    return one(c, "pipeline_schedule", view);
  });

  doc.add({ method: "get", path: "/api/pipeline_schedules/:id/pipeline_runs", summary: "A trigger's runs", role: "viewer", query: v.strictObject(PageQuery), responseKey: "pipeline_runs" });
  app.get("/api/pipeline_schedules/:id/pipeline_runs", async (c) => {
    const id = idParam(c);
    const query = readQuery(c, v.strictObject(PageQuery));
    await scheduleOr404(deps, id);
    const [page, total] = await Promise.all([
      deps.store.listPipelineRuns({ pipelineScheduleId: id }, pageOf(query)),
      deps.store.totalPipelineRuns({ pipelineScheduleId: id }),
    ]);
    return paged(c, "pipeline_runs", await pipelineRunListViews(deps, page.items, c.get("principal")), page.next, total);
  });

  doc.add({ method: "post", path: "/api/pipeline_schedules/:id/pipeline_runs", summary: "Run a trigger now", role: "editor", body: RunBody, responseKey: "pipeline_run" });
  app.post("/api/pipeline_schedules/:id/pipeline_runs", async (c) => {
    const id = idParam(c);
    const { pipeline_run: r } = await readBody(c, RunBody);
    await scheduleOr404(deps, id);
    const run = await createRunForSchedule(deps.store, id, {
      ...(r.variables ? { variables: r.variables } : {}),
      ...(r.execution_date !== undefined ? { executionDate: r.execution_date } : {}),
    }).catch(conflictOnDuplicateDate);
    return one(c, "pipeline_run", pipelineRunJson(run), 201);
  });

  doc.add({ method: "post", path: "/api/pipeline_schedules/:id/pipeline_runs/:token", summary: "API trigger: run by the trigger's token (no user credentials)", role: "public", body: TriggerBody, responseKey: "pipeline_run" });
  app.post("/api/pipeline_schedules/:id/pipeline_runs/:token", async (c) => {
    const id = idParam(c);
    const token = c.req.param("token");
    const body = await readBody(c, TriggerBody);
    // one read: the trigger, if the token is its token; an unknown schedule and a wrong token
    // answer alike, so the id space cannot be probed
    const schedule = await deps.store.apiTriggerByToken(id, token);
    if (!schedule) throw new ApiError("unauthenticated", `invalid token for pipeline schedule ${id}`);
    if (schedule.status !== "active") throw new ApiError("conflict", `pipeline schedule ${id} is inactive: activate it to accept runs`);
    const { pipeline_run: r, ...rest } = body;
    const event: JsonObject | null = Object.keys(rest).length > 0 ? rest : null;
    // the schedule as read, announced with the run: the scheduler starts it without reading either
    const run = await createRunForSchedule(deps.store, schedule, {
      ...(r.variables ? { variables: r.variables } : {}),
      ...(r.execution_date !== undefined ? { executionDate: r.execution_date } : {}),
      event,
    }).catch(conflictOnDuplicateDate);
    return one(c, "pipeline_run", pipelineRunJson(run), 201);
  });
}

function conflictOnDuplicateDate(error: unknown): never {
  if (isKilnError(error, "conflict") && error.field === "execution_date") {
    throw new ApiError("conflict", "this trigger has a run for that execution_date already", [{ field: "pipeline_run.execution_date", message: "taken" }]);
  }
  throw error;
}
