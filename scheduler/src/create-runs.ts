/**
 * The part of a tick that turns due time triggers into pipeline runs: execution dates from the
 * trigger's cron in its timezone, the catch-up policy after downtime, the overlap policy against
 * the trigger's live runs, landing time. Runs are inserted against the unique (schedule,
 * execution_date) key in the same transaction that records how far the trigger has got, so a
 * crash or a second scheduler can neither lose nor repeat a run.
 */
import { type JsonObject, type PipelineRun, messageOf } from "@kiln/core";
import { IllegalTransitionError, lostRaces } from "@kiln/core/engine";
import { type Project } from "@kiln/core/project";
import { addAlwaysOnRun, addScheduledRuns, addSkippedRuns } from "@kiln/core/runs";
import { DEFAULT_CATCH_UP_CAP, dueExecutionDates, nextDueAt, parseScheduleInterval, scheduleSpec, schedulingSettings, type SchedulingSettings } from "@kiln/core/schedule";
import { LeaseLostError, scheduling, type ScheduleState, type Store } from "@kiln/core/store";
import * as notify from "@kiln/core/notify";
import { LANDING_TIME_SAMPLE, landingLeadMs } from "./landing-time.ts";
import { shardLeaseName, type ShardAssignment } from "./shards.ts";
import type { Log } from "./log.ts";

export interface CreateRunsReport {
  created: number;
  /** Dates a policy decided not to run (overlap skip, run limit skip). */
  skipped: number;
  invalid: number;
  /** Runs created later than the drift threshold after they were due. */
  late: number;
}

export interface CreateRunsOptions {
  now: number;
  limit: number;
  driftThresholdMs: number;
  /** How soon to look again at an @always_on trigger. */
  alwaysOnRecheckMs: number;
  log: Log;
  /** Where drift is reported, besides the log. */
  notifications: (pipelineUuid: string) => notify.NotificationConfig | null;
  /** With Redis leases: the shards this replica holds; null evaluates every trigger. */
  shards?: ShardAssignment | null;
}

/** Why a due date got no run, by the policy that passed it over (the skipped run's error). */
export function skipReason(settings: SchedulingSettings, limitReached: boolean): string {
  if (limitReached && settings.onPipelineRunLimitReached === "skip") {
    return `skipped: the trigger's pipeline_run_limit (${settings.pipelineRunLimit}) was reached (on_pipeline_run_limit_reached: skip)`;
  }
  switch (settings.overlap) {
    case "skip":
      return "skipped: a previous run of the trigger was still running (overlap: skip / skip_if_previous_running)";
    case "buffer_one":
      return "skipped: a run of the trigger was already waiting behind the running one (overlap: buffer_one)";
    default:
      return "skipped: a newer date of the trigger was due at the same time (overlap: cancel_previous)";
  }
}

/** Which of the due dates to create, and which live runs to cancel, under the overlap policy. */
export function applyOverlap(dates: number[], live: PipelineRun[], settings: SchedulingSettings): { create: number[]; cancel: PipelineRun[] } {
  if (dates.length === 0) return { create: [], cancel: [] };
  const newest = dates[dates.length - 1] as number;
  switch (settings.overlap) {
    case "allow":
      return { create: dates, cancel: [] };
    case "skip":
      return { create: live.length > 0 ? [] : dates, cancel: [] };
    case "buffer_one": {
      // one run waiting behind the one running; a newer date replaces nothing, it is dropped
      if (live.some((r) => r.status === "initial")) return { create: [], cancel: [] };
      return { create: live.length > 0 ? [newest] : dates, cancel: [] };
    }
    case "cancel_previous":
      return { create: [newest], cancel: live };
  }
}

/** Creates the runs of every due time trigger (at most `limit` triggers a tick). */
export async function createDueRuns(store: Store, project: Project, options: CreateRunsOptions): Promise<CreateRunsReport> {
  const report: CreateRunsReport = { created: 0, skipped: 0, invalid: 0, late: 0 };
  const shards = options.shards ?? null;
  const due = await scheduling.dueSchedules(store.client, options.now, options.limit, shards ? { count: shards.count, held: [...shards.held.keys()] } : undefined);
  for (const schedule of due) {
    try {
      await createRunsFor(store, project, schedule, options, report);
    } catch (error) {
      if (error instanceof LeaseLostError) {
        // another replica owns this trigger now; it is not invalid, just not ours
        lostRaces.lost("lease");
        options.log.debug?.(error.message);
        continue;
      }
      if (error instanceof IllegalTransitionError) {
        // a lost race (another scheduler, or the run's engine, moved a live run first): nothing
        // was written, and the trigger is still due, so the next tick looks at it again
        lostRaces.lost("run_create");
        options.log.debug?.(`trigger ${schedule.pipelineUuid}/${schedule.name}: ${error.message}; evaluated again next tick`);
        continue;
      }
      // one bad trigger never stops the tick: it is marked invalid, with the reason
      const reason = messageOf(error);
      report.invalid++;
      options.log.warn(`trigger ${schedule.pipelineUuid}/${schedule.name} cannot be scheduled: ${reason}`);
      await store.commit(store.batch().recordScheduleProgress(schedule.id, { nextRunAt: null, lastExecutionDate: null, invalidReason: reason }));
    }
  }
  return report;
}

