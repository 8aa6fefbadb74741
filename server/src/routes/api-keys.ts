/** API keys, managed by admins: list (never the key), create (the key is shown once), revoke. */
import { createApiKey, getApiKey, listApiKeys, revokeApiKey, ROLES, type ApiKeyRecord } from "@kiln/core/auth";
import { NameSchema } from "@kiln/core/bound-schemas";
import { isoOrNull } from "@kiln/core/bounds";
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import { requireRole } from "../auth.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { list, one } from "../envelope.ts";
import { notFound } from "../errors.ts";
import { idParam, readBody, readQuery } from "../validate.ts";

const CreateBody = v.strictObject({
  api_key: v.strictObject({
    name: NameSchema,
    role: v.picklist(ROLES, `expected one of ${ROLES.join(", ")}`),
  }),
});

const ListQuery = v.strictObject({});

const iso = isoOrNull;

function apiKeyJson(record: ApiKeyRecord): Record<string, unknown> {
  return { id: record.id, name: record.name, role: record.role, created_at: iso(record.createdAt), last_used_at: iso(record.lastUsedAt), revoked_at: iso(record.revokedAt) };
}

export function apiKeyRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/api_keys", summary: "Every API key (live and revoked), without the keys", role: "admin", query: ListQuery, responseKey: "api_keys" });
  app.get("/api/api_keys", requireRole("admin"), async (c) => {
    readQuery(c, ListQuery);
    return list(c, "api_keys", (await listApiKeys(deps.store.client)).map(apiKeyJson));
  });

  doc.add({ method: "post", path: "/api/api_keys", summary: "Create an API key; the answer holds the key, shown this once", role: "admin", body: CreateBody, responseKey: "api_key" });
  app.post("/api/api_keys", requireRole("admin"), async (c) => {
    const { api_key: input } = await readBody(c, CreateBody);
    const { record, key } = await createApiKey(deps.store.client, input, deps.clock.now());
    return one(c, "api_key", { ...apiKeyJson(record), key }, 201);
  });

  doc.add({ method: "delete", path: "/api/api_keys/:id", summary: "Revoke an API key", role: "admin", responseKey: "api_key" });
  app.delete("/api/api_keys/:id", requireRole("admin"), async (c) => {
    const id = idParam(c);
    if (!(await revokeApiKey(deps.store.client, id, deps.clock.now()))) throw notFound("live API key", id);
    const record = await getApiKey(deps.store.client, id);
    return one(c, "api_key", record ? apiKeyJson(record) : { id });
  });
}
