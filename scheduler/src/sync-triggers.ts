/**
 * Triggers as code: every tick, triggers.yaml wins over the database for the fields it sets.
 * A trigger deleted from the file becomes inactive (never silently kept running); a trigger that
 * turns active gets last_enabled_at = now, so it does not fire for dates before that, unless the
 * file gives its own last_enabled_at, which is then the row's (as in Mage).
 */
import { newToken } from "@kiln/core/api";
import { type Project, type TriggerConfig } from "@kiln/core/project";
import { scheduling, type ScheduleState, type Store, type WriteBatch } from "@kiln/core/store";

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Whether the change alters when the trigger fires, so its next date must be worked out again. */
function timingChanged(row: ScheduleState, t: TriggerConfig): boolean {
  return (
    row.scheduleInterval !== t.scheduleInterval ||
    row.timezone !== t.timezone ||
    row.startTime !== t.startTime ||
    row.scheduleType !== t.scheduleType ||
    row.status !== t.status ||
    !same(row.settings, t.settings) ||
    fileEnabledAtChanged(row, t)
  );
}

/** Whether triggers.yaml sets a last_enabled_at the row does not have (Mage's sync copies it). */
function fileEnabledAtChanged(row: ScheduleState, t: TriggerConfig): boolean {
  return t.lastEnabledAt !== null && row.lastEnabledAt !== t.lastEnabledAt;
}

/** `fileDigest`: the digest of the token triggers.yaml sets (null: it sets none). */
function contentChanged(row: ScheduleState, t: TriggerConfig, fileDigest: string | null): boolean {
  return (
    timingChanged(row, t) ||
    !same(row.variables, t.variables) ||
    row.sla !== t.sla ||
    row.description !== t.description ||
    !same(row.tags, t.tags) ||
    !same(row.eventPattern, t.eventPattern) ||
    (fileDigest !== null && row.tokenDigest !== fileDigest) ||
    ((t.scheduleType === "api" || t.scheduleType === "event") && !row.hasToken)
  );
}

export interface SyncReport {
  created: number;
  updated: number;
  deactivated: number;
}

export interface SyncOptions {
  /**
   * Reads the project from disk again. Given, it is called before a sync that would change a
   * row, and the sync follows the files as they are now: the project in hand may have been read
   * before another process (a separate web server) wrote an API edit to triggers.yaml and then
   * to the database, and syncing it would put the old values back until the next reload. Null,
   * or a throw: the project in hand is synced (a broken file keeps the last good project).
   */
  reread?: () => Promise<Project | null>;
}

/**
 * Brings the database's code triggers in line with the project's triggers.yaml files. `now` is
 * the tick's time: a trigger created or retimed here is due at it, so the same tick evaluates it
 * (a Worker's next tick is a minute away). With `reread`, see SyncOptions; `project` in the
 * answer is the project synced (the re-read one, if any).
 */
export async function syncTriggers(store: Store, project: Project, now: number = store.clock.now(), options: SyncOptions = {}): Promise<SyncReport & { project: Project }> {
  let synced = project;
  let plan = await planSync(store, project, now);
  if (plan.batch.size > 0 && options.reread) {
    const fresh = await options.reread().catch(() => null);
    if (fresh) {
      synced = fresh;
      plan = await planSync(store, fresh, now);
    }
  }
  if (plan.batch.size > 0) await store.commit(plan.batch);
  return { ...plan.report, project: synced };
}

/** The writes that bring the code triggers in line with `project`, not committed. */
async function planSync(store: Store, project: Project, now: number): Promise<{ batch: WriteBatch; report: SyncReport }> {
  const existing = new Map<string, ScheduleState>();
  for (const row of await scheduling.codeSchedules(store.client)) existing.set(`${row.pipelineUuid}\u0000${row.name}`, row);
  const batch = store.batch();
  const report: SyncReport = { created: 0, updated: 0, deactivated: 0 };
  const seen = new Set<string>();
  for (const pipeline of project.pipelines.values()) {
    for (let trigger of pipeline.triggers) {
      const key = `${pipeline.uuid}\u0000${trigger.name}`;
      seen.add(key);
      const row = existing.get(key);
      // an @once that has run keeps the database's status (the tick switches it off when its run
      // ends, Mage's rule) instead of the file's, until its start_time changes
      const once = trigger.scheduleInterval === "@once";
      const rearm = once && row !== undefined && row.lastExecutionDate !== null && (row.startTime !== trigger.startTime || row.scheduleInterval !== "@once");
      const spent = once && row !== undefined && row.lastExecutionDate !== null && !rearm;
      if (spent) trigger = { ...trigger, status: row.status };
      const fileDigest = trigger.token !== null ? await store.triggerTokenDigest(trigger.token) : null;
      if (row && !contentChanged(row, trigger, fileDigest)) continue;
      const activated = trigger.status === "active" && (row?.status !== "active" || rearm);
      // the file's last_enabled_at is the trigger's (no runs for dates before it); without one, switching on means now
      const lastEnabledAt = trigger.lastEnabledAt ?? (activated ? now : null);
      // an API (or event) trigger without a token in the file gets one, once (Mage's behaviour); later syncs keep it
      const token = trigger.token ?? ((trigger.scheduleType === "api" || trigger.scheduleType === "event") && !row?.hasToken ? newToken() : null);
      const { token: _plaintext, ...fields } = trigger;
      batch.upsertCodeTrigger(
        { ...fields, pipelineUuid: pipeline.uuid, sealedToken: token === null || (fileDigest !== null && row?.tokenDigest === fileDigest) ? null : await store.sealTriggerToken(token) },
        { lastEnabledAt, nextRunAt: !row || timingChanged(row, trigger) ? now : null, rearm },
      );
      if (row) report.updated++;
      else report.created++;
    }
  }
  for (const [key, row] of existing) {
    if (seen.has(key) || row.status !== "active") continue;
    batch.deactivateSchedule(row.id);
    report.deactivated++;
  }
  return { batch, report };
}
