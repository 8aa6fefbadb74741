/** @jsxImportSource hono/jsx */
/** The overview page. */
import { runOverview } from "@kiln/core/store";
import { OverviewPage } from "../pages/overview.tsx";
import { page, type UiRoutes } from "../render.tsx";

export const overviewRoutes: UiRoutes = (ui, deps) => {
  ui.get("/", async (c) => {
    const now = deps.clock.now();
    const overview = await runOverview(deps.store.client, { now });
    return page(c, deps, "Overview", "overview", <OverviewPage overview={overview} now={now} />);
  });
};
