/** Backfills: their execution dates and the service that creates, starts, cancels, retries and settles them. */
export * from "./dates.ts";
export * from "./service.ts";
export type { BackfillRecord, BackfillFilter, BackfillUpdate, NewBackfill } from "../store/backfills.ts";
