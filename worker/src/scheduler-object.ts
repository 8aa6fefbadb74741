/**
 * The scheduler on Workers: one Durable Object (class KilnScheduler, reached by the name
 * "scheduler") runs every tick, one at a time. The cron trigger and the routes that create runs
 * only wake it; the object runs a tick in its alarm, and at the tick's end sets the alarm to the
 * next due instant (a trigger's next_run_at, to the millisecond, not the next cron minute), or to
 * now when runs are left unfinished or a wake came in meanwhile. A wake from a route that
 * cancelled runs names them: the object keeps them in its storage, and a tick (the next one's
 * start, the running one's end) terminates their block runs' Workflows instances, which no
 * engine stops when no tick held the run.
 *
 * Mutual exclusion is real: a Durable Object is a single instance, its alarm handler never runs
 * twice at once, and a tick in progress is held in memory, so a wake during a tick is folded into
 * it (its scheduler starts the new runs at once) instead of starting a second tick. The object's
 * storage records each tick as running or ended; only when that record says the previous tick
 * ended, or died (it says running while no tick is in memory: the object was restarted), does a
 * tick take over runs that another tick's scheduler owned.
 */
import { scheduling } from "@kiln/core/store";
import { WORKFLOWS_EXECUTOR_TYPE } from "@kiln/executor-workflows";
import { Scheduler, type Log, type TakeoverNote, type TickReport } from "@kiln/scheduler";
import type { ProjectBundle } from "./bundle.ts";
import { DEFAULT_GRACE_SECONDS, DEFAULT_TICK_SECONDS, seconds, type WorkerEnv } from "./env.ts";
import { invocations, type OpenedForTick } from "./invocation.ts";
import { TickBudget, subrequestBudget } from "./subrequest-budget.ts";

/** The parts of Cloudflare's DurableObjectState used. */
export interface DurableObjectState {
  storage: {
    get<T>(key: string): Promise<T | undefined>;
    put<T>(key: string, value: T): Promise<void>;
    setAlarm(at: number): Promise<void>;
    getAlarm(): Promise<number | null>;
  };
}

/** The object's record of its latest tick. */
export interface TickRecord {
  id: string;
  state: "running" | "ended";
  startedAt: number;
  endedAt: number | null;
  /** How the tick before it finished: "ended" normally, "died" if it never recorded its end, "none" for the first. */
  previous: "ended" | "died" | "none";
  /** The subrequests the tick counted (D1 calls, the libSQL client's fetches), once it ended. */
  subrequests?: number;
  /** It left block runs queued because of its subrequest budget. */
  budgetReached?: boolean;
}

/** The name of the one scheduler object. */
export const SCHEDULER_OBJECT_NAME = "scheduler";

/** How many ended ticks the object remembers. */
const TICK_HISTORY = 50;

/** The prefix of every tick's scheduler id, so a takeover can tell a tick's runs from another scheduler's. */
const TICK_ID_PREFIX = "worker-tick-";

/**
 * Why a tick takes over a run of `owner`, for the log: a tick hands its unfinished runs to the
 * next one as it ends (routine, not a scheduler that stopped heartbeating), or the tick before
 * died without recording its end; a run of some other scheduler sharing the database is taken
 * too, since a tick has no orphan window, and that is worth a warning.
 */
export function describeTickTakeover(owner: string, before: TickRecord | undefined): TakeoverNote {
  if (!owner.startsWith(TICK_ID_PREFIX)) {
    return { level: "warn", reason: "a scheduler that is not this Worker's scheduler object (a tick has no orphan window: every other scheduler's runs are taken over)" };
  }
  if (before?.state === "running" && before.id === owner) return { level: "warn", reason: "the previous tick, which never recorded its end (its object was restarted mid-tick)" };
  return { level: "info", reason: "an earlier tick, which ended and handed its unfinished runs on" };
}

/**
 * When the runs a tick leaves wait only on Workflows instances, the next tick comes at the
 * instance's wake (it wakes the object when its block run ends) or after this long, whichever is
 * first: nobody needs to poll a Workflow every second, and the object sleeps meanwhile.
 */
const WORKFLOWS_BACKSTOP_MS = 60_000;

