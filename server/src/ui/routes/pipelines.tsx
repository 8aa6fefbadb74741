/** @jsxImportSource hono/jsx */
/** The pipelines section: the list, and one pipeline with its triggers and recent runs. */
import { KilnError } from "@kiln/core";
import { nextPipelineRunDate } from "@kiln/core/api";
import { PipelinePage, PipelinesPage } from "../pages/pipelines.tsx";
import { page, UUID, type UiRoutes } from "../render.tsx";
import { canAct } from "../session.ts";

export const pipelineRoutes: UiRoutes = (ui, deps) => {
  ui.get("/pipelines", (c) => {
    const pipelines = [...deps.project().pipelines.values()].sort((a, b) => a.uuid.localeCompare(b.uuid));
    return page(c, deps, "Pipelines", "pipelines", <PipelinesPage pipelines={pipelines} />);
  });

  ui.get("/pipelines/:uuid", async (c) => {
    const uuid = c.req.param("uuid");
    const pipeline = UUID.test(uuid) ? deps.project().pipelines.get(uuid) : undefined;
    if (!pipeline) throw new KilnError("not_found", `The project has no pipeline ${JSON.stringify(uuid.slice(0, 200))}.`);
    const now = deps.clock.now();
    const [schedules, runs] = await Promise.all([deps.store.listPipelineSchedules({ pipelineUuid: uuid }, { limit: 200 }), deps.store.listPipelineRuns({ pipelineUuid: uuid }, { limit: 20 })]);
    const nextRunAt = new Map(schedules.items.map((s) => [s.id, s.status === "active" ? nextPipelineRunDate(s, now) : null]));
    return page(c, deps, pipeline.name, "pipelines", <PipelinePage pipeline={pipeline} schedules={schedules.items} nextRunAt={nextRunAt} runs={runs.items} now={now} canEdit={canAct(c)} />);
  });
};
