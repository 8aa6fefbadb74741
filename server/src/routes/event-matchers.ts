/**
 * Mage's event matchers, read-only: in kiln an event trigger carries its own pattern
 * (`event_pattern`), so each event trigger with a pattern is one matcher, with the trigger's id.
 * Mage's clients list them at `/api/event_matchers` to see which events start which triggers;
 * patterns are edited on the trigger (PUT /api/pipeline_schedules/:id, or triggers.yaml).
 */
import type { PipelineSchedule } from "@kiln/core";
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { one, paged } from "../envelope.ts";
import { notFound } from "../errors.ts";
import { scheduleJson } from "../serialize.ts";
import { idParam, PageQuery, readQuery, pageOf } from "../validate.ts";

/** Mage's only event type: events in AWS EventBridge's shape, which kiln's patterns match. */
const EVENT_TYPE = "aws_event";

const ListQuery = v.strictObject({ ...PageQuery });

/** One event trigger as Mage's EventMatcher presents it. */
function eventMatcherJson(schedule: PipelineSchedule): Record<string, unknown> {
  // the trigger's own serialisation, for the same dates (a stored date out of range reads as invalid, never throws)
  const trigger = scheduleJson(schedule);
  return {
    id: schedule.id,
    name: schedule.name,
    event_type: EVENT_TYPE,
    pattern: schedule.eventPattern,
    pipeline_schedule_ids: [schedule.id],
    created_at: trigger.created_at,
    updated_at: trigger.updated_at,
  };
}

export function eventMatcherRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/event_matchers", summary: "Event triggers' patterns, as Mage's event matchers (one per event trigger, with its id)", role: "viewer", query: ListQuery, responseKey: "event_matchers" });
  app.get("/api/event_matchers", async (c) => {
    const query = readQuery(c, ListQuery);
    // event triggers without a pattern match nothing: they are no matchers, in the page or its total
    const filter = { scheduleType: "event", withEventPattern: true };
    const [page, total] = await Promise.all([deps.store.listPipelineSchedules(filter, pageOf(query)), deps.store.countPipelineSchedules(filter)]);
    return paged(c, "event_matchers", page.items.map(eventMatcherJson), page.next, total);
  });

  doc.add({ method: "get", path: "/api/event_matchers/:id", summary: "One event trigger's pattern, as a Mage event matcher", role: "viewer", responseKey: "event_matcher" });
  app.get("/api/event_matchers/:id", async (c) => {
    const id = idParam(c);
    const schedule = await deps.store.getPipelineSchedule(id);
    if (!schedule || schedule.scheduleType !== "event" || schedule.eventPattern === null) throw notFound("event matcher", id);
    return one(c, "event_matcher", eventMatcherJson(schedule));
  });
}
