/** PLACEHOLDER: being written (issue 4). */
import type { Hono } from "hono";
import type { ApiDoc } from "../api-doc.ts";
import type { Env, ServerDeps } from "../deps.ts";

export function openApiRoutes(_app: Hono<Env>, _deps: ServerDeps, _doc: ApiDoc): void {}
