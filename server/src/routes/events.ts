/**
 * Event triggers: `POST /api/events` takes an event (an S3 notification, an EventBridge event,
 * any JSON object) and creates a run for each active event trigger whose pattern it matches.
 *
 * It is public in auth.ts because it authenticates itself, by one of (`Authorization: Bearer`
 * or `?token=`):
 * - an event trigger's own token: only that trigger's pattern is considered;
 * - the project's events token (KILN_EVENTS_TOKEN): every active event trigger;
 * - an API key or session with the editor role: every active event trigger.
 * Tokens are compared in constant time; anything else is a 401 and writes nothing.
 */
import { type JsonObject } from "@kiln/core";
import { constantTimeEqual, hasRole } from "@kiln/core/auth";
import { dispatchEvent, eventTriggersWithToken } from "@kiln/core/events";
import type { Context, Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { pipelineRunJson } from "../serialize.ts";
import { readBody, readQuery } from "../validate.ts";

/** The event: any JSON object (a list, a string or nothing is refused; v.record alone takes a list). */
const EventBody = v.pipe(
  v.custom<JsonObject>((value) => value !== null && typeof value === "object" && !Array.isArray(value), "expected a JSON object (the event)"),
  v.record(v.string(), v.unknown()),
);

const EventQuery = v.strictObject({ token: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(200))) });

const unauthenticated = () =>
  new ApiError("unauthenticated", "send an event trigger's token, the project's events token or an editor API key, as Authorization: Bearer <token> or ?token=");

/** Which event triggers the caller may fire: all of them, or those of its trigger token. */
async function allowedTriggers(c: Context<Env>, deps: ServerDeps, queryToken: string | undefined): Promise<"all" | number[]> {
  const principal = c.get("principal");
  if (principal) {
    if (!hasRole(principal.role, "editor")) throw new ApiError("forbidden", `sending events needs the editor role; you have ${principal.role}`);
    return "all";
  }
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1];
  const token = bearer ?? queryToken;
  if (!token) throw unauthenticated();
  if (deps.eventsToken && constantTimeEqual(token, deps.eventsToken)) return "all";
  const ids = await eventTriggersWithToken(deps.store, token);
  if (ids.length === 0) throw unauthenticated();
  return ids;
}

export function eventRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({
    method: "post",
    path: "/api/events",
    summary: "Event trigger: match an event against the active event triggers and run each that matches (a trigger's token, the events token or an editor key)",
    role: "public",
    query: EventQuery,
    body: EventBody,
    responseKey: "pipeline_runs",
  });
  app.post("/api/events", async (c) => {
    const query = readQuery(c, EventQuery);
    const allowed = await allowedTriggers(c, deps, query.token);
    if ((await c.req.text()).trim() === "") throw new ApiError("invalid_request", "body: expected a JSON object (the event)", [{ field: "body", message: "expected a JSON object (the event)" }]);
    const event: JsonObject = await readBody(c, EventBody);
    const { runs, considered } = await dispatchEvent(deps.store, deps.project(), event, allowed === "all" ? {} : { scheduleIds: allowed });
    return c.json({ pipeline_runs: runs.map(pipelineRunJson), metadata: { count: runs.length, next: false, after: null, considered } }, runs.length > 0 ? 201 : 200);
  });
}
