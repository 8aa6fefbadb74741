/** Mage's trigger tags: a JSON list of strings on each trigger, from triggers.yaml or the API, filterable with `tag[]`. */
export const name = "trigger_tags";

export const statements: string[] = [`ALTER TABLE pipeline_schedules ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'`];
