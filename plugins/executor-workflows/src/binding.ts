/**
 * The parts of Cloudflare's Workflow binding (a `[[workflows]]` entry in wrangler.toml) and of
 * a Workflow instance that kiln uses; the names and shapes are those of @cloudflare/workers-types.
 */

/** An instance's status as Workflows reports it. */
export type WorkflowInstanceState = "queued" | "running" | "paused" | "errored" | "terminated" | "complete" | "waiting" | "waitingForPause" | "unknown";

/** What `instance.status()` answers (the parts used). */
export interface WorkflowInstanceStatus {
  status: WorkflowInstanceState;
  error?: { name?: string; message: string } | null;
  output?: unknown;
}

/** One Workflow instance, reached by its id. */
export interface WorkflowInstance {
  id: string;
  status(): Promise<WorkflowInstanceStatus>;
  terminate(): Promise<void>;
}

/** The Workflow binding: instances are created with an id of kiln's choosing and found again by it. */
export interface WorkflowBinding {
  create(options: { id: string; params: unknown }): Promise<WorkflowInstance>;
  get(id: string): Promise<WorkflowInstance>;
}

/** A step's retry and timeout settings (WorkflowStepConfig). */
export interface WorkflowStepConfig {
  retries: { limit: number; delay: number; backoff: "constant" | "linear" | "exponential" };
  /** Milliseconds one attempt may take. */
  timeout: number;
}
