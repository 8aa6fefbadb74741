/** The numbered migrations, in order. Append; never edit one that has shipped. */
import * as m001 from "./001_initial.ts";
import * as m002 from "./002_scheduler.ts";
import * as m003 from "./003_liveness.ts";
import * as m004 from "./004_event_triggers.ts";
import * as m005 from "./005_server_settings.ts";
import * as m006 from "./006_block_outputs.ts";
import * as m007 from "./007_sign_in_attempts.ts";
import * as m008 from "./008_run_counters.ts";
import * as m009 from "./009_block_logs.ts";
import * as m010 from "./010_sealed_trigger_tokens.ts";
import * as m011 from "./011_trigger_tags.ts";

export interface Migration {
  id: number;
  name: string;
  statements: string[];
}

export const MIGRATIONS: Migration[] = [
  { id: 1, ...m001 },
  { id: 2, ...m002 },
  { id: 3, ...m003 },
  { id: 4, ...m004 },
  { id: 5, ...m005 },
  { id: 6, ...m006 },
  { id: 7, ...m007 },
  { id: 8, ...m008 },
  { id: 9, ...m009 },
  { id: 10, ...m010 },
  { id: 11, ...m011 },
];
