/**
 * The scheduler: a tick, repeated. Each tick records a heartbeat, syncs triggers.yaml, creates
 * the runs of due time triggers, flags SLA breaches, starts waiting runs within the limits, and
 * takes over runs whose scheduler stopped. Several schedulers may share one database: run
 * creation is exactly-once by the unique (schedule, execution_date) key, and starting or taking
 * over a run is a conditional write that only one of them wins.
 */
import { systemClock, type Clock, type PipelineRun, messageOf } from "@kiln/core";
import * as notify from "@kiln/core/notify";
import { settleBackfills } from "@kiln/core/backfill";
import { lostRaces, RunNotInitialError, type RunEngine } from "@kiln/core/engine";
import { type Project } from "@kiln/core/project";
import { isDatabaseUnavailable, scheduling, type Store } from "@kiln/core/store";
import type { CreatedRun } from "@kiln/core/runs";
import type { RedisLeases } from "./leases.ts";
import { notificationConfigOf } from "./notifications.ts";
import { createDueRuns, type CreateRunsReport } from "./create-runs.ts";
import { consoleLog, type Log } from "./log.ts";
import { startCreatedRuns, startInitialRuns, type StartRunsOptions } from "./start-runs.ts";
import { syncTriggers, type SyncReport } from "./sync-triggers.ts";

export interface SchedulerOptions {
  store: Store;
  project: Project;
  engine: RunEngine;
  /** This process's id in the `schedulers` table; a new random one by default. */
  id?: string;
  host?: string;
  pid?: number | null;
  clock?: Clock;
  log?: Log;
  tickIntervalMs?: number;
  /** A scheduler silent for this long is presumed dead and its runs are taken over. */
  orphanAfterMs?: number;
  /** Runs created later than this after they were due are reported as drift. */
  driftThresholdMs?: number;
  /** Most triggers evaluated and runs started in one tick; the rest wait for the next. */
  batchSize?: number;
  /** How notifications are sent (tests inject one); globalThis.fetch by default. */
  fetch?: typeof fetch;
  /** Sends email_config notifications (the entry point's SMTP client); without it they fail, saying why. */
  sendMail?: notify.MailSender;
  /** Redis leases to share triggers with other replicas; without, this process evaluates all. */
  leases?: RedisLeases | null;
  /**
   * Why a run of scheduler `owner` is being taken over, for the log: by default that scheduler
   * stopped heartbeating (a warning). A Worker tick, which has no orphan window, says instead
   * whether the tick before it ended or died.
   */
  describeTakeover?: (owner: string) => TakeoverNote;
  /**
   * Loads the project from disk again (the host that has files: `kiln start`). Called before a
   * sync that would change a code trigger, so an API edit another process wrote to triggers.yaml
   * after this one last loaded it is not reverted (see syncTriggers' reread); the project it
   * gives becomes this scheduler's.
   */
  reloadProject?: () => Promise<Project>;
}

/** How the log explains taking over another scheduler's run: the level, and the clause after "taking over pipeline run N from OWNER, ". */
export interface TakeoverNote {
  level: "info" | "warn";
  reason: string;
}

const HEARTBEAT_STOPPED: TakeoverNote = { level: "warn", reason: "which stopped heartbeating" };

/** How often code triggers are synced even when the project has not been reloaded. */
const RESYNC_EVERY_MS = 30_000;

/** Never tick again sooner than this, even when a trigger is due sooner. */
const MIN_TICK_GAP_MS = 10;

/**
 * How long before the orphan window ends a scheduler whose heartbeat lapsed lets go of its runs
 * (a fifth of the window, at most 5 s): another scheduler may take them over once the window has
 * passed since it saw the last beat, and by then this one's in-process blocks must be stopped,
 * not merely about to be (a timer fires late on a busy machine, a block sees its abort at its
 * next await).
 */
export function fenceMarginMs(orphanAfterMs: number): number {
  return Math.min(orphanAfterMs / 5, 5_000);
}

export interface TickReport {
  at: number;
  sync: SyncReport;
  runs: CreateRunsReport;
  slaBreaches: number;
  /** Backfills that ended this tick. */
  backfillsSettled: number;
  started: number;
  resumed: number;
  durationMs: number;
}

