/** @jsxImportSource hono/jsx */
/** The secrets page (editors; names only). */
import { SecretsPage } from "../pages/secrets.tsx";
import { page, type UiRoutes } from "../render.tsx";
import { needRole } from "../session.ts";

export const secretRoutes: UiRoutes = (ui, deps) => {
  ui.get("/secrets", async (c) => {
    needRole(c, "editor");
    const names = await deps.store.listSecretNames();
    return page(c, deps, "Secrets", "secrets", <SecretsPage names={names} />);
  });
};
