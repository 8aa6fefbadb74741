/**
 * The part of the runtime's `cloudflare:workers` module kiln uses (its types live in
 * @cloudflare/workers-types, not installed here): the base class of a Workflow.
 */
declare module "cloudflare:workers" {
  /** What a Workflow instance was created with. */
  export interface WorkflowEvent<Params> {
    payload: Readonly<Params>;
    timestamp: Date;
    instanceId: string;
  }

  /** What a step's callback is given: the attempt it is, from 1. */
  export interface WorkflowStepContext {
    attempt: number;
  }

  /** A step's retry and timeout settings. */
  export interface WorkflowStepConfig {
    retries?: { limit: number; delay: string | number; backoff?: "constant" | "linear" | "exponential" };
    timeout?: string | number;
  }

  export interface WorkflowStep {
    do<T>(name: string, config: WorkflowStepConfig, callback: (context: WorkflowStepContext) => Promise<T>): Promise<T>;
    do<T>(name: string, callback: (context: WorkflowStepContext) => Promise<T>): Promise<T>;
  }

  export abstract class WorkflowEntrypoint<Env = unknown, Params = unknown> {
    protected ctx: { waitUntil(promise: Promise<unknown>): void };
    protected env: Env;
    constructor(ctx: unknown, env: Env);
    run(event: Readonly<WorkflowEvent<Params>>, step: WorkflowStep): Promise<unknown>;
  }
}
