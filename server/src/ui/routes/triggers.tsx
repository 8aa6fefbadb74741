/** @jsxImportSource hono/jsx */
/** A trigger's page and its actions: run now, activate or deactivate, rotate the API token. */
import { KilnError, type JsonObject } from "@kiln/core";
import { createRunForSchedule, updateSchedule } from "@kiln/core/api";
import { occurrences, scheduleSpec, schedulingSettings } from "@kiln/core/schedule";
import type { Context } from "hono";
import { codeTriggerAccess } from "../../deps.ts";
import { requestHost, requestProto } from "../../forwarded.ts";
import { TriggerPage } from "../pages/triggers.tsx";
import { back, idOf, message, page, type UiRoutes } from "../render.tsx";
import { canAct, needRole, type UiEnv } from "../session.ts";

/** How many upcoming execution dates a trigger page lists. */
const NEXT_DATES = 10;

/** The API-trigger URL as the browser addressed this server (a trusted proxy's forwarded host and scheme win). */
function apiTriggerUrl(c: Context<UiEnv>, scheduleId: number, token: string): string {
  const proto = requestProto(c);
  const host = requestHost(c);
  return `${proto}://${host}/api/pipeline_schedules/${scheduleId}/pipeline_runs/${encodeURIComponent(token)}`;
}

export const triggerRoutes: UiRoutes = (ui, deps) => {
  ui.get("/triggers/:id", async (c) => {
    const id = idOf(c, "trigger");
    const schedule = await deps.store.getPipelineSchedule(id);
    if (!schedule) throw new KilnError("not_found", `There is no trigger ${id}.`);
    const now = deps.clock.now();
    let nextDates: number[] | null = null;
    let nextDatesError: string | null = null;
    if (schedule.scheduleType === "time") {
      try {
        const settings = schedulingSettings(schedule.settings as JsonObject);
        const spec = scheduleSpec({ interval: schedule.scheduleInterval ?? "", timezone: schedule.timezone, startTime: schedule.startTime, dstGap: settings.dstGap, dstOverlap: settings.dstOverlap });
        // a year ahead covers every expression kiln accepts but @yearly-like ones with a far start time
        nextDates = occurrences(spec, now, now + 366 * 86_400_000, NEXT_DATES);
      } catch (error) {
        nextDatesError = error instanceof Error ? `This trigger's schedule is not valid: ${error.message}` : "This trigger's schedule is not valid.";
      }
    }
    const runs = await deps.store.listPipelineRuns({ pipelineScheduleId: id }, { limit: 20 });
    const canEdit = canAct(c);
    // the token is decrypted for editors only, who are shown the trigger's URL
    const token = schedule.scheduleType === "api" && schedule.hasToken && canEdit ? await deps.store.revealTriggerToken(id) : null;
    const apiUrl = token !== null ? apiTriggerUrl(c, id, token) : null;
    return page(
      c,
      deps,
      `Trigger ${schedule.name}`,
      "pipelines",
      <TriggerPage schedule={schedule} nextDates={nextDates} nextDatesError={nextDatesError} runs={runs.items} apiUrl={apiUrl} now={now} canEdit={canEdit} csrf={c.get("ui").csrf} {...message(c)} />,
    );
  });

  ui.post("/triggers/:id/run", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "trigger");
    if (!(await deps.store.getPipelineSchedule(id))) throw new KilnError("not_found", `There is no trigger ${id}.`);
    const run = await createRunForSchedule(deps.store, id, {});
    return back(c, `/ui/runs/${run.id}`);
  });

  ui.post("/triggers/:id/status", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "trigger");
    const body = await c.req.parseBody();
    const status = body.status;
    if (status !== "active" && status !== "inactive") throw new KilnError("malformed", 'status: expected "active" or "inactive"');
    if (!(await deps.store.getPipelineSchedule(id))) throw new KilnError("not_found", `There is no trigger ${id}.`);
    await updateSchedule(deps.store, id, { status }, codeTriggerAccess(deps));
    return back(c, `/ui/triggers/${id}`, status === "active" ? "activated" : "deactivated");
  });

  ui.post("/triggers/:id/rotate_token", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "trigger");
    const schedule = await deps.store.getPipelineSchedule(id);
    if (!schedule) throw new KilnError("not_found", `There is no trigger ${id}.`);
    if (schedule.scheduleType === "time") throw new KilnError("conflict", "A time trigger has no token to rotate.");
    await updateSchedule(deps.store, id, { rotateToken: true }, codeTriggerAccess(deps));
    return back(c, `/ui/triggers/${id}`, "rotated");
  });
};
