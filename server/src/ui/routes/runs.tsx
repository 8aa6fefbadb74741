/** @jsxImportSource hono/jsx */
/** The runs section: the filtered list and its status stream, one run with its live region, cancel and retry. */
import { KilnError, PIPELINE_RUN_STATUSES, type BlockRun, type PipelineRun, type PipelineRunStatus } from "@kiln/core";
import { cancelPipelineRun, retryPipelineRun } from "@kiln/core/api";
import { isTerminal } from "@kiln/core/engine";
import { pipelineRunStatuses } from "@kiln/core/store";
import type { Context } from "hono";
import { Status } from "../components.tsx";
import { RunLive, RunPage, RunsPage } from "../pages/runs.tsx";
import { back, fragment, fragmentStream, ID, idOf, message, page, PAGE_SIZE, pipelineNames, statusStream, STREAM_TICK_MS, UUID, type UiRoutes } from "../render.tsx";
import { canAct, needRole, type UiEnv } from "../session.ts";

/** What makes a run's region differ: the run's and each block run's status and last change. */
function runKey(run: PipelineRun, blockRuns: BlockRun[], now: number): string {
  const live = !isTerminal("pipeline_run", run.status);
  return [run.status, run.updatedAt, ...blockRuns.map((b) => `${b.id}:${b.status}:${b.updatedAt}`), live ? Math.floor(now / STREAM_TICK_MS) : ""].join("|");
}

export const runRoutes: UiRoutes = (ui, deps) => {
  ui.get("/runs", async (c) => {
    const pipelineUuid = c.req.query("pipeline_uuid") || undefined;
    const status = c.req.query("status") || undefined;
    const after = c.req.query("after") || undefined;
    if (pipelineUuid !== undefined && !UUID.test(pipelineUuid)) throw new KilnError("malformed", "pipeline_uuid: expected a pipeline uuid");
    if (status !== undefined && !(PIPELINE_RUN_STATUSES as readonly string[]).includes(status)) throw new KilnError("malformed", `status: expected one of ${PIPELINE_RUN_STATUSES.join(", ")}`);
    if (after !== undefined && !ID.test(after)) throw new KilnError("malformed", "after: expected the cursor of the Older link");
    const runs = await deps.store.listPipelineRuns(
      { ...(pipelineUuid !== undefined ? { pipelineUuid } : {}), ...(status !== undefined ? { status: status as PipelineRunStatus } : {}) },
      { limit: PAGE_SIZE, after: after ?? null },
    );
    return page(
      c,
      deps,
      "Runs",
      "runs",
      <RunsPage runs={runs.items} next={runs.next} after={after} pipelineUuid={pipelineUuid} status={status} pipelines={pipelineNames(deps)} statuses={PIPELINE_RUN_STATUSES} now={deps.clock.now()} />,
    );
  });

  // the statuses of a list's live runs, pushed as they change; ends once all of them ended
  ui.get("/runs/live", (c) => {
    const raw = c.req.query("ids") ?? "";
    if (!/^[1-9][0-9]{0,15}(,[1-9][0-9]{0,15}){0,199}$/.test(raw)) throw new KilnError("malformed", "ids: expected up to 200 run ids, comma-separated");
    const ids = raw.split(",").map(Number);
    const seen = new Map<number, string>();
    return statusStream(c, async (send) => {
      const statuses = await pipelineRunStatuses(deps.store.client, ids);
      let live = 0;
      for (const [id, { status }] of statuses) {
        if (!isTerminal("pipeline_run", status)) live++;
        if (seen.get(id) === status) continue;
        if (seen.has(id)) await send("status", { id, status, html: await fragment(<Status status={status} />) });
        seen.set(id, status);
      }
      if (live > 0) return false;
      await send("end", {});
      return true;
    });
  });

  async function runLiveProps(c: Context<UiEnv>, run: PipelineRun) {
    return { run, blockRuns: await deps.store.getBlockRuns(run.id), pipeline: deps.project().pipelines.get(run.pipelineUuid), now: deps.clock.now(), canEdit: canAct(c), csrf: c.get("ui").csrf };
  }

  ui.get("/runs/:id", async (c) => {
    const id = idOf(c, "run");
    const run = await deps.store.getPipelineRun(id);
    if (!run) throw new KilnError("not_found", `There is no pipeline run ${id}.`);
    const schedule = run.pipelineScheduleId !== null ? await deps.store.getPipelineSchedule(run.pipelineScheduleId) : null;
    return page(c, deps, `Run #${id}`, "runs", <RunPage {...await runLiveProps(c, run)} schedule={schedule} {...message(c)} />);
  });

  ui.get("/runs/:id/events", async (c) => {
    const id = idOf(c, "run");
    if (!(await deps.store.getPipelineRun(id))) throw new KilnError("not_found", `There is no pipeline run ${id}.`);
    return fragmentStream(c, async () => {
      const run = await deps.store.getPipelineRun(id);
      if (!run) return null;
      const props = await runLiveProps(c, run);
      const done = isTerminal("pipeline_run", run.status);
      return { key: runKey(run, props.blockRuns, props.now), html: await fragment(<RunLive {...props} />), status: run.status, done };
    });
  });

  ui.post("/runs/:id/cancel", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "run");
    const who = c.get("ui").principal.name;
    await cancelPipelineRun(deps.store, id, { ...(deps.engine ? { engine: deps.engine } : {}), reason: `cancelled in the web UI by ${who}` });
    return back(c, `/ui/runs/${id}`, "cancelled");
  });

  ui.post("/runs/:id/retry", async (c) => {
    needRole(c, "editor");
    const id = idOf(c, "run");
    const body = await c.req.parseBody();
    const from = typeof body.from_block_uuid === "string" && body.from_block_uuid !== "" ? body.from_block_uuid : null;
    if (from !== null && !UUID.test(from)) throw new KilnError("malformed", "from_block_uuid: expected a block uuid");
    await retryPipelineRun(deps.store, deps.project(), id, { fromBlockUuid: from });
    return back(c, `/ui/runs/${id}`, "retried");
  });
};