export class Scheduler {
  readonly id: string;
  readonly #store: Store;
  #project: Project;
  readonly #engine: RunEngine;
  readonly #clock: Clock;
  readonly #log: Log;
  readonly #host: string;
  readonly #pid: number | null;
  readonly #tickMs: number;
  readonly #orphanAfterMs: number;
  readonly #driftMs: number;
  readonly #batchSize: number;
  readonly #runs = new Map<number, Promise<PipelineRun>>();
  /** Each other scheduler's last seen beat count, and when (by this clock) it was first seen at it. */
  readonly #beatsSeen = new Map<string, { beats: number; since: number }>();
  #timer: (() => void) | null = null;
  #ticking: Promise<TickReport> | null = null;
  #stopping = false;
  #syncedProject: Project | null = null;
  #syncedAt = 0;
  #delivering = false;
  #waking = false;
  #wakeAgain = false;
  /** A wake asked for since the last pass should also resume ownerless running runs. */
  #wakeResumes = false;
  readonly #fetch: typeof fetch | undefined;
  readonly #sendMail: notify.MailSender | undefined;
  readonly #leases: RedisLeases | null;
  readonly #describeTakeover: (owner: string) => TakeoverNote;
  readonly #reloadProject: (() => Promise<Project>) | null;
  /** Ticks that started later than their interval (the process was busy or asleep). */
  skippedTicks = 0;
  /** When (real time) the last heartbeat that was written began; null before the first. */
  #lastBeatAt: number | null = null;
  /** The heartbeat being written now (one at a time: the tick's and the beat timer's). */
  #beating: Promise<void> | null = null;
  /** Cancels the beat timer (start() to the end of stop()). */
  #beatTimer: (() => void) | null = null;
  /** Cancels the timer that lets go of the runs when no heartbeat was written in time. */
  #lapseTimer: (() => void) | null = null;
  /** Stops listening to the store's "runs created" signal (set while started). */
  #unlisten: (() => void) | null = null;

  constructor(options: SchedulerOptions) {
    this.#store = options.store;
    this.#project = options.project;
    this.#engine = options.engine;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? consoleLog;
    this.id = options.id ?? `scheduler-${crypto.randomUUID()}`;
    this.#host = options.host ?? "localhost";
    this.#pid = options.pid ?? null;
    this.#tickMs = options.tickIntervalMs ?? 1000;
    this.#orphanAfterMs = options.orphanAfterMs ?? 30_000;
    this.#driftMs = options.driftThresholdMs ?? 60_000;
    this.#batchSize = options.batchSize ?? 500;
    this.#fetch = options.fetch;
    this.#sendMail = options.sendMail;
    this.#leases = options.leases ?? null;
    this.#describeTakeover = options.describeTakeover ?? (() => HEARTBEAT_STOPPED);
    this.#reloadProject = options.reloadProject ?? null;
    // with no orphan window (a Worker tick) nobody takes runs over, so there is nothing to fence
    if (this.#orphanAfterMs > 0) this.#engine.setLiveness(() => this.#heartbeatLapse());
  }

  /**
   * Why this process may have been presumed dead, or null: its last heartbeat is older than the
   * orphan window (it was frozen, or could not reach the database), so other schedulers may be
   * taking its runs over. Wall-clock time, whatever clock schedules triggers: a freeze is real.
   */
  #heartbeatLapse(): string | null {
    // with no orphan window (a Worker tick) nobody takes runs over, so nothing lapses
    if (this.#lastBeatAt === null || this.#orphanAfterMs <= 0) return null;
    const silent = systemClock.now() - this.#lastBeatAt;
    if (silent <= this.#fenceAfterMs) return null;
    return `scheduler ${this.id} wrote no heartbeat for ${(silent / 1000).toFixed(1)} s (orphan window ${Math.round(this.#orphanAfterMs / 1000)} s; it lets go of its runs after ${(this.#fenceAfterMs / 1000).toFixed(1)} s): its runs may be taken over`;
  }

  /** Lets go of every run the engine drives if the heartbeat lapsed (it was frozen, or the database out of reach), saying so. */
  #letGoIfLapsed(): void {
    if (this.#engine.checkLiveness()) this.#log.warn(`${this.#heartbeatLapse()}; letting go of the runs this scheduler drove`);
  }

  /** A heartbeat this old (real time) means this process lets go of its runs (see fenceMarginMs). */
  get #fenceAfterMs(): number {
    return this.#orphanAfterMs - fenceMarginMs(this.#orphanAfterMs);
  }

  /**
   * Writes a heartbeat (joining one being written). Once written, a timer is armed for the moment
   * it is too old: if no newer beat was written by then, the engine lets go of its runs at once,
   * before any other scheduler may take them over, rather than at its next commit or watch.
   */
  #beat(): Promise<void> {
    this.#beating ??= (async () => {
      // a process waking from a freeze lets go of its runs before its new beat hides the lapse
      this.#letGoIfLapsed();
      const beatAt = systemClock.now();
      try {
        await scheduling.heartbeat(this.#store.client, this.id, this.#host, this.#pid, this.#clock.now());
      } finally {
        this.#beating = null;
      }
      if (this.#lastBeatAt !== null && this.#lastBeatAt > beatAt) return;
      this.#lastBeatAt = beatAt;
      if (this.#orphanAfterMs <= 0) return;
      this.#lapseTimer?.();
      this.#lapseTimer = systemClock.setTimer(
        beatAt + this.#fenceAfterMs + 1 - systemClock.now(),
        () => this.#letGoIfLapsed(),
        { background: true },
      );
    })();
    return this.#beating;
  }

