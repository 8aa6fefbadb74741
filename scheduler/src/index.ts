/** @kiln/scheduler: turns triggers into pipeline runs and drives them, on one or many replicas. */
export * from "./scheduler.ts";
export * from "./sync-triggers.ts";
export * from "./create-runs.ts";
export * from "./start-runs.ts";
export * from "./landing-time.ts";
export * from "./log.ts";
export * from "./notifications.ts";
export * from "./leases.ts";
