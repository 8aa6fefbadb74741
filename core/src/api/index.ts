/** kiln's programmatic API: what the CLI, the scheduler and the server call. */
export * from "./schedules.ts";
export * from "./runs.ts";
export * from "./trigger-pipeline.ts";
export * from "./pipeline-actions.ts";
export * from "./code-triggers.ts";