  /**
   * Heartbeats on their own timer, not only at each tick: a tick held up (a slow database, a long
   * trigger evaluation, a Redis timeout) or the shutdown's grace period must not look like death
   * to the other schedulers.
   */
  #startBeating(): void {
    const every = Math.max(MIN_TICK_GAP_MS, Math.min(this.#tickMs, this.#orphanAfterMs > 0 ? this.#orphanAfterMs / 4 : this.#tickMs));
    const loop = () => {
      const last = this.#lastBeatAt;
      const due = last === null || systemClock.now() - last >= every / 2;
      const beat = due ? this.#beat().catch((error: unknown) => this.#log.warn(`heartbeat not written: ${messageOf(error)}`)) : Promise.resolve();
      void beat.then(() => {
        if (this.#beatTimer !== null) this.#beatTimer = systemClock.setTimer(every, loop, { background: true });
      });
    };
    this.#beatTimer = systemClock.setTimer(every, loop, { background: true });
  }

  /** Logs normal contention between replicas (never at ERROR). */
  #debug(message: string): void {
    this.#log.debug?.(message);
  }

  /** Replaces the project (after triggers.yaml or metadata.yaml changed on disk). */
  setProject(project: Project): void {
    this.#project = project;
  }

  /** Syncs the code triggers with the project, read again from disk first when the sync would change a row and the host can. */
  async #sync(now: number): Promise<SyncReport> {
    const reload = this.#reloadProject;
    const reread = reload
      ? () =>
          reload().catch((error: unknown) => {
            this.#log.warn(`project not read again before syncing triggers.yaml (the last one loaded is synced): ${error instanceof Error ? error.message : String(error)}`);
            return null;
          })
      : undefined;
    const held = this.#project;
    const { project, ...report } = await syncTriggers(this.#store, held, now, reread ? { reread } : {});
    // a project set during the sync (a reload, a write-back) is newer than the one synced: kept, and synced next tick
    if (project !== held && this.#project === held) this.#project = project;
    this.#syncedProject = project;
    this.#syncedAt = now;
    const changed = report.created + report.updated + report.deactivated;
    const summary = `triggers.yaml synced: ${report.created} created, ${report.updated} updated, ${report.deactivated} deactivated`;
    if (changed > 0) this.#log.info(summary);
    else this.#log.debug?.(summary);
    return report;
  }

  /** Runs started by this scheduler that have not ended yet. */
  get activeRuns(): number {
    return this.#runs.size;
  }

  /** One pass of the scheduler; safe to call concurrently with other schedulers on the same database. */
  async tick(): Promise<TickReport> {
    const started = this.#clock.now();
    const store = this.#store;
    // (a process waking from a freeze lets go of its runs here, before it writes anything for them)
    await this.#beat();
    // triggers.yaml only changes with the project (reloaded from disk); a periodic pass repairs
    // edits made to code triggers through the database
    const resync = this.#project !== this.#syncedProject || started - this.#syncedAt >= RESYNC_EVERY_MS;
    const sync = resync ? await this.#sync(started) : { created: 0, updated: 0, deactivated: 0 };
    const project = this.#project;
    const notifications = (pipelineUuid: string) => notificationConfigOf(project, pipelineUuid);
    const shards = this.#leases ? await this.#leases.refresh() : null;
    const runs = await createDueRuns(store, this.#project, {
      now: started,
      limit: this.#batchSize,
      driftThresholdMs: this.#driftMs,
      alwaysOnRecheckMs: this.#tickMs,
      log: this.#log,
      notifications,
      shards,
    });
    const spentOnce = await scheduling.deactivateSpentOnceTriggers(store.client, started);
    if (spentOnce.length > 0) this.#log.info(`@once trigger(s) ${spentOnce.join(", ")} ran: now inactive`);
    const slaBreaches = await this.#flagSlaBreaches(started, notifications);
    const backfillsSettled = (await settleBackfills(store, started)).length;
    const startedRuns = this.#stopping
      ? 0
      : await this.#startWaiting();
    const resumed = this.#stopping ? 0 : await this.#resumeOrphans();
    this.#deliverNotifications();
    return { at: started, sync, runs, slaBreaches, backfillsSettled, started: startedRuns, resumed, durationMs: this.#clock.now() - started };
  }

  /**
   * Starts waiting runs now, within the limits, without waiting for the next tick: a started
   * scheduler calls this when its store signals runs created in this process (an API trigger, a
   * backfill start, trigger_pipeline), so a run starts within milliseconds. With
   * `resumed`, runs put back to running with no owner (retry_blocks) are resumed too; an API
   * trigger does not pay for that search. Calls during a pass are folded into one more pass.
   * With `runs` (the signal named the runs the commit created, with their triggers), those no
   * concurrency limit holds back start at once, in this call, reading nothing; a pass is made
   * only for the others.
   */
  wake(options: { resumed?: boolean; runs?: readonly CreatedRun[] } = {}): void {
    if (this.#stopping) return;
    if (options.runs && !options.resumed) {
      const rest = startCreatedRuns(this.#project, this.#engine, options.runs, this.#startOptions());
      if (rest.length === 0) return;
    }
    if (options.resumed) this.#wakeResumes = true;
    if (this.#waking) {
      this.#wakeAgain = true;
      return;
    }
    this.#waking = true;
    const resume = this.#wakeResumes;
    this.#wakeResumes = false;
    void this.#startWaiting()
      .then(() => (this.#stopping || !resume ? 0 : this.#resumeOrphans()))
      .catch((error: unknown) => {
        const message = `starting waiting runs: ${messageOf(error)}`;
        // the database out of reach: the runs wait for the next tick, nothing is lost
        if (isDatabaseUnavailable(error)) this.#log.warn(message);
        else this.#log.error(message);
      })
      .finally(() => {
        this.#waking = false;
        if (this.#wakeAgain) {
          this.#wakeAgain = false;
          this.wake();
        }
      });
  }

  /** Starts waiting runs within the limits, owned and tracked by this scheduler. */
  #startWaiting(): Promise<number> {
    return startInitialRuns(this.#store, this.#project, this.#engine, this.#startOptions());
  }

  #startOptions(): StartRunsOptions {
    return { owner: this.id, limit: this.#batchSize, log: this.#log, onStarted: (run, done) => this.#track(run.id, done) };
  }

  /** Sends due notifications in the background: a slow or failing target never holds up a tick. */
  #deliverNotifications(): void {
    if (this.#delivering) return;
    this.#delivering = true;
    const log = this.#log;
    const project = this.#project;
    // the outbox stores no headers (they are often tokens): they come from the config at send time
    const configs = [notificationConfigOf(project), ...[...project.pipelines.keys()].map((uuid) => notificationConfigOf(project, uuid))];
    const headers = notify.webhookHeaders(configs);
    void notify
      .deliverDueNotifications(this.#store, {
        clock: this.#clock,
        headers,
        email: notify.emailSettings(configs),
        ...(this.#sendMail ? { sendMail: this.#sendMail } : {}),
        ...(this.#fetch ? { fetch: this.#fetch } : {}),
        log: (level, message) => log[level](message),
      })
      .finally(() => (this.#delivering = false));
  }

  #track(runId: number, done: Promise<PipelineRun>): void {
    this.#runs.set(runId, done);
    done.then(
      (run) => {
        this.#runs.delete(runId);
        // a run another scheduler drove (it won the start or took the run over) is its to report
        if (run.status === "failed" && run.owner === this.id) this.#log.warn(`pipeline run ${run.id} (${run.pipelineUuid}) failed: ${String(run.metrics.error ?? "")}`);
      },
      (error: unknown) => {
        this.#runs.delete(runId);
        if (error instanceof RunNotInitialError) {
          // another scheduler started it between this one's read and its start: a race it is meant to lose
          lostRaces.lost("run_start");
          this.#debug(`${error.message} (started by another scheduler first)`);
          return;
        }
        const message = `pipeline run ${runId}: ${messageOf(error)}`;
        // the database out of reach before the run could be read: the run is untouched, a later tick takes it up
        if (isDatabaseUnavailable(error)) this.#log.warn(`${message} (the database cannot be reached; tried again later)`);
        else this.#log.error(message);
      },
    );
  }

  async #flagSlaBreaches(now: number, notifications: (pipelineUuid: string) => notify.NotificationConfig | null): Promise<number> {
    const breached = await scheduling.runsPastSla(this.#store.client, now, this.#batchSize);
    if (breached.length === 0) return 0;
    // One batch per run, its flag guarded: when several schedulers see the same breach, only the
    // one whose update sets passed_sla commits (with its notification); the others' batches are
    // refused by the guard and roll back, so the breach is flagged, counted and notified once.
    const outcomes = await Promise.allSettled(
      breached.map((run) => {
        const batch = this.#store.batch().flagPassedSla(run.id);
        const config = notifications(run.pipelineUuid);
        if (config) {
          const pipeline = { uuid: run.pipelineUuid, name: this.#project.pipelines.get(run.pipelineUuid)?.name };
          void notify.enqueueNotifications(batch, this.#store, config, notify.slaPassed(run, run.sla, pipeline));
        }
        return this.#store.commit(batch);
      }),
    );
    let flagged = 0;
    outcomes.forEach((outcome, i) => {
      const run = breached[i]!;
      if (outcome.status === "rejected") return; // flagged by another scheduler (or retried next tick)
      flagged++;
      this.#log.warn(`SLA passed: pipeline run ${run.id} (${run.pipelineUuid}) not completed ${run.sla} s after ${new Date(run.executionDate).toISOString()}`);
    });
    return flagged;
  }

  /**
   * The schedulers presumed dead: their beat count has not changed for orphanAfter, by this
   * process's clock (the other's heartbeat_at, its own clock, never counts, so a replica whose
   * clock runs ahead cannot mistake live schedulers for dead ones). A count seen to change counts
   * from when the read that saw it returned; a scheduler is dead only if a read that began
   * orphanAfter after that still saw the same count. So a read made before this process was
   * frozen, or a tick's start time, can never make a live scheduler look dead after the freeze.
   */
  async #deadSchedulers(): Promise<Set<string>> {
    const readAt = this.#clock.now();
    const beats = await scheduling.schedulerBeats(this.#store.client);
    const seenAt = this.#clock.now();
    const dead = new Set<string>();
    for (const [id, count] of beats) {
      if (id === this.id) continue;
      // no orphan window (a Worker tick, whose isolate may be gone): every other scheduler counts as gone
      if (this.#orphanAfterMs <= 0) {
        dead.add(id);
        continue;
      }
      const seen = this.#beatsSeen.get(id);
      if (!seen || seen.beats !== count) this.#beatsSeen.set(id, { beats: count, since: seenAt });
      else if (readAt - seen.since >= this.#orphanAfterMs) dead.add(id);
    }
    for (const id of this.#beatsSeen.keys()) if (!beats.has(id)) this.#beatsSeen.delete(id);
    return dead;
  }

  async #resumeOrphans(): Promise<number> {
    // a scheduler that may itself have been asleep (frozen between its heartbeat and here) takes
    // nothing over: what it read of the others' heartbeats may be from before it slept
    if (this.#heartbeatLapse() !== null) return 0;
    // runs of schedulers presumed dead, and of schedulers with no heartbeat row at all (stopped
    // cleanly); a scheduler that registered after the read above is not among them
    const orphans = await scheduling.orphanedRuns(this.#store.client, await this.#deadSchedulers(), this.#batchSize);
    const active = new Set(this.#engine.activeRunIds());
    let resumed = 0;
    for (const run of orphans) {
      if (active.has(run.id) || run.owner === this.id) continue;
      if (run.owner === null) this.#log.info(`resuming pipeline run ${run.id}, which has no owner (retried, or left by kiln run)`);
      else {
        const note = this.#describeTakeover(run.owner);
        this.#log[note.level](`taking over pipeline run ${run.id} from ${run.owner}, ${note.reason}`);
      }
      this.#track(run.id, this.#engine.resume(run.id, run.owner, { owner: this.id }));
      resumed++;
    }
    // runs still recorded as this scheduler's that its engine let go of (after a freeze, say) and
    // no other scheduler took over: nobody else will, since this one heartbeats again
    for (const run of await scheduling.runsOwnedBy(this.#store.client, this.id, this.#batchSize)) {
      if (active.has(run.id) || this.#runs.has(run.id)) continue;
      this.#log.info(`resuming pipeline run ${run.id}, which this scheduler let go of`);
      this.#track(run.id, this.#engine.resume(run.id, this.id, { owner: this.id }));
      resumed++;
    }
    return resumed;
  }

  /**
   * How long to sleep before the next tick: until the earliest due trigger, so a run starts
   * close to its instant rather than up to a whole interval late, but never longer than the tick
   * interval (waiting runs, orphans and heartbeats need ticks too).
   */
  async #untilNextDue(): Promise<number> {
    const next = await scheduling.earliestNextRunAt(this.#store.client);
    const wait = next === null ? this.#tickMs : next - this.#clock.now();
    // already due after our tick: another replica's shard, or work capped for later; don't spin on it
    if (wait <= 0) return this.#tickMs;
    return Math.min(this.#tickMs, Math.max(MIN_TICK_GAP_MS, wait));
  }

  /** Ticks every tickIntervalMs (sooner when a trigger is due) until stop(); a failing tick is logged, never fatal. */
  start(): void {
    this.#startBeating();
    // runs created in this process (the API, trigger_pipeline, a backfill) start now, not at the next tick
    this.#unlisten ??= this.#store.runsCreated.listen((event) => this.wake(event));
    let expected = this.#clock.now();
    const loop = () => {
      if (this.#stopping) return;
      const now = this.#clock.now();
      if (now - expected > this.#tickMs) {
        this.skippedTicks++;
        this.#log.warn(`drift: tick ${now - expected} ms late`);
      }
      this.#ticking = this.tick();
      this.#ticking
        .catch((error: unknown) => {
          const message = messageOf(error);
          // the database down or restarting is an outage to report, not a kiln error: the next tick tries again
          if (isDatabaseUnavailable(error)) this.#log.warn(`tick skipped, the database cannot be reached: ${message}`);
          else this.#log.error(`tick failed: ${message}`);
          return null;
        })
        .then(() => this.#untilNextDue())
        .catch(() => this.#tickMs)
        .then((wait) => {
          this.#ticking = null;
          expected = this.#clock.now() + wait;
          if (!this.#stopping) this.#timer = this.#clock.setTimer(wait, loop);
        });
    };
    loop();
  }

  /**
   * Stops claiming work, lets running runs finish for up to `graceMs`, then leaves what is still
   * running to be taken over by another scheduler (its heartbeat is removed so that happens at once).
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.#stopping = true;
    this.#unlisten?.();
    this.#unlisten = null;
    this.#timer?.();
    await this.#ticking?.catch(() => null);
    const pending = [...this.#runs.values()];
    if (pending.length > 0) {
      this.#log.info(`stopping: waiting up to ${Math.round(graceMs / 1000)} s for ${pending.length} run(s)`);
      await Promise.race([Promise.allSettled(pending), new Promise((r) => systemClock.setTimer(graceMs, () => r(null)))]);
    }
    // the beat timer kept beating through the grace period: the runs still finishing here are
    // this process's, not orphans; from here on they are (the heartbeat goes)
    this.#beatTimer?.();
    this.#beatTimer = null;
    await this.#beating?.catch(() => null);
    this.#lapseTimer?.();
    await this.#leases?.close();
    await scheduling.removeScheduler(this.#store.client, this.id);
  }
}
