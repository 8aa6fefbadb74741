/**
 * Event triggers fired: an event is matched against the active event triggers' patterns, and
 * each trigger it matches gets one run now, with the event in its blocks' context (Mage's
 * schedule_with_event). Who may send the event is the caller's to check (the server does).
 */
import { createRunForSchedule } from "../api/schedules.ts";
import type { JsonObject, PipelineRun, PipelineSchedule } from "../domain.ts";
import type { Project } from "../project/types.ts";
import type { Store } from "../store/index.ts";
import * as schedules from "../store/schedules.ts";
import { matchesEvent } from "./match.ts";

/**
 * Ids of the event triggers whose token is `token` (inactive ones included: their token is
 * valid, they just match nothing).
 */
export function eventTriggersWithToken(store: Store, token: string): Promise<number[]> {
  // looked up by the token's keyed digest (see trigger-tokens.ts): no row is decrypted
  return store.eventTriggerIdsWithToken(token);
}

/** The active event triggers (of the given ids only, when given), by id. */
export function activeEventTriggers(store: Store, ids?: readonly number[]): Promise<PipelineSchedule[]> {
  return schedules.activeEventTriggers(store.client, ids);
}

export interface DispatchResult {
  /** One new run per matching trigger, in trigger id order. */
  runs: PipelineRun[];
  /** How many active event triggers the event was matched against. */
  considered: number;
}

/**
 * Creates a run for each active event trigger (of `scheduleIds` only, when given) whose pattern
 * matches `event`. A trigger without a pattern, or of a pipeline the project no longer has,
 * matches nothing.
 */
export async function dispatchEvent(store: Store, project: Project, event: JsonObject, options: { scheduleIds?: readonly number[] } = {}): Promise<DispatchResult> {
  const triggers = await activeEventTriggers(store, options.scheduleIds);
  const runs: PipelineRun[] = [];
  for (const trigger of triggers) {
    if (trigger.eventPattern === null || !project.pipelines.has(trigger.pipelineUuid)) continue;
    if (!matchesEvent(trigger.eventPattern, event)) continue;
    runs.push(await createRunForSchedule(store, trigger.id, { event }));
  }
  return { runs, considered: triggers.length };
}
