/** The Worker's configuration: its bindings and vars, read and checked in one place. */
import type { WorkflowBinding } from "@kiln/executor-workflows";
import type { D1Database } from "./d1-client.ts";

/** A Durable Object namespace binding (the parts used): the scheduler object is reached by name. */
export interface DurableObjectNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

/** The Worker's bindings: vars from wrangler.toml, secrets from `wrangler secret put`. */
export interface WorkerEnv {
  /** The D1 database (a [[d1_databases]] binding named DB): kiln's state, when bound; else LIBSQL_URL. */
  DB?: D1Database;
  /** The scheduler Durable Object (class KilnScheduler): it runs every tick, one at a time. */
  KILN_SCHEDULER?: DurableObjectNamespace;
  /** The Workflow (class KilnBlockWorkflow) whose instances run the blocks on executor_type workflows. */
  KILN_BLOCKS?: WorkflowBinding;
  /** The libSQL database: `libsql://...` (Turso) or `http(s)://...` (sqld). */
  LIBSQL_URL?: string;
  /** Secret. */
  LIBSQL_AUTH_TOKEN?: string;
  /** Secret: base64 of 32 bytes; encrypts secrets at rest and seals session signing keys. */
  KILN_SECRET_KEY?: string;
  /** Secret: the project-level token for POST /api/events. */
  KILN_EVENTS_TOKEN?: string;
  /** "off" turns authentication off (warned on every request's log). */
  KILN_AUTH?: string;
  /**
   * "true" when a reverse proxy of your own is in front of the Worker: X-Forwarded-Proto/-Host
   * are then used for the URLs kiln shows, and the client is the X-Forwarded-For entry that
   * proxy appended (the one before Cloudflare's). Off by default: anyone could send them.
   */
  KILN_TRUST_PROXY?: string;
  /** Seconds a tick drives runs before it hands over to the next one (default 45). */
  KILN_TICK_SECONDS?: string;
  /** Seconds running blocks get after the deadline before the tick ends (default 10). */
  KILN_TICK_GRACE_SECONDS?: string;
  /** Subrequests a tick may make (default 40, for the Free plan's 50); it starts no block run past it. */
  KILN_SUBREQUEST_BUDGET?: string;
  /** Mage's ENV: triggers limited to other environments are left out. */
  ENV?: string;
  /**
   * Anything else the remote executors read: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
   * AWS_REGION (ecs), GOOGLE_APPLICATION_CREDENTIALS as the key's JSON (cloud_run),
   * KILN_KUBECONFIG_DATA (k8s), KILN_S3_* (the S3 output store).
   */
  [name: string]: string | D1Database | DurableObjectNamespace | WorkflowBinding | undefined;
}

/** A Worker configuration or project it cannot run with; the message says why and what to do. */
export class WorkerStartError extends Error {
  override readonly name = "WorkerStartError";
}

export { DEFAULT_TICK_SECONDS, DEFAULT_GRACE_SECONDS } from "./refusals.ts";

/** The env's text values (vars and secrets), without bindings such as DB: what blocks and executors read. */
export function textVars(env: WorkerEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (typeof value === "string") vars[name] = value;
  return vars;
}

/** A positive number of seconds from a var, or `fallback` when it is unset. */
export function seconds(env: WorkerEnv, name: "KILN_TICK_SECONDS" | "KILN_TICK_GRACE_SECONDS", fallback: number): number {
  const text = env[name];
  if (typeof text !== "string" || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new WorkerStartError(`${name}: expected a positive number of seconds, got ${JSON.stringify(text)}`);
  return value;
}

/** The libSQL URL as the Worker uses it: over HTTP, since a WebSocket cannot outlive the request that opened it. */
export function databaseUrl(env: WorkerEnv): string {
  const url = env.LIBSQL_URL;
  if (!url) {
    throw new WorkerStartError(
      "no database: bind a D1 database as DB ([[d1_databases]] binding = \"DB\" in wrangler.toml), or set LIBSQL_URL in [vars] to your libSQL server's URL (libsql://... or https://...)",
    );
  }
  if (url.startsWith("file:")) throw new WorkerStartError("LIBSQL_URL: a Worker has no disk, so a file: database cannot work; use a libSQL server's libsql:// or https:// URL, or a D1 binding");
  if (url.startsWith("libsql://")) return `https://${url.slice("libsql://".length)}`;
  if (url.startsWith("wss://")) return `https://${url.slice("wss://".length)}`;
  if (url.startsWith("ws://")) return `http://${url.slice("ws://".length)}`;
  return url;
}

/** The scheduler object's binding, or a start error saying what wrangler.toml needs. */
export function schedulerBinding(env: WorkerEnv): DurableObjectNamespace {
  if (env.KILN_SCHEDULER) return env.KILN_SCHEDULER;
  throw new WorkerStartError(
    "KILN_SCHEDULER is not bound: kiln's scheduler is a Durable Object on Workers. Add to wrangler.toml: " +
      '[[durable_objects.bindings]] name = "KILN_SCHEDULER", class_name = "KilnScheduler", and [[migrations]] tag = "v1", new_sqlite_classes = ["KilnScheduler"]',
  );
}

/** The Workflow binding for blocks on executor_type workflows, or a start error saying what wrangler.toml needs. */
export function workflowsBinding(env: WorkerEnv): WorkflowBinding {
  if (env.KILN_BLOCKS) return env.KILN_BLOCKS;
  throw new WorkerStartError(
    "KILN_BLOCKS is not bound: blocks on executor_type workflows run as Cloudflare Workflows steps. Add to wrangler.toml: " +
      '[[workflows]] name = "kiln-blocks", binding = "KILN_BLOCKS", class_name = "KilnBlockWorkflow"',
  );
}
