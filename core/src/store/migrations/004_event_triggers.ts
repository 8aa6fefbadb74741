/** Event triggers: the pattern an event schedule's events must match (EventBridge-style, JSON). */
export const name = "event_triggers";

export const statements: string[] = [
  // NULL on every schedule that is not an event trigger, and on one that matches nothing yet
  `ALTER TABLE pipeline_schedules ADD COLUMN event_pattern TEXT`,
  // POST /api/events looks at the active event schedules only
  `CREATE INDEX pipeline_schedules_event ON pipeline_schedules (id) WHERE schedule_type = 'event' AND status = 'active'`,
];
