/** Users who sign in with a password: created, listed and deleted by admins. */
import { createUser, deleteUser, getUser, listUsers, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, ROLES, USERNAME_PATTERN, UserInputError } from "@kiln/core/auth";
import type { Hono } from "hono";
import * as v from "valibot";
import type { ApiDoc } from "../api-doc.ts";
import { requireRole } from "../auth.ts";
import type { Env, ServerDeps } from "../deps.ts";
import { list, one } from "../envelope.ts";
import { ApiError, notFound, rethrowUnder } from "../errors.ts";
import { idParam, readBody, readQuery } from "../validate.ts";
import { userJson } from "./sessions.ts";

const CreateBody = v.strictObject({
  user: v.strictObject({
    username: v.pipe(v.string(), v.regex(USERNAME_PATTERN, "expected 1 to 100 letters, digits or _ . @ -")),
    password: v.pipe(
      v.string(),
      v.minLength(MIN_PASSWORD_LENGTH, `expected at least ${MIN_PASSWORD_LENGTH} characters`),
      v.maxLength(MAX_PASSWORD_LENGTH, `expected at most ${MAX_PASSWORD_LENGTH} characters`),
    ),
    role: v.picklist(ROLES, `expected one of ${ROLES.join(", ")}`),
  }),
});

const ListQuery = v.strictObject({});

export function userRoutes(app: Hono<Env>, deps: ServerDeps, doc: ApiDoc): void {
  doc.add({ method: "get", path: "/api/users", summary: "Every user", role: "admin", query: ListQuery, responseKey: "users" });
  app.get("/api/users", requireRole("admin"), async (c) => {
    readQuery(c, ListQuery);
    return list(c, "users", (await listUsers(deps.store.client)).map(userJson));
  });

  doc.add({ method: "post", path: "/api/users", summary: "Create a user who signs in with a password", role: "admin", body: CreateBody, responseKey: "user" });
  app.post("/api/users", requireRole("admin"), async (c) => {
    const { user: input } = await readBody(c, CreateBody);
    const user = await createUser(deps.store.client, input, deps.clock.now(), deps.passwordIterations !== undefined ? { iterations: deps.passwordIterations } : {}).catch((error: unknown) => {
      // a taken username is named as a conflict on the field, the way a taken trigger name is
      if (error instanceof UserInputError && error.code === "conflict") {
        const field = `user.${error.field}`;
        throw new ApiError("conflict", `${field}: ${input.username} is taken`, [{ field, message: "taken" }]);
      }
      return rethrowUnder("user")(error);
    });
    return one(c, "user", userJson(user), 201);
  });

  doc.add({ method: "delete", path: "/api/users/:id", summary: "Delete a user: their sessions stop working at once", role: "admin", responseKey: "user" });
  app.delete("/api/users/:id", requireRole("admin"), async (c) => {
    const id = idParam(c);
    const user = await getUser(deps.store.client, id);
    if (!user || !(await deleteUser(deps.store.client, id))) throw notFound("user", id);
    return one(c, "user", userJson(user));
  });
}