/** Path of the wake request; the answer says whether a tick was running (it took the wake) or one was scheduled. */
export const WAKE_PATH = "/wake";

/** A wake's body: the pipeline runs cancelled since (their Workflows instances are stopped by a tick). */
interface WakeBody {
  cancelled: number[];
}

/** The storage key of the cancelled runs whose block runs' Workflows instances a tick has yet to stop. */
const CANCELLED_KEY = "cancelled";

/** The cancelled run ids of a wake's body (a body without them, or not JSON: none). */
async function cancelledOf(request: Request): Promise<number[]> {
  const body = (await request.json().catch(() => null)) as Partial<WakeBody> | null;
  const ids = Array.isArray(body?.cancelled) ? body.cancelled : [];
  return ids.filter((id): id is number => Number.isSafeInteger(id) && id > 0);
}

const log: Log = {
  info: (m) => console.log(`INFO kiln: ${m}`),
  warn: (m) => console.warn(`WARN kiln: ${m}`),
  error: (m) => console.error(`ERROR kiln: ${m}`),
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Resolves once `done()` holds, or at `until` (epoch ms), whichever is first. */
async function waitFor(until: number, done: () => boolean): Promise<void> {
  while (!done() && Date.now() < until) await sleep(Math.min(50, until - Date.now()));
}

/** What a tick did, for the Worker's log and the object's `GET /tick` answer. */
export interface TickSummary {
  id: string;
  report: TickReport;
  unfinished: number;
  /** The runs carried over wait only for block runs on Workflows instances (nothing queued, no block in the Worker). */
  onlyWorkflows: boolean;
  wakes: number;
}

/** Builds the Durable Object class for a bundled project; the generated entry exports it as KilnScheduler. */
export function createSchedulerObject(bundle: ProjectBundle) {
  const opener = invocations(bundle);

  return class KilnScheduler {
    readonly #state: DurableObjectState;
    readonly #env: WorkerEnv;
    /** The tick in progress in this instance, if any: the in-memory half of the mutual exclusion. */
    #running: Promise<void> | null = null;
    /** The running tick's scheduler while it still hands out work (before its deadline). */
    #live: Scheduler | null = null;
    /** A wake arrived that the running tick could not take (it was past its deadline). */
    #wakeAgain = false;
    #wakes = 0;

    constructor(state: DurableObjectState, env: WorkerEnv) {
      this.#state = state;
      this.#env = env;
    }

    async fetch(request: Request): Promise<Response> {
      const path = new URL(request.url).pathname;
      if (request.method === "POST" && path === WAKE_PATH) {
        await this.#noteCancelled(await cancelledOf(request));
        return Response.json(await this.#wake());
      }
      if (request.method === "GET" && path === "/tick") {
        const storage = this.#state.storage;
        return Response.json({
          record: (await storage.get<TickRecord>("tick")) ?? null,
          history: (await storage.get<TickRecord[]>("history")) ?? [],
          alarm: await storage.getAlarm(),
          running: this.#running !== null,
        });
      }
      return new Response("not found", { status: 404 });
    }

    /** Adds runs to those whose Workflows instances the next tick's start or the running tick's end stops. */
    async #noteCancelled(ids: readonly number[]): Promise<void> {
      if (ids.length === 0) return;
      const storage = this.#state.storage;
      const pending = (await storage.get<number[]>(CANCELLED_KEY)) ?? [];
      await storage.put(CANCELLED_KEY, [...new Set([...pending, ...ids])]);
    }

    /**
     * Stops the Workflows instances of cancelled runs' block runs: a run cancelled while no tick
     * held it has no engine to stop them (the executor's cancel with the stored handle terminates
     * an instance still going, and leaves an ended one). A run that failed to stop stays noted
     * for the next tick.
     */
    async #stopCancelled(opened: OpenedForTick): Promise<void> {
      const storage = this.#state.storage;
      const pending = (await storage.get<number[]>(CANCELLED_KEY)) ?? [];
      if (pending.length === 0) return;
      const executor = opened.executors.has(WORKFLOWS_EXECUTOR_TYPE) ? opened.executors.get(WORKFLOWS_EXECUTOR_TYPE) : null;
      const failed = new Set<number>();
      for (const runId of pending) {
        const blockRuns = await opened.store.getBlockRuns(runId);
        for (const blockRun of blockRuns) {
          if (blockRun.status !== "cancelled" || blockRun.executorType !== WORKFLOWS_EXECUTOR_TYPE || !blockRun.executorHandle) continue;
          if (!executor) {
            log.warn(`block run ${blockRun.blockUuid} of cancelled pipeline run ${runId} ran on a Workflows instance, and this Worker has no workflows executor to stop it`);
            continue;
          }
          try {
            await executor.cancel(blockRun.executorHandle);
          } catch (error) {
            failed.add(runId);
            log.error(`stopping the Workflows instance of block run ${blockRun.blockUuid} of cancelled pipeline run ${runId}: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      }
      // runs noted while this ran are kept for the next tick
      const now = (await storage.get<number[]>(CANCELLED_KEY)) ?? [];
      await storage.put(CANCELLED_KEY, now.filter((id) => failed.has(id) || !pending.includes(id)));
    }

    /** A wake: the running tick starts waiting runs now; with no tick running, the alarm is set to now. */
    async #wake(): Promise<{ took: "running-tick" | "next-tick" | "alarm" }> {
      this.#wakes++;
      if (this.#running) {
        if (this.#live) {
          this.#live.wake();
          return { took: "running-tick" };
        }
        this.#wakeAgain = true;
        return { took: "next-tick" };
      }
      await this.#state.storage.setAlarm(Date.now());
      return { took: "alarm" };
    }

    async alarm(): Promise<void> {
      // the runtime never runs two alarm handlers at once; a tick is also never started beside a
      // tick in progress, whatever calls this
      if (this.#running) {
        this.#wakeAgain = true;
        return;
      }
      this.#running = this.#tick().finally(() => (this.#running = null));
      await this.#running;
    }

    async #tick(): Promise<void> {
      const env = this.#env;
      const storage = this.#state.storage;
      const before = await storage.get<TickRecord>("tick");
      // a record still saying running while no tick runs here: that tick's instance died mid-tick
      const previous: TickRecord["previous"] = before === undefined ? "none" : before.state === "running" ? "died" : "ended";
      const record: TickRecord = { id: `${TICK_ID_PREFIX}${crypto.randomUUID()}`, state: "running", startedAt: Date.now(), endedAt: null, previous };
      await storage.put("tick", record);
      if (previous === "died") log.warn(`the previous tick (${before?.id}) never recorded its end: its runs are taken over`);
      this.#wakeAgain = false;
      const wakesBefore = this.#wakes;
      let next: number | null = null;
      let opened: OpenedForTick | null = null;
      let budget: TickBudget | null = null;
      try {
        budget = new TickBudget(subrequestBudget(env));
        opened = await opener.openForTick(env, budget);
        // cancelled while no tick ran: their instances are stopped before anything else
        await this.#stopCancelled(opened);
        const summary = await this.#drive(opened, record.id, (owner) => describeTickTakeover(owner, before), budget);
        // cancelled during this tick after its engine let go of the run (its end, its grace)
        await this.#stopCancelled(opened);
        log.info(
          `tick ${record.id}: ${summary.report.runs.created} run(s) created, ${summary.report.started} started, ${summary.report.resumed} resumed; ` +
            `${summary.unfinished} run(s) carried over to the next tick; ${this.#wakes - wakesBefore} wake(s) during it` +
            (budget.refused ? `; it reached its subrequest budget (${budget.limit}, KILN_SUBREQUEST_BUDGET) and left block runs queued for the next tick, which starts now` : ""),
        );
        if (budget.tooSmall) log.warn(`KILN_SUBREQUEST_BUDGET (${budget.limit}) is below what a tick costs before its first block run plus that block run; each tick still starts one block run, so runs go on, but a tick may pass the budget: raise it (the Free plan allows 50)`);
        const due = await scheduling.earliestNextRunAt(opened.store.client);
        // a wake during the tick may have been taken after the tick's last look for waiting runs: one more tick sees it
        const woken = this.#wakeAgain || this.#wakes !== wakesBefore;
        if (woken || (summary.unfinished > 0 && !summary.onlyWorkflows)) next = Date.now();
        else if (summary.unfinished > 0) next = Math.min(Date.now() + WORKFLOWS_BACKSTOP_MS, due ?? Number.POSITIVE_INFINITY);
        else next = due;
      } catch (error) {
        log.error(`tick ${record.id} failed: ${error instanceof Error ? error.message : String(error)}`);
        // try again soon; the cron firing is the backstop
        next = Date.now() + 5_000;
      } finally {
        this.#live = null;
        await opened?.logSink.flush();
        opened?.close();
        const ended: TickRecord = { ...record, state: "ended", endedAt: Date.now(), ...(budget ? { subrequests: budget.used, budgetReached: budget.refused } : {}) };
        await storage.put("tick", ended);
        // the latest ticks, for an operator (and the tests) to see that they never overlapped
        const history = (await storage.get<TickRecord[]>("history")) ?? [];
        await storage.put("history", [...history, ended].slice(-TICK_HISTORY));
      }
      if (next !== null) await storage.setAlarm(Math.max(next, Date.now()));
    }

    /**
     * One tick: create due runs, start waiting ones and take over what the previous tick left,
     * drive them until the deadline (wakes start new runs meanwhile); then hand out no more block
     * runs, let running ones finish within the grace period, and leave.
     */
    async #drive(opened: OpenedForTick, id: string, describeTakeover: (owner: string) => TakeoverNote, budget: TickBudget): Promise<TickSummary> {
      const env = this.#env;
      const { store, project, engine } = opened;
      const deadline = Date.now() + seconds(env, "KILN_TICK_SECONDS", DEFAULT_TICK_SECONDS) * 1000;
      const grace = seconds(env, "KILN_TICK_GRACE_SECONDS", DEFAULT_GRACE_SECONDS) * 1000;
      // orphanAfterMs 0: every other scheduler's runs are orphans. That holds here because this
      // object's record says the tick before ended or died, and no other tick can be running
      const scheduler = new Scheduler({ store, project, engine, id, host: "cloudflare-durable-object", log, orphanAfterMs: 0, tickIntervalMs: 60_000, describeTakeover });
      const report = await scheduler.tick();
      this.#live = scheduler;
      // a tick stays while it drives runs; a wake (a run created) during it starts that run now
      // a tick past its subrequest budget ends as at its deadline: its queued block runs are the next tick's
      await waitFor(deadline, () => engine.activeRunIds().length === 0 || budget.refused);
      this.#live = null;
      engine.holdLaunches();
      // a block on a Workflows instance goes on without this tick: only the Worker's own are waited for
      const inWorker = () => engine.executingBlockRuns - engine.executingBlockRunsOf(WORKFLOWS_EXECUTOR_TYPE);
      await waitFor(Math.max(deadline, Date.now()) + grace, () => inWorker() === 0);
      const left = engine.activeRunIds();
      const onlyWorkflows = left.length > 0 && inWorker() === 0 && engine.waitingBlockRuns === 0;
      if (left.length > 0) {
        // the runs left are the next tick's to take over: this tick's engine lets go of them now
        // (a block on a Workflows instance or in a container goes on, its handle stored), so
        // nothing of this tick polls or writes after it ended
        const letGo = left.map((runId) => engine.ended(runId)).filter((ended) => ended !== null);
        engine.setLiveness(() => `tick ${id} ended: the next tick takes its runs over`);
        engine.checkLiveness();
        await Promise.allSettled(letGo);
      }
      await scheduler.stop(0);
      return { id, report, unfinished: left.length, onlyWorkflows, wakes: this.#wakes };
    }
  };
}

/**
 * Wakes the scheduler object: what the cron trigger and the run-creating routes do. The routes
 * that cancel runs pass them as `cancelledRunIds`: the object keeps them until a tick has stopped
 * their block runs' Workflows instances.
 */
export async function wakeScheduler(
  namespace: { idFromName(name: string): unknown; get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> } },
  cancelledRunIds: readonly number[] = [],
): Promise<void> {
  const stub = namespace.get(namespace.idFromName(SCHEDULER_OBJECT_NAME));
  const body: WakeBody = { cancelled: [...cancelledRunIds] };
  const response = await stub.fetch(`https://kiln-scheduler${WAKE_PATH}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`the scheduler object answered ${response.status} to a wake: ${await response.text()}`);
  await response.body?.cancel();
}