async function createRunsFor(store: Store, project: Project, schedule: ScheduleState, options: CreateRunsOptions, report: CreateRunsReport): Promise<void> {
  const { now } = options;
  const batch = store.batch();
  if (options.shards) {
    // fencing: refused if another replica has taken this shard since our lease was granted
    const shard = schedule.id % options.shards.count;
    batch.requireLease(shardLeaseName(shard), options.shards.held.get(shard) ?? -1);
  }
  const progress = (nextRunAt: number | null, lastExecutionDate: number | null) => batch.recordScheduleProgress(schedule.id, { nextRunAt, lastExecutionDate });
  if (schedule.scheduleType !== "time" || !schedule.scheduleInterval) {
    // api and event triggers are fired from outside, never by the clock
    progress(null, null);
    await store.commit(batch);
    return;
  }
  if (!project.pipelines.has(schedule.pipelineUuid)) throw new Error(`pipeline ${schedule.pipelineUuid} is not in the project`);
  const settings = schedulingSettings(schedule.settings as JsonObject);
  const interval = parseScheduleInterval(schedule.scheduleInterval);
  const live = await scheduling.liveRunsOfSchedule(store.client, schedule.id);
  const running = live.filter((r) => r.status === "running").length;
  const limitReached = settings.pipelineRunLimit !== null && running >= settings.pipelineRunLimit;

  if (interval.kind === "always_on") {
    // conditional on no live run at commit time: replicas (whose clocks differ) start one, not one each
    const insert = live.length === 0 ? addAlwaysOnRun(batch, schedule, now) : null;
    progress(now + options.alwaysOnRecheckMs, live.length === 0 ? now : null);
    const results = await store.commit(batch);
    if (insert !== null) report.created += results[insert]?.rows.length ?? 0;
    return;
  }

  const spec = scheduleSpec({ interval, timezone: schedule.timezone, startTime: schedule.startTime, dstGap: settings.dstGap, dstOverlap: settings.dstOverlap, landingTime: settings.landingTimeEnabled });
  const lead = settings.landingTimeEnabled ? landingLeadMs(await scheduling.recentRuntimes(store.client, schedule.id, LANDING_TIME_SAMPLE)) : 0;
  const horizon = now + lead;
  const dates = dueExecutionDates(spec, {
    lastExecutionDate: schedule.lastExecutionDate,
    now: horizon,
    catchUp: settings.catchUp,
    catchUpWindowSeconds: settings.catchUpWindow,
    cap: settings.catchUpCap ?? undefined,
    lastEnabledAt: schedule.lastEnabledAt,
    createInitialPipelineRun: settings.createInitialPipelineRun,
  });
  let { create, cancel } = applyOverlap(dates, live, settings);
  if (limitReached && settings.onPipelineRunLimitReached === "skip") {
    create = [];
    cancel = [];
  }
  report.skipped += dates.length - create.length;
  // passed-over dates are recorded as cancelled runs saying why (Mage's create-and-cancel)
  const reason = skipReason(settings, limitReached);
  const kept = new Set(create);
  addSkippedRuns(batch, schedule, dates.filter((d) => !kept.has(d)), reason);
  for (const run of cancel) {
    batch.transitionPipelineRun(run.id, run.status, "cancelled", {
      completedAt: now,
      metrics: { ...run.metrics, error: "cancelled: a newer run of its trigger started (overlap: cancel_previous)" },
    });
    batch.cancelLiveBlockRuns(run.id, "cancelled by a newer run of its trigger");
  }
  const inserts = addScheduledRuns(batch, schedule, create);
  const reached = dates.length > 0 ? (dates[dates.length - 1] as number) : schedule.lastExecutionDate;
  // a capped catch-up left missed dates behind: look again on the next tick, not at the next date
  const capped = dates.length >= (settings.catchUpCap ?? DEFAULT_CATCH_UP_CAP);
  const next = capped ? now : nextDueAt(spec, reached, horizon);
  progress(next === null ? null : capped ? next : next - lead, dates.length > 0 ? reached : null);
  const results = await store.commit(batch);
  // only the runs this commit inserted count: another scheduler may have created the same dates
  // (the insert is then a no-op), and drift must be reported once, by the one that created the run
  for (const index of inserts) {
    for (const row of results[index]?.rows ?? []) {
      report.created++;
      const executionDate = Number(row.execution_date);
      // a run that should have started a while ago: downtime, an overloaded scheduler, a slow tick
      const lateBy = now - (executionDate - lead);
      // a date from before the trigger was enabled (create_initial_pipeline_run) is late on purpose
      if (lateBy > options.driftThresholdMs && executionDate >= (schedule.lastEnabledAt ?? Number.NEGATIVE_INFINITY)) {
        report.late++;
        options.log.warn(`drift: trigger ${schedule.pipelineUuid}/${schedule.name} run for ${new Date(executionDate).toISOString()} created ${Math.round(lateBy / 1000)} s late`);
        const config = options.notifications(schedule.pipelineUuid);
        if (config) {
          await notify
            .enqueueNotifications(null, store, config, notify.drift(schedule, lateBy, executionDate))
            .catch((error: unknown) => options.log.error(`drift notification not queued: ${messageOf(error)}`));
        }
      }
    }
  }
}
