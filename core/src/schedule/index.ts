/** kiln's schedule time math: intervals, wall time across DST, execution dates, catch-up. */
export * from "./errors.ts";
export * from "./interval.ts";
export * from "./wall-time.ts";
export * from "./occurrences.ts";
export * from "./landing.ts";
export * from "./catch-up.ts";
export * from "./settings.ts";
