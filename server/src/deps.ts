/** What the server needs from its host: the store, the project, and hooks into a co-located scheduler. */
import type { Clock, Project, RunEngine, Store } from "@kiln/core";
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
  /**
   * Called after the API created runs: a co-located scheduler starts them now, within its
   * limits, instead of at its next tick. Absent for a web_server alone.
   */
  onRunsCreated?: () => void;
  /** The engine of a co-located scheduler, to cancel a run it is executing at once. */
  engine?: RunEngine;
}

/** Hono's context variables for kiln's routes. */
export interface Env {
  Variables: {
    principal: Principal | null;
  };
}
