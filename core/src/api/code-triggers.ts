/**
 * Triggers as code, edited through the API: a change to a trigger that triggers.yaml defines is
 * written back to that file (comments kept, through persist-trigger) before the database is
 * updated, so the sync, which makes the database follow the file, keeps the change instead of
 * reverting it. The host owns the files (a Worker has none): without a writer such an edit is
 * refused with a conflict naming the file.
 */
import type { Project } from "../project/types.ts";
import { TriggerYamlError, upsertTriggerYaml, type TriggerInput } from "../project/persist-trigger.ts";
import type { Store } from "../store/index.ts";
import * as scheduling from "../store/scheduling.ts";
import { KilnError } from "../errors.ts";
import type { ScheduleUpdate } from "./schedules.ts";

/** The host's access to the project's triggers.yaml files, for the API. */
export interface TriggerFileWriter {
  /**
   * Replaces pipelines/<pipelineUuid>/triggers.yaml with `edit(current text)` (null: no file) and
   * reloads the project, so the next sync reads the new file. If the project would no longer
   * load, the file is put back as it was and a TriggerYamlError is thrown.
   */
  edit(pipelineUuid: string, edit: (text: string | null) => string): Promise<void>;
}

/** What updateSchedule needs to tell code triggers apart and write them back. */
export interface CodeTriggerAccess {
  project: Project;
  /** null: this host cannot write project files (a Worker): edits of code triggers are refused. */
  files: TriggerFileWriter | null;
}

/** The project-relative file a pipeline's triggers live in. */
export function triggersFile(pipelineUuid: string): string {
  return `pipelines/${pipelineUuid}/triggers.yaml`;
}

/**
 * Writes `update` of schedule `id` back to its triggers.yaml when the schedule is defined there;
 * returns false for a schedule made through the API (nothing to write). Throws a conflict when
 * the file cannot be written here, the trigger was removed from it, or the token the file sets
 * would be changed; an invalid value is a TriggerYamlError turned into invalid_input.
 */
export async function writeBackCodeTrigger(store: Store, id: number, update: ScheduleUpdate, access: CodeTriggerAccess, now: number = store.clock.now()): Promise<boolean> {
  const state = await scheduling.scheduleState(store.client, id);
  if (!state || state.source !== "code") return false;
  const file = triggersFile(state.pipelineUuid);
  const trigger = access.project.pipelines.get(state.pipelineUuid)?.triggers.find((t) => t.name === state.name);
  if (!trigger) {
    throw new KilnError("conflict", `pipeline schedule ${id} (${state.name}) was removed from ${file}: add it back there to change it`);
  }
  if (!access.files) {
    throw new KilnError("conflict", `pipeline schedule ${id} (${state.name}) is defined in ${file}: change it there (this server cannot write project files)`);
  }
  // a token the file sets would overwrite the database's at the next sync; one it does not set
  // stays in the database only (a token is never written into a file that had none)
  if ((update.token !== undefined || update.rotateToken) && trigger.token !== null) {
    throw new KilnError("conflict", `token: pipeline schedule ${id} (${state.name}) takes its token from ${file}: change it there`, "token");
  }
  if (update.scheduleType !== undefined && update.scheduleType !== trigger.scheduleType) {
    throw new KilnError("conflict", `schedule_type: pipeline schedule ${id} (${state.name}) is defined in ${file}: change its type there`, "schedule_type");
  }
  const input: TriggerInput = { name: update.name ?? state.name };
  if (update.scheduleInterval !== undefined) input.scheduleInterval = update.scheduleInterval;
  if (update.startTime !== undefined) input.startTime = update.startTime;
  if (update.timezone !== undefined) input.timezone = update.timezone;
  if (update.status !== undefined) input.status = update.status;
  if (update.variables !== undefined) input.variables = update.variables;
  if (update.sla !== undefined) input.sla = update.sla;
  if (update.settings !== undefined) input.settings = update.settings;
  if (update.description !== undefined) input.description = update.description;
  if (update.eventPattern !== undefined) input.eventPattern = update.eventPattern;
  if (update.tags !== undefined) input.tags = update.tags;
  // switched on here: a last_enabled_at the file gives moves to now too, or the sync would put the
  // old one back and the trigger would fire for the dates it was off (Mage writes it back alike)
  if (update.status === "active" && state.status !== "active" && trigger.lastEnabledAt !== null) input.lastEnabledAt = now;
  if (Object.keys(input).length === 1 && input.name === state.name) return true; // only the token, kept in the database
  try {
    await access.files.edit(state.pipelineUuid, (text) => upsertTriggerYaml(text, input, { oldName: state.name, mode: "update" }));
  } catch (error) {
    if (error instanceof TriggerYamlError) {
      const field = error.field || null;
      throw new KilnError("invalid_input", `${file}: ${error.message}`, field, error.detail);
    }
    throw error;
  }
  return true;
}
