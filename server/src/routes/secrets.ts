/**
 * Secrets: set (admin), list names (editor: pipelines refer to secrets by name), delete (admin).
 * Values are encrypted with AES-GCM under KILN_SECRET_KEY before they are stored and are never
 * answered by any route; blocks read them through their runtime.
 */
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import { requireRole } from "../auth.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { list, one } from "../envelope.ts";
import { ApiError, notFound } from "../errors.ts";
import { parseWith, readBody, readQuery } from "../validate.ts";

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const NAME_MESSAGE = "expected a letter or _ then letters, digits or _, at most 128 characters";
const MAX_VALUE_BYTES = 64 * 1024;

const SecretName = v.pipe(v.string(), v.regex(NAME_PATTERN, NAME_MESSAGE));

const PutBody = v.strictObject({
  secret: v.strictObject({
    name: SecretName,
    value: v.pipe(
      v.string(),
      v.check((value) => new TextEncoder().encode(value).length <= MAX_VALUE_BYTES, `expected at most ${MAX_VALUE_BYTES} bytes`),
    ),
  }),
});

const ListQuery = v.strictObject({});

export function secretRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/secrets", summary: "The names of the stored secrets (never their values)", role: "editor", query: ListQuery, responseKey: "secrets" });
  app.get("/api/secrets", requireRole("editor"), async (c) => {
    readQuery(c, ListQuery);
    const names = await deps.store.listSecretNames();
    return list(c, "secrets", names.map((name) => ({ name })));
  });

  doc.add({ method: "post", path: "/api/secrets", summary: "Create or replace a secret, encrypted under KILN_SECRET_KEY", role: "admin", body: PutBody, responseKey: "secret" });
  app.post("/api/secrets", requireRole("admin"), async (c) => {
    const { secret } = await readBody(c, PutBody);
    if (!deps.secretKey) throw new ApiError("conflict", "secrets cannot be stored: the server has no KILN_SECRET_KEY; set it (32 random bytes, base64) and restart");
    const existed = (await deps.store.listSecretNames()).includes(secret.name);
    await deps.store.putSecret(deps.secretKey, secret.name, secret.value);
    return one(c, "secret", { name: secret.name }, existed ? 200 : 201);
  });

  doc.add({ method: "delete", path: "/api/secrets/:name", summary: "Delete a secret", role: "admin", responseKey: "secret" });
  app.delete("/api/secrets/:name", requireRole("admin"), async (c) => {
    const name = parseWith(SecretName, c.req.param("name"), "path.name");
    if (!(await deps.store.deleteSecret(name))) throw notFound("secret", name);
    return one(c, "secret", { name });
  });
}
