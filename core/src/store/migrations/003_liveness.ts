/** Scheduler liveness that does not depend on clocks agreeing across machines. */
export const name = "liveness";

export const statements: string[] = [
  // bumped on every heartbeat: another scheduler judges liveness by seeing this change within
  // orphan_after of its own clock, never by comparing heartbeat_at (the owner's clock) to its own
  `ALTER TABLE schedulers ADD COLUMN beats INTEGER NOT NULL DEFAULT 0`,
];
