/**
 * What the server needs from its host: the store, the project, and a co-located scheduler's
 * engine. (A co-located scheduler hears of the runs the API creates through the store's
 * runsCreated signal.)
 */
import type { Clock, LogReader } from "@kiln/core";
import type { CodeTriggerAccess, TriggerFileWriter } from "@kiln/core/api";
import type { RunEngine } from "@kiln/core/engine";
import type { Project } from "@kiln/core/project";
import type { signInAttempts, Store } from "@kiln/core/store";
import type { Principal } from "./auth.ts";

export interface ServerDeps {
  store: Store;
  /** The current project (it is reloaded when files change). */
  project: () => Project;
  clock: Clock;
  /** kiln's version, for /api/status. */
  version: string;
  /** Off only by explicit setting (`auth: false`); the host warns at every start. */
  authEnabled: boolean;
  /** Under KILN_SECRET_KEY; null when none is set (secret routes then refuse with 409). */
  secretKey: CryptoKey | null;
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes: number;
  /** Sign-in throttling's delays (default SIGN_IN_POLICY: 1 s doubling to 15 min). */
  signInPolicy?: signInAttempts.SignInPolicy;
  /**
   * PBKDF2 iterations for passwords set here, and the most a stored hash may ask for (Cloudflare
   * Workers: 100,000, their limit); absent: core's default, and any stored cost verifies.
   */
  passwordIterations?: number;
  /** How long a session token from `POST /api/sessions` lives; 24 hours when absent. */
  sessionTtlMs?: number;
  /**
   * The project-level events token (KILN_EVENTS_TOKEN): `POST /api/events` with it is matched
   * against every active event trigger. Absent: events need a trigger's own token or an editor key.
   */
  eventsToken?: string;
  /** The engine of a co-located scheduler, to cancel a run it is executing at once. */
  engine?: RunEngine;
  /**
   * Writes the project's triggers.yaml files, so an API or UI edit of a trigger defined there is
   * written back instead of reverted by the next sync. Absent (a Worker has no files): such
   * edits answer 409, naming the file.
   */
  triggerFiles?: TriggerFileWriter;
  /** Block-run logs read back, for the log routes; without it they answer 404 (no logs here). */
  logs?: LogReader;
  /**
   * A reverse proxy is in front (`KILN_TRUST_PROXY=true`): X-Forwarded-Proto/-Host are believed
   * for the session cookie's Secure flag, the same-origin check and the URLs pages show. Off by default.
   */
  trustProxy?: boolean;
}

/** What updateSchedule needs to write code triggers back, from the deps. */
export function codeTriggerAccess(deps: ServerDeps): CodeTriggerAccess {
  return { project: deps.project(), files: deps.triggerFiles ?? null };
}

/** Hono's context variables for kiln's routes. */
export interface Env {
  Variables: {
    principal: Principal | null;
    /** deps.trustProxy, for the helpers in forwarded.ts. */
    trustProxy: boolean;
  };
}
