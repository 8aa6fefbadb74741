/**
 * The run engine: drives pipeline runs through their DAGs. It is event-driven: a block run's
 * end, a timer (retry backoff, timeout) or a cancel is posted to its run's inbox; the run then
 * takes every pending event at once, works out all the state changes they cause (downstream
 * blocks queued and claimed the moment their upstreams complete), commits them as one batch,
 * and only then starts the block runs it claimed. Every status change goes through the state
 * machine as a conditional write, so a run cancelled elsewhere stops here at the next commit.
 *
 * This file is the inbox/batch/commit loop; around it, each in its own module:
 * - run-state.ts: one run's state, with the project it started with (executor types, retries, limits);
 * - dag-rules.ts: readiness, fan-out, reduce, upstream_failed, condition_failed and run end, pure;
 * - launcher.ts: where a block run leaves for its executor (start, re-attach, follow, log copy);
 * - executor-slots.ts: block runs executing per executor type across runs (executor_limits);
 * - ownership.ts: watching that a run is still this engine's, and what to leave when letting go;
 * - addons.ts: Mage's conditionals and callbacks; plan.ts: a block run's job; retry.ts: backoff.
 */
import type { ResultSet } from "@libsql/client";
import { systemClock, type Clock } from "../clock.ts";
import type { BlockRun, BlockRunStatus, PipelineRun, PipelineRunStatus } from "../domain.ts";
import { parseBlockRunUuid } from "../domain.ts";
import type { ExecutionHandle, ExecutionStatus, Executor, ExecutorRegistry } from "../executor.ts";
import { encodeBlockOutput, inlineOutputOf, type InlineOutput, type OutputStore } from "../outputs.ts";
import type { LogSink } from "../logs.ts";
import { fanOutSourceOf } from "../project/dag.ts";
import type { BlockConfig, Pipeline, Project } from "../project/types.ts";
import { lostRaces } from "../races.ts";
import { assertTransition, BLOCK_RUN_TERMINAL, IllegalTransitionError } from "../state-machine.ts";
import { blockRunSubject, pipelineRunFromRow, RunTakenOverError, type Store, type WriteBatch, type BlockRunMove, type BlockRunPatch } from "../store/index.ts";
import { mergeVariables } from "../variables.ts";
import { AddonHooks, callbacksOf, conditionalsOf, type AddonRunner } from "./addons.ts";
import { controllerOutcome, fanOut, itemCountOf, nodeKindOf, readiness, runOutcome } from "./dag-rules.ts";
import { ExecutorSlots } from "./executor-slots.ts";
import { outsideUpstreams } from "./plan.ts";
import { retryDelayMs, shouldRetry } from "./retry.ts";
import { commitThroughOutages, throughOutages } from "./commit-retry.ts";
import { Launcher } from "./launcher.ts";
import { leftForNextOwner, liveExecutions, lostToAnother, OwnershipWatch, RunEndedElsewhereError, RunLostError } from "./ownership.ts";
import { RunState, type Input, type Node, type RunEvent, type RunOptions } from "./run-state.ts";
import { messageOf } from "../errors.ts";

export { DEFAULT_BLOCK_RUN_LIMIT, type RunEvent, type RunOptions } from "./run-state.ts";
export { RunEndedElsewhereError, RunLostError } from "./ownership.ts";

export interface RunEngineDeps {
  store: Store;
  project: Project;
  executors: ExecutorRegistry;
  outputs: OutputStore;
  clock?: Clock;
  /** How often to ask an executor that cannot push for its status (ms). */
  pollIntervalMs?: number;
  /** How often to check that a running run was not cancelled by another process (ms). */
  watchIntervalMs?: number;
  /** Where a remote block run's log is copied when it ends (the executor's logs()). */
  logs?: LogSink;
  /**
   * Adds writes to the batch that ends a run (e.g. the notifications it causes), so they commit
   * with the run's final status or not at all.
   */
  beforeRunEnds?: (run: PipelineRun, status: PipelineRunStatus, error: string | null, batch: WriteBatch) => void;
  /** Runs Mage's callback and conditional blocks (engine/addons.ts); without it they fail, logged. */
  addons?: AddonRunner;
  /**
   * Asked before each queued block run is handed out, with the number executing now; false
   * leaves it queued (a Worker tick within its subrequest budget), as holdLaunches does.
   */
  mayLaunch?: (executing: number) => boolean;
}

/** What one pass over the inbox produces: a batch, then work to do once it is committed. */
interface Step {
  batch: WriteBatch;
  /** Block-run moves of this step; several moves of one block run become one write. */
  moves: Map<Node, { from: BlockRunStatus; via: BlockRunStatus[]; patch: BlockRunPatch }>;
  /** Block runs this step creates, inserted at commit in the status the step's moves left them in. */
  creates: Node[];
  launches: Node[];
  /** Running block runs of a resumed run, to follow through their stored handles. */
  attaches: Node[];
  cancels: Node[];
  /** Executions whose end this step records: released to their executors after the commit (Executor.release). */
  releases: Array<{ executor: Executor; handle: ExecutionHandle }>;
  outputs: Array<{ node: Node; value: unknown }>;
  /**
   * Output rows this step commits with its moves (OutputStore.inline): a block run's JSON text,
   * or null to delete the block's row (its newer output is a file the row would shadow).
   */
  rows: Map<Node, InlineOutput | null>;
  events: RunEvent[];
  ended: PipelineRunStatus | null;
  /** The index of the statement that ends the run (its result is the ended run's row), when `ended`. */
  endIndex: number | null;
  /** This step moves the run to running. */
  starts: boolean;
}

/**
 * How long a run being let go waits for the database to read its stored block runs before it
 * stops its block processes all the same (ms).
 */
const LET_GO_READ_MS = 30_000;

export class RunEngine {
  readonly #store: Store;
  #project: Project;
  readonly #outputs: OutputStore;
  readonly #clock: Clock;
  readonly #beforeRunEnds: RunEngineDeps["beforeRunEnds"];
  readonly #mayLaunch: RunEngineDeps["mayLaunch"];
  readonly #runs = new Map<number, RunState>();
  /** Every run this engine has been asked to drive and has not finished, registered before any await. */
  readonly #calls = new Map<number, Promise<PipelineRun>>();
  /** Block runs executing now, per executor type, across every run of this engine. */
  readonly #slots = new ExecutorSlots();
  /** Set by holdLaunches: queued block runs stay queued for whichever engine drives their run next. */
  #holding = false;
  /** Says why this process may not write for its runs now (see setLiveness); null while it may. */
  #liveness: (() => string | null) | null = null;
  readonly #addons: AddonHooks;
  readonly #launcher: Launcher;
  readonly #ownership: OwnershipWatch;

  constructor(deps: RunEngineDeps) {
    this.#store = deps.store;
    this.#project = deps.project;
    this.#outputs = deps.outputs;
    this.#clock = deps.clock ?? systemClock;
    this.#beforeRunEnds = deps.beforeRunEnds;
    this.#mayLaunch = deps.mayLaunch;
    this.#slots.noteLimits(deps.project.settings.concurrencyConfig.executorLimits);
    this.#addons = new AddonHooks(deps.addons ?? null, deps.logs ?? null, (id) => {
      const state = this.#runs.get(id);
      if (state) this.#post(state, { type: "wake" });
    });
    this.#launcher = new Launcher({
      store: deps.store,
      executors: deps.executors,
      logs: deps.logs ?? null,
      clock: this.#clock,
      pollMs: deps.pollIntervalMs ?? 1000,
      fenced: () => this.fenced(),
      report: (state, node, launch, result) => this.#post(state, { type: "finished", node, launch, result }),
    });
    this.#ownership = new OwnershipWatch({
      store: deps.store,
      watchMs: deps.watchIntervalMs ?? 2000,
      fenced: () => this.fenced(),
      post: (state, input) => this.#post(state, input),
    });
  }

  /** Uses a reloaded project for runs started from now on (runs in flight keep theirs). */
  setProject(project: Project): void {
    this.#project = project;
    this.#slots.noteLimits(project.settings.concurrencyConfig.executorLimits);
  }

  /**
   * Stops handing queued block runs to executors, in every run, for good: a Worker tick nearing
   * its deadline lets running blocks finish and leaves the rest queued for the next tick.
   */
  holdLaunches(): void {
    this.#holding = true;
  }

  /**
   * Tells the engine how to know that this process may have been presumed dead (its scheduler's
   * heartbeat lapsed past the orphan window, e.g. it was frozen): `check` returns why, or null.
   * Asked before every commit, so a process waking from a freeze writes nothing for runs that
   * others may have taken over; it lets go of them instead (see checkLiveness).
   */
  setLiveness(check: (() => string | null) | null): void {
    this.#liveness = check;
  }

  /** Why this process may not write for its runs now, or null (no liveness check set, or alive). */
  fenced(): string | null {
    return this.#liveness?.() ?? null;
  }

  /**
   * Lets go of every run this engine drives if the liveness check says this process may have
   * been presumed dead: in-process block runs are aborted, block processes that another owner
   * can re-attach to are left running, and nothing more is written. True if it let go.
   */
  checkLiveness(): boolean {
    const reason = this.fenced();
    if (reason === null) return false;
    for (const state of this.#runs.values()) this.#post(state, { type: "lost", reason });
    return true;
  }

  /** Block runs this engine has handed to an executor that have not ended yet. */
  get executingBlockRuns(): number {
    return this.#slots.total;
  }

  /** Block runs of executor type `type` this engine has handed to their executor that have not ended yet. */
  executingBlockRunsOf(type: string): number {
    return this.#slots.of(type);
  }

  /** Block runs waiting to be handed to an executor: queued (launches held, or no room), or failed with a retry to come. */
  get waitingBlockRuns(): number {
    let waiting = 0;
    for (const state of this.#runs.values()) {
      for (const node of state.nodes.values()) if (node.kind !== "controller" && (node.status === "queued" || node.retryPending)) waiting++;
    }
    return waiting;
  }

  /** Ids of the runs this engine is executing now. */
  activeRunIds(): number[] {
    return [...this.#calls.keys()];
  }

  /** Settles with the run as stored when this engine is done with it; null if it is not executing it. */
  ended(pipelineRunId: number): Promise<PipelineRun> | null {
    return this.#calls.get(pipelineRunId) ?? null;
  }

  /** Runs a pipeline run to its end and returns it as stored. */
  execute(pipelineRunId: number, options: RunOptions = {}): Promise<PipelineRun> {
    return this.#once(pipelineRunId, () => this.#execute(pipelineRunId, options));
  }

  /**
   * Takes over a running run whose owner stopped (a scheduler crash or restart) and drives it to
   * its end: block runs still running are re-attached through their executor handles; those
   * that cannot be (no handle, or in-process) count as a failed attempt and follow retry_config.
   */
  resume(pipelineRunId: number, previousOwner: string | null, options: RunOptions = {}): Promise<PipelineRun> {
    return this.#once(pipelineRunId, () => this.#resume(pipelineRunId, previousOwner, options));
  }

  /** One driver per run in this engine: a second call while it runs gets the same promise. */
  #once(pipelineRunId: number, drive: () => Promise<PipelineRun>): Promise<PipelineRun> {
    const existing = this.#calls.get(pipelineRunId);
    if (existing) return existing;
    const call = drive().finally(() => {
      if (this.#calls.get(pipelineRunId) === call) this.#calls.delete(pipelineRunId);
    });
    this.#calls.set(pipelineRunId, call);
    return call;
  }

  async #execute(pipelineRunId: number, options: RunOptions): Promise<PipelineRun> {
    // the run as its creator handed it over (just created, initial), or as stored
    const run = options.run?.id === pipelineRunId ? options.run : await this.#store.getPipelineRun(pipelineRunId);
    if (!run) throw new Error(`pipeline run ${pipelineRunId} does not exist`);
    if (run.status !== "initial") throw new RunNotInitialError(pipelineRunId, run.status);
    const project = this.#project;
    const pipeline = this.#pipelineOf(project, run);
    const only = options.blockUuids ? new Set(options.blockUuids) : null;
    const blocks = only ? pipeline.blocks.filter((b) => only.has(b.uuid)) : pipeline.blocks;
    for (const block of only ? blocks : []) {
      if (fanOutSourceOf(pipeline, block.uuid) !== null) {
        throw new Error(`block ${block.uuid} runs once per item of a dynamic block; run the whole pipeline instead (a single-block run of it is not supported yet)`);
      }
    }
    const state = await this.#prepare(run, project, pipeline, blocks, options);
    for (const block of blocks) state.nodes.set(block.uuid, state.node(block.uuid, block, nodeKindOf(pipeline, block.uuid, null), null));
    return this.#run(state, { type: "start" });
  }

  async #resume(pipelineRunId: number, previousOwner: string | null, options: RunOptions): Promise<PipelineRun> {
    const run = await this.#store.getPipelineRun(pipelineRunId);
    if (!run) throw new Error(`pipeline run ${pipelineRunId} does not exist`);
    if (run.status === "initial") return this.#execute(pipelineRunId, options);
    if (run.status !== "running") return run;
    const project = this.#project;
    const pipeline = this.#pipelineOf(project, run);
    const rows = await this.#store.getBlockRuns(run.id);
    const present = new Set(rows.map((r) => parseBlockRunUuid(r.blockUuid).block));
    const blocks = pipeline.blocks.filter((b) => present.has(b.uuid));
    const state = await this.#prepare(run, project, pipeline, blocks, options);
    for (const row of rows) {
      const { block: blockUuid, index } = parseBlockRunUuid(row.blockUuid);
      const block = pipeline.blocksByUuid.get(blockUuid);
      if (!block) continue;
      const node = state.node(row.blockUuid, block, nodeKindOf(pipeline, blockUuid, index), index);
      node.status = row.status;
      node.attempt = row.attempt;
      node.id = row.id;
      node.handle = row.executorHandle;
      state.nodes.set(row.blockUuid, node);
      if (index !== null) state.itemCounts.set(blockUuid, Math.max(state.itemCounts.get(blockUuid) ?? 0, index + 1));
    }
    for (const node of state.nodes.values()) {
      if (node.kind === "controller" && node.status !== "initial" && !state.itemCounts.has(node.block.uuid)) {
        state.itemCounts.set(node.block.uuid, 0);
      }
      if (node.status === "completed") await this.#loadOutput(state, node);
    }
    const retryAt = new Map(rows.map((r) => [r.blockUuid, r.retryAt]));
    return this.#run(state, { type: "resume", previousOwner, retryAt });
  }

  #pipelineOf(project: Project, run: PipelineRun): Pipeline {
    const pipeline = project.pipelines.get(run.pipelineUuid);
    if (!pipeline) throw new Error(`pipeline run ${run.id}: the project has no pipeline ${run.pipelineUuid}`);
    return pipeline;
  }

  /** The run's state: its project, settings, variables and limits, and where upstreams outside `blocks` left their outputs. */
  async #prepare(run: PipelineRun, project: Project, pipeline: Pipeline, blocks: BlockConfig[], options: RunOptions): Promise<RunState> {
    const given = options.schedule;
    const schedule =
      run.pipelineScheduleId === null ? null : given && given.id === run.pipelineScheduleId ? given : await this.#store.getPipelineSchedule(run.pipelineScheduleId);
    const { partitions: external, missing } = await outsideUpstreams(this.#store, pipeline, blocks.map((b) => b.uuid));
    if (missing.length > 0) {
      const names = blocks.map((b) => b.uuid).join(", ");
      throw new Error(`block ${names} needs the output of ${missing.join(", ")}, which has never completed: run the pipeline first`);
    }
    return new RunState(
      run,
      project,
      pipeline,
      schedule,
      mergeVariables(project.settings.variables, pipeline.variables, schedule?.variables, run.variables, options.runtimeVariables),
      external,
      options,
    );
  }

  /**
   * Loads what the DAG rules need of a completed block run's output, before any decision pass
   * looks at it: a dynamic block's item count, a reduce_output item's value.
   */
  #loadOutput(state: RunState, node: Node, inHand?: InlineOutput): Promise<void> | null {
    const dynamic = node.block.configuration.dynamic === true;
    const reduced = node.kind === "item" && node.block.configuration.reduceOutput === true;
    if (!dynamic && !reduced) return null;
    const use = (output: unknown) => {
      if (dynamic) state.itemCounts.set(node.block.uuid, itemCountOf(output));
      if (reduced) state.itemOutputs.set(node.uuid, output);
    };
    // an output this step commits is not stored yet: it is read from the result in hand
    if (inHand) return Promise.resolve(use(JSON.parse(inHand.json) as unknown));
    return this.#outputs.read(state.pipeline.uuid, state.run.executionPartition, node.uuid).then(use);
  }

  async #run(state: RunState, first: Input): Promise<PipelineRun> {
    this.#runs.set(state.run.id, state);
    this.#post(state, first);
    try {
      return await state.done;
    } finally {
      if (this.#runs.get(state.run.id) === state) this.#runs.delete(state.run.id);
    }
  }

  /** Cancels a run this engine is executing; its live block runs are stopped. False if it is not here. */
  cancel(pipelineRunId: number, reason = "cancelled"): boolean {
    const state = this.#runs.get(pipelineRunId);
    if (!state) return false;
    this.#post(state, { type: "stop", status: "cancelled", reason });
    return true;
  }

  #post(state: RunState, input: Input): void {
    if (state.finished) return;
    state.inbox.push(input);
    if (!state.processing) void this.#drain(state);
  }

  async #drain(state: RunState): Promise<void> {
    state.processing = true;
    try {
      while (state.inbox.length > 0 && !state.finished) {
        const inputs = state.inbox.splice(0);
        const step: Step = {
          batch: this.#store.batch(),
          moves: new Map(),
          creates: [],
          launches: [],
          attaches: [],
          cancels: [],
          releases: [],
          outputs: [],
          rows: new Map(),
          events: [],
          ended: null,
          endIndex: null,
          starts: false,
        };
        for (const input of inputs) {
          const loading = this.#apply(state, input, step);
          if (loading) await loading;
        }
        this.#advance(state, step);
        await this.#commit(state, step);
      }
    } catch (error) {
      await this.#abandon(state, error);
    } finally {
      state.processing = false;
    }
  }

  /** Records a block run's status change in the step (and in memory); written at commit. */
  #move(state: RunState, step: Step, node: Node, to: BlockRunStatus, patch: BlockRunPatch = {}): void {
    assertTransition("block_run", blockRunSubject({ pipelineRunId: state.run.id, blockUuid: node.uuid }), node.status, to);
    const move = step.moves.get(node);
    if (move) {
      move.via.push(node.status);
      Object.assign(move.patch, patch);
    } else {
      step.moves.set(node, { from: node.status, via: [], patch: { ...patch } });
    }
    node.status = to;
    step.events.push({
      kind: "block",
      pipelineRunId: state.run.id,
      blockUuid: node.uuid,
      status: to,
      attempt: node.attempt,
      error: patch.error ?? null,
      at: step.batch.now,
    });
  }

  /**
   * Applies one input to the run's state, recording the moves it causes in the step. Only a
   * completed block run whose output the DAG rules need (dynamic, or an item to reduce) makes
   * this wait: its output is loaded here, before the decision pass (#advance) looks at it.
   */
  #apply(state: RunState, input: Input, step: Step): Promise<void> | void {
    switch (input.type) {
      case "start":
        return this.#startRun(state, step);
      case "resume":
        return this.#takeOver(state, step, input.previousOwner, input.retryAt);
      case "stop":
        state.stopping ??= { status: input.status, reason: input.reason };
        return;
      case "wake":
        return;
      case "ended_elsewhere":
        throw new RunEndedElsewhereError(state.run.id, input.status);
      case "taken_over":
        throw new RunTakenOverError(state.run.id, input.owner);
      case "lost":
        throw new RunLostError(state.run.id, input.reason);
      case "retry":
        return this.#retry(state, step, input.node);
      case "finished":
        return this.#blockEnded(state, step, input.node, input.launch, input.result);
    }
  }

  /**
   * Transition "start run": pipeline run initial -> running, with a block run (initial) per
   * block of the run.
   *   Writes: transitionPipelineRun initial -> running (started_at, owner); the block runs,
   *   inserted at commit as this step's moves left them (insertBlockRunsAs: the first blocks
   *   already queued -> running when they are claimed in the same step).
   *   Refused when: the run is no longer initial (another scheduler started it, or it was
   *   cancelled): IllegalTransitionError, and the run is let go as not this engine's.
   *   After the commit: the ownership watch starts. Armed now: the run timeout.
   *   Events: run running.
   */
  #startRun(state: RunState, step: Step): void {
    const now = step.batch.now;
    step.creates.push(...state.nodes.values());
    step.batch.transitionPipelineRun(state.run.id, "initial", "running", { startedAt: now, owner: state.options.owner ?? null });
    state.run = { ...state.run, status: "running", startedAt: now, owner: state.options.owner ?? null };
    step.starts = true;
    step.events.push({ kind: "run", pipelineRunId: state.run.id, status: "running", error: null, at: now });
    this.#startRunTimeout(state);
  }

  /**
   * Transition "take over": a running pipeline run's owner changes from a stopped process to
   * this one; its status does not change.
   *   Writes: takeOverPipelineRun (previous owner -> this owner).
   *   Refused when: another process took it first, or it is no longer running: the run is let go.
   *   After the commit: running block runs with a stored, non-transient handle are re-attached
   *   (launcher.attach); those without one count as a failed attempt ("finished" posted).
   *   Armed now: the run timeout (from the stored started_at) and the retries still waiting.
   */
  #takeOver(state: RunState, step: Step, previousOwner: string | null, retryAt: ReadonlyMap<string, number | null>): void {
    const now = step.batch.now;
    step.batch.takeOverPipelineRun(state.run.id, previousOwner, state.options.owner ?? "kiln");
    state.takingOver = true;
    state.run = { ...state.run, owner: state.options.owner ?? "kiln" };
    step.starts = true;
    this.#startRunTimeout(state);
    for (const node of state.nodes.values()) {
      if (node.status === "running" && node.kind !== "controller") {
        node.launch++;
        state.running++;
        this.#takeSlot(node);
        if (node.handle && node.handle.transient !== true) {
          step.attaches.push(node);
        } else {
          // nothing to re-attach to: that attempt is lost, and counts as a failed one
          const launch = node.launch;
          const result: ExecutionStatus = { state: "failed", error: "the block run was lost when its kiln process stopped" };
          queueMicrotask(() => this.#post(state, { type: "finished", node, launch, result }));
        }
      }
      const at = retryAt.get(node.uuid);
      if (node.status === "failed" && at !== null && at !== undefined) {
        node.retryPending = true;
        node.timers.push(this.#clock.setTimer(at - now, () => this.#post(state, { type: "retry", node })));
      }
    }
  }

  /**
   * Transition "retry": block run failed -> queued, attempt + 1, once its backoff has passed.
   *   Writes: transitionBlockRun failed -> queued (attempt, error/retry_at/started_at/completed_at cleared).
   *   Skipped when: the run is going down, or the retry is no longer pending (cancelled meanwhile).
   *   Events: block queued.
   */
  #retry(state: RunState, step: Step, node: Node): void {
    if (node.status !== "failed" || !node.retryPending || state.stopping) return;
    node.retryPending = false;
    node.attempt++;
    this.#move(state, step, node, "queued", {
      attempt: node.attempt,
      error: null,
      retryAt: null,
      startedAt: null,
      completedAt: null,
    });
  }

  /**
   * Transition "block run ended": block run running -> completed, failed or cancelled, as its
   * executor reported (an end of an earlier start, `launch`, is dropped).
   *   Writes: transitionBlockRun running -> completed | failed | cancelled (completed_at,
   *   metrics, error; retry_at when a retry follows, per the run's retry_config).
   *   Frees: the block run's slot and timers. A failure with no retry left and no
   *   allow_blocks_to_fail sets the run going down (failed). After the commit: the execution
   *   is released to its executor (Executor.release).
   *   Armed now: the retry's backoff timer. Events: block completed | failed | cancelled.
   */
  #blockEnded(state: RunState, step: Step, node: Node, launch: number, result: ExecutionStatus): Promise<void> | void {
    if (node.status !== "running" || node.launch !== launch) return;
    this.#settle(state, node);
    // the end is recorded by this step's commit: then the executor may forget this execution
    if (node.executor?.release && node.handle) step.releases.push({ executor: node.executor, handle: node.handle });
    const now = step.batch.now;
    const metrics = "metrics" in result && result.metrics ? result.metrics : undefined;
    // an executor that retried by itself says how many attempts this start took: the last one is
    // the block run's attempt, and only the retries left after it are kiln's to make
    const attempts = result.state === "completed" || result.state === "failed" ? (result.attempts ?? 1) : 1;
    if (attempts > 1) node.attempt += attempts - 1;
    const counted = attempts > 1 ? { attempt: node.attempt } : {};
    if (result.state === "completed") {
      const inHand = result.output;
      if (inHand && !this.#outputs.inline) {
        // an executor kept the output for a store that keeps none as rows: stored before the commit, as the engine's own outputs are
        step.outputs.push({ node, value: JSON.parse(inHand.json) as unknown });
      } else if (this.#outputs.inline) {
        // the row commits with the completion; a completion whose output is a file deletes the row
        step.rows.set(node, inHand ?? null);
      }
      const completed = () => this.#move(state, step, node, "completed", { completedAt: now, metrics, ...counted });
      const loading = this.#loadOutput(state, node, inHand);
      if (loading === null) return completed();
      return loading.then(completed);
    }
    const error = result.state === "failed" ? result.error : "the executor reports the block run cancelled";
    const retry = state.retryConfigOf(node.block);
    if (result.state === "failed" && shouldRetry(retry, node.attempt) && !state.stopping) {
      const delay = retryDelayMs(retry, node.attempt);
      this.#move(state, step, node, "failed", { error, completedAt: now, retryAt: now + delay, metrics, ...counted });
      node.retryPending = true;
      node.timers.push(this.#clock.setTimer(delay, () => this.#post(state, { type: "retry", node })));
      return;
    }
    this.#move(state, step, node, result.state === "failed" ? "failed" : "cancelled", { error, completedAt: now, metrics, ...counted });
    if (!state.settings.allowBlocksToFail) state.stopping ??= { status: "failed", reason: `block ${node.uuid} failed: ${error}` };
  }

  /** Arms the run's timeout (settings.timeout, from started_at). */
  #startRunTimeout(state: RunState): void {
    const timeout = state.settings.timeout;
    if (!timeout) return;
    const status = state.settings.timeoutStatus ?? "failed";
    const remaining = (state.run.startedAt ?? this.#clock.now()) + timeout * 1000 - this.#clock.now();
    state.timers.push(
      this.#clock.setTimer(remaining, () => this.#post(state, { type: "stop", status, reason: `pipeline run timed out after ${timeout} s` })),
    );
  }

  /** A node stops executing: its timers go, and it frees a slot. */
  #settle(state: RunState, node: Node): void {
    for (const cancel of node.timers.splice(0)) cancel();
    if (node.kind !== "controller" && node.status === "running") {
      state.running--;
      this.#releaseExecutorSlot(node);
    }
  }

  /** Takes a place under the node's executor limit (claimed, or re-attached). */
  #takeSlot(node: Node): void {
    node.holdsSlot = true;
    this.#slots.take(node.executorType);
  }

  /** Frees the node's place under its executor's limit, and lets runs waiting for one try again. */
  #releaseExecutorSlot(node: Node): void {
    if (!node.holdsSlot) return;
    node.holdsSlot = false;
    if (!this.#slots.release(node.executorType)) return;
    for (const other of this.#runs.values()) {
      if (other.executorLimitOf(node.executorType) === undefined) continue;
      for (const n of other.nodes.values()) {
        if (n.status === "queued") {
          this.#post(other, { type: "wake" });
          break;
        }
      }
    }
  }

  /**
   * The decision pass: works out every state change the run's current state allows, by the DAG
   * rules (dag-rules.ts) over what is in memory, until nothing changes. It reads nothing from
   * storage. Its transitions, each a move of the step's batch:
   *   "pass on": block run initial | queued -> upstream_failed | condition_failed (readiness).
   *   "cancel waiting": initial | queued -> cancelled, while the run is going down.
   *   "gate": initial -> queued | condition_failed, once the block's conditionals answered (addons.ts).
   *   "queue": initial -> queued, when every upstream completed.
   *   "fan out" (#expand), "claim" (#claim), "close per-item block" (#closeController).
   *   "stop running": running -> cancelled while the run is going down (the execution is
   *   cancelled after the commit, and released once stopped; waiting retries are dropped).
   *   "end run" (#finishIfDone).
   */
  #advance(state: RunState, step: Step): void {
    const now = step.batch.now;
    for (let changed = true; changed; ) {
      changed = false;
      for (const node of state.nodes.values()) {
        if (node.status !== "initial" && node.status !== "queued") continue;
        const verdict = readiness(state, node);
        if (verdict === "upstream_failed" || verdict === "condition_failed") {
          this.#move(state, step, node, verdict, { completedAt: now });
          changed = true;
        } else if (state.stopping) {
          this.#move(state, step, node, "cancelled", { completedAt: now });
          changed = true;
        } else if (verdict === "ready" && node.status === "initial" && node.kind !== "controller" && hasConditionals(state.pipeline, node.block.uuid)) {
          // Mage's conditionals decide, before a block is queued, whether it runs at all; they
          // get the block run's job, so its row must exist first (ask again once it is inserted)
          if (node.id === null) {
            queueMicrotask(() => this.#post(state, { type: "wake" }));
            continue;
          }
          const gate = this.#addons.gate(state.pipeline, node.block, node.uuid, state.run.id, () => state.jobOf(node));
          if (gate === "wait") continue;
          this.#move(state, step, node, gate === "run" ? "queued" : "condition_failed", gate === "run" ? {} : { completedAt: now });
          changed = true;
        } else if (verdict === "ready" && node.status === "initial") {
          if (node.kind === "controller") this.#expand(state, step, node);
          else this.#move(state, step, node, "queued");
          changed = true;
        }
      }
      if (state.stopping) {
        for (const node of state.nodes.values()) {
          if (node.status !== "running") continue;
          if (node.kind !== "controller" && node.handle) step.cancels.push(node);
          this.#settle(state, node);
          this.#move(state, step, node, "cancelled", { completedAt: now, error: state.stopping.reason });
          changed = true;
        }
        for (const node of state.nodes.values()) {
          if (node.retryPending) {
            node.retryPending = false;
            for (const cancel of node.timers.splice(0)) cancel();
          }
        }
      } else {
        for (const node of state.nodes.values()) {
          if (node.status !== "queued" || node.kind === "controller") continue;
          if (state.running >= state.blockRunLimit || this.#holding) break;
          if (!this.#slots.hasRoom(node.executorType, state.executorLimitOf(node.executorType))) continue;
          if (this.#mayLaunch && !this.#mayLaunch(this.#slots.total)) break;
          this.#claim(state, step, node);
          changed = true;
        }
      }
      for (const node of state.nodes.values()) {
        if (node.kind === "controller" && node.status === "running" && this.#closeController(state, step, node)) {
          changed = true;
        }
      }
    }
    this.#finishIfDone(state, step);
  }

  /**
   * Transition "fan out": a ready per-item block (controller) initial -> queued -> running in one
   * write, with one item block run (initial) per item of its fan-out source (dag-rules' fanOut).
   *   Writes: transitionBlockRun initial -> running via queued (started_at); the items, inserted
   *   at commit as this step's moves left them (insertBlockRunsAs).
   *   Events: block queued, block running (the controller's).
   */
  #expand(state: RunState, step: Step, node: Node): void {
    const { count, items } = fanOut(state, node);
    state.itemCounts.set(node.block.uuid, count);
    this.#move(state, step, node, "queued");
    this.#move(state, step, node, "running", { startedAt: step.batch.now });
    for (const { uuid, index } of items) {
      const item = state.node(uuid, node.block, "item", index);
      state.nodes.set(uuid, item);
      step.creates.push(item);
    }
  }

  /**
   * Transition "claim": block run queued -> running, under the run's block_run_limit and its
   * executor type's limit (a slot taken now); started on its executor after the commit.
   * A sensor under --skip-sensors goes queued -> running -> completed instead, its output true.
   *   Writes: transitionBlockRun queued -> running (started_at, attempt, executor_type); the
   *   batch also requires the run to be still running (a run cancelled elsewhere starts nothing).
   *   Refused when: the block run or the run moved on elsewhere: reconciled (#reconcile), or let go.
   *   After the commit: launcher.launch. Events: block running.
   */
  #claim(state: RunState, step: Step, node: Node): void {
    const now = step.batch.now;
    const type = node.executorType;
    if (node.block.type === "sensor" && state.options.skipSensors) {
      this.#move(state, step, node, "running", { startedAt: now, executorType: type });
      this.#move(state, step, node, "completed", { completedAt: now, metrics: { skipped: true } });
      step.outputs.push({ node, value: true });
      if (node.kind === "item" && node.block.configuration.reduceOutput) state.itemOutputs.set(node.uuid, true);
      return;
    }
    node.launch++;
    state.running++;
    this.#takeSlot(node);
    this.#move(state, step, node, "running", { startedAt: now, attempt: node.attempt, executorType: type });
    step.launches.push(node);
  }

  /**
   * Transition "close per-item block": a controller running -> completed | failed | cancelled
   * once all its items have ended (dag-rules' controllerOutcome); true if it did.
   *   Writes: transitionBlockRun running -> ... (completed_at, error); with reduce_output, the
   *   gathered list is written as the block's own output before the batch commits.
   *   A failure without allow_blocks_to_fail sets the run going down. Events: block <status>.
   */
  #closeController(state: RunState, step: Step, node: Node): boolean {
    const outcome = controllerOutcome(state, node, state.stopping !== null, state.itemOutputs);
    if (outcome === null) return false;
    const now = step.batch.now;
    if (outcome.status !== "completed") {
      this.#move(state, step, node, outcome.status, { completedAt: now, error: outcome.error });
      if (outcome.status === "failed" && !state.settings.allowBlocksToFail) {
        state.stopping ??= { status: "failed", reason: `block ${node.uuid} failed` };
      }
      return true;
    }
    // the gathered list is stored as the block's own output, so downstream reads it like any other
    if (outcome.reduced !== null) step.outputs.push({ node, value: outcome.reduced });
    this.#move(state, step, node, "completed", { completedAt: now });
    return true;
  }

  /**
   * Transition "end run": pipeline run running -> completed | failed | cancelled, once every
   * block run has ended and its callbacks have returned (dag-rules' runOutcome).
   *   Writes: transitionPipelineRun running -> ... (completed_at, metrics.error), and what
   *   beforeRunEnds adds (notifications), in the same batch.
   *   Refused when: it was ended elsewhere: the same end is success, another one lets go.
   *   After the commit: the engine is done with the run. Events: run <status>.
   */
  #finishIfDone(state: RunState, step: Step): void {
    if (state.run.status !== "running") return;
    const outcome = runOutcome(state, state.stopping);
    if (outcome === null) return;
    // the run ends once its blocks' callbacks have returned (those this step starts included)
    if (this.#addons.busy(state.run.id) || this.#endedBlocks(step).some((node) => callbacksOf(state.pipeline, node.block.uuid).length > 0)) return;
    const { status, error } = outcome;
    step.endIndex = step.batch.endPipelineRun(state.run.id, "running", status, {
      completedAt: step.batch.now,
      ...(error ? { metrics: { ...state.run.metrics, error } } : {}),
    });
    step.ended = status;
    step.events.push({ kind: "run", pipelineRunId: state.run.id, status, error, at: step.batch.now });
    this.#beforeRunEnds?.({ ...state.run, status, completedAt: step.batch.now }, status, error, step.batch);
  }

  async #commit(state: RunState, step: Step): Promise<void> {
    if (step.moves.size === 0 && step.creates.length === 0 && step.batch.size === 0) return;
    // a process waking from a freeze may have been presumed dead and its runs taken over: it
    // writes nothing (outputs included) until it knows it still may
    const fenced = this.fenced();
    if (fenced !== null) throw new RunLostError(state.run.id, fenced);
    await this.#storeOutputs(state, step);
    /** Moves found already made, exactly so, by another writer: they are left out of the next try. */
    const recorded = new Set<Node>();
    let results: ResultSet[] = [];
    let inserts: number[] = [];
    for (;;) {
      const built = this.#stepBatch(state, step, recorded);
      if (built.batch.size === 0) break;
      try {
        // a database outage holds the run up, it never fails it: the step is written once it is back
        results = await commitThroughOutages(this.#store, built.batch, () => this.fenced());
        inserts = built.inserts;
        break;
      } catch (error) {
        // a run this engine has not started yet is not its to reconcile: a lost start is let go
        if (!(error instanceof IllegalTransitionError) || !state.started) throw error;
        if ((await this.#reconcile(state, step, recorded)) === "ended") return;
      }
    }
    if (step.starts) {
      state.started = true;
      this.#ownership.watch(state);
    }
    this.#recordIds(state, inserts, results);
    // the rows just committed are what downstream jobs read: they carry them (RunState.committedOutputs)
    for (const [node, row] of step.rows) state.noteCommittedOutput(node.uuid, recorded.has(node) ? null : row);
    this.#runCallbacks(state, step);
    for (const node of step.cancels) this.#launcher.cancel(node, true);
    for (const { executor, handle } of step.releases) this.#launcher.release(executor, handle);
    if (step.ended) this.#end(state, step.ended, step.endIndex === null ? undefined : results[step.endIndex]?.rows[0]);
    for (const node of step.launches) void this.#launcher.launch(state, node, (inlineInputs) => state.jobOf(node, inlineInputs));
    for (const node of step.attaches) this.#launcher.attach(state, node);
    const onEvent = state.options.onEvent;
    if (onEvent) for (const event of step.events) onEvent(event);
  }

  /**
   * The outputs the engine itself made in this step (a skipped sensor's, a reduced list) and
   * those an executor handed over: a row committed with the step's moves when the store keeps
   * small outputs as rows (OutputStore.inline), otherwise written now, before the commit.
   */
  async #storeOutputs(state: RunState, step: Step): Promise<void> {
    const inline = this.#outputs.inline;
    for (const { node, value } of step.outputs) {
      if (inline) {
        const row = inlineOutputOf(encodeBlockOutput(state.pipeline.uuid, node.uuid, value), inline.maxBytes);
        step.rows.set(node, row);
        if (row) continue;
      }
      await this.#outputs.write(state.pipeline.uuid, state.run.executionPartition, node.uuid, value);
    }
  }

  /**
   * The step's writes as one batch, guarded, without the moves in `recorded`; `inserts`: the
   * indexes of the statements whose rows are the ids of the block runs it creates. The moves of
   * existing block runs are one statement (transitionBlockRuns), which also checks the run's
   * status and owner the step needs, and each output row of the step rides in the same batch.
   */
  #stepBatch(state: RunState, step: Step, recorded: ReadonlySet<Node>): { batch: WriteBatch; inserts: number[] } {
    const batch = step.batch.copy();
    // block runs created by this step are inserted as its moves left them (their path checked
    // by the store): one statement each batch, not an insert and then a write per moved row
    const created = new Set(step.creates);
    const inserts =
      created.size === 0
        ? []
        : batch.insertBlockRunsAs(
            state.run.id,
            step.creates.map((node) => {
              const move = step.moves.get(node);
              return { blockUuid: node.uuid, executorType: node.executorType, status: node.status, via: move?.via, patch: move?.patch };
            }),
          );
    const moves: BlockRunMove[] = [];
    for (const [node, move] of step.moves) {
      if (recorded.has(node) || created.has(node)) continue;
      moves.push({ blockUuid: node.uuid, from: move.from, to: node.status, patch: move.patch, via: move.via });
    }
    // each output row with its block run's completion (a completion another writer recorded carried its own)
    for (const [node, row] of step.rows) {
      if (recorded.has(node)) continue;
      const key = { pipelineUuid: state.pipeline.uuid, executionPartition: state.run.executionPartition, blockUuid: node.uuid };
      if (row === null) batch.deleteBlockOutput(key);
      else batch.putBlockOutput(key, row.json, row.bytes);
    }
    if (batch.size === 0 && moves.length === 0) return { batch, inserts };
    // a step that starts the run (or takes it over) moves it to running under this owner in this
    // very batch, by a guarded write: the guards below would check what that write just made true
    if (step.starts) {
      batch.transitionBlockRuns(state.run.id, moves);
      return { batch, inserts };
    }
    // a run cancelled by another process must not start anything new: this guard fails the batch
    const launching = step.launches.length > 0 && step.ended === null;
    // fencing: once another scheduler has taken the run over, this one writes nothing more in it
    const owner = state.run.owner;
    const condition = { ...(launching ? { status: "running" as const } : {}), ...(owner ? { owner } : {}) };
    // the step's block-run moves are one write, which checks the run as well: no guard statement of its own
    if (moves.length > 0) batch.transitionBlockRuns(state.run.id, moves, condition);
    else if (launching && owner) batch.requirePipelineRunStatusAndOwner(state.run.id, "running", owner);
    else if (launching) batch.requirePipelineRunStatus(state.run.id, "running");
    else if (owner) batch.requirePipelineRunOwner(state.run.id, owner);
    return { batch, inserts };
  }

  /**
   * A commit of a started run was refused: works out why from what is stored. The moves another
   * writer already made exactly as this step wanted (the same attempt ended the same way, e.g.
   * seen by two engines following one block process) are success: "retry" commits the rest. The
   * run already ended the way this step ends it: "ended". Anything else was done by another owner
   * (the run taken over, ended elsewhere, a block run moved on): it throws, and the engine lets go.
   */
  async #reconcile(state: RunState, step: Step, recorded: Set<Node>): Promise<"retry" | "ended"> {
    const id = state.run.id;
    const stored = await this.#store.getPipelineRun(id);
    if (!stored) throw new RunLostError(id, "the pipeline run is gone from the database");
    if (state.run.owner && stored.owner !== state.run.owner) throw new RunTakenOverError(id, stored.owner ?? "no owner");
    if (stored.status !== "running") {
      if (step.ended !== null && stored.status === step.ended) {
        lostRaces.lost("outcome_recorded");
        for (const node of state.nodes.values()) this.#releaseExecutorSlot(node);
        this.#finish(state);
        state.resolve(stored);
        return "ended";
      }
      throw new RunEndedElsewhereError(id, stored.status);
    }
    const rows = new Map((await this.#store.getBlockRuns(id)).map((r) => [r.blockUuid, r]));
    let progress = false;
    for (const [node, move] of step.moves) {
      if (recorded.has(node)) continue;
      const row = rows.get(node.uuid);
      // as this engine left it, or created by this very step (its insert was rolled back with the rest)
      if (row ? row.status === move.from : move.from === "initial") continue;
      const sameOutcome =
        row !== undefined && row.status === node.status && row.attempt === node.attempt && BLOCK_RUN_TERMINAL.has(node.status) && !step.launches.includes(node);
      if (!sameOutcome) {
        throw new RunLostError(id, `block run ${node.uuid} is ${row ? `${row.status} (attempt ${row.attempt})` : "gone"}: another process moved it`);
      }
      recorded.add(node);
      lostRaces.lost("outcome_recorded");
      progress = true;
    }
    if (!progress) throw new RunLostError(id, "a write was refused although the run and its block runs are as this engine left them");
    return "retry";
  }

  /** The block runs this step ended for good (completed, or failed with no retry to come). */
  #endedBlocks(step: Step): Node[] {
    return [...step.moves.keys()].filter(
      (node) => node.kind !== "controller" && !node.retryPending && (node.status === "completed" || node.status === "failed"),
    );
  }

  /** Starts Mage's callbacks of the block runs this step ended for good. */
  #runCallbacks(state: RunState, step: Step): void {
    for (const node of this.#endedBlocks(step)) {
      if (node.status !== "completed" && node.status !== "failed") continue;
      const error = node.status === "failed" ? (step.moves.get(node)?.patch.error ?? null) : null;
      this.#addons.afterBlock(state.pipeline, node.block, node.status, error, () => state.jobOf(node));
    }
  }

  #recordIds(state: RunState, inserts: readonly number[], results: ResultSet[]): void {
    for (const index of inserts) {
      for (const row of results[index]?.rows ?? []) {
        const node = state.nodes.get(String(row.block_uuid));
        if (node) node.id = Number(row.id);
      }
    }
  }

  /** This engine is done with the run: no more inputs are taken, no timer fires. */
  #finish(state: RunState): void {
    state.finished = true;
    this.#addons.forget(state.run.id);
    for (const cancel of state.timers.splice(0)) cancel();
    for (const node of state.nodes.values()) for (const cancel of node.timers.splice(0)) cancel();
  }

  #end(state: RunState, status: PipelineRunStatus, row?: ResultSet["rows"][number]): void {
    this.#finish(state);
    // the write that ended the run returned it as stored
    if (row) return state.resolve(pipelineRunFromRow(row));
    void this.#store.getPipelineRun(state.run.id).then(
      (run) => state.resolve(run ?? { ...state.run, status }),
      () => state.resolve({ ...state.run, status }),
    );
  }

  /**
   * Something went wrong outside the blocks (a lost race, the database): stop the run cleanly.
   * A race lost to another owner (ownership.ts' lostToAnother) is let go (#letGo), writing
   * nothing. Otherwise, transition "abandon": every live block run -> cancelled, and the run
   * initial -> cancelled or running -> failed (metrics.error says why), in one batch guarded by
   * this engine's ownership; executions are cancelled first. Events: run <status as stored>.
   */
  async #abandon(state: RunState, error: unknown): Promise<void> {
    if (!state.started) {
      // another process started this run first (or it was cancelled before it began): not ours;
      // the slots claimed for its first block runs go back
      lostRaces.lost(state.takingOver ? "run_takeover" : "run_start");
      for (const node of state.nodes.values()) this.#releaseExecutorSlot(node);
      this.#finish(state);
      const stored = await this.#store.getPipelineRun(state.run.id).catch(() => null);
      state.resolve(stored ?? state.run);
      return;
    }
    const owner = state.run.owner;
    const current = await this.#store.getPipelineRun(state.run.id).catch(() => null);
    // a race with another owner (or with a write this engine cannot explain) is never the run's failure
    if (lostToAnother(error, owner, current)) return this.#letGo(state, current);
    for (const node of state.nodes.values()) {
      if (node.status === "running" && node.kind !== "controller") this.#launcher.cancel(node);
      this.#releaseExecutorSlot(node);
    }
    this.#finish(state);
    const stored = current;
    const now = this.#clock.now();
    const batch = this.#store.batch().cancelLiveBlockRuns(state.run.id, `kiln stopped the run: ${messageOf(error)}`);
    if (stored && (stored.status === "initial" || stored.status === "running")) {
      batch.transitionPipelineRun(state.run.id, stored.status, stored.status === "initial" ? "cancelled" : "failed", {
        completedAt: now,
        metrics: { ...stored.metrics, error: `kiln stopped the run: ${messageOf(error)}` },
      });
    }
    // never over another owner: a run taken over since the read above stays its new owner's
    if (owner) batch.requirePipelineRunOwner(state.run.id, owner);
    // written once the database answers (never left running for good because it was down when
    // the run went wrong), unless this process may no longer write for the run meanwhile
    await commitThroughOutages(this.#store, batch, () => this.fenced()).catch(() => {});
    const final = await this.#store.getPipelineRun(state.run.id).catch(() => null);
    state.options.onEvent?.({
      kind: "run",
      pipelineRunId: state.run.id,
      status: final?.status ?? "failed",
      error: messageOf(error),
      at: now,
    });
    state.resolve(final ?? { ...state.run, status: "failed" });
  }

  /**
   * This engine lost the run (taken over, fenced out, or presumed dead): it writes nothing more
   * for it. Its in-process block runs are aborted (ctx.signal); its block processes are stopped
   * unless the stored block run still names that very attempt and process, which the run's next
   * owner re-attaches to (and a process on its way is better followed than run again).
   */
  async #letGo(state: RunState, current: PipelineRun | null): Promise<void> {
    lostRaces.lost("run_taken_over");
    this.#finish(state);
    const live = liveExecutions(state.nodes.values());
    // the stored block runs decide what is left running: read through an outage (a run is often
    // let go because the database could not be reached), since a process stopped for want of a
    // read is one its next owner (maybe this very scheduler, resuming) finds cancelled
    // real time, as the outage is real (see commit-retry.ts)
    const deadline = systemClock.now() + LET_GO_READ_MS;
    const stored = () => throughOutages(() => this.#store.getBlockRuns(state.run.id), () => (systemClock.now() > deadline ? "the stored block runs could not be read" : null));
    const rows = live.some((n) => n.handle?.transient !== true)
      ? new Map((await stored().catch(() => [])).map((r) => [r.blockUuid, r]))
      : new Map<string, BlockRun>();
    for (const node of live) if (!leftForNextOwner(node, rows.get(node.uuid))) this.#launcher.cancel(node);
    for (const node of state.nodes.values()) this.#releaseExecutorSlot(node);
    state.resolve(current ?? state.run);
  }
}

/** Only an initial run can be executed; this one is past that (another scheduler started it, usually). */
export class RunNotInitialError extends Error {
  readonly code = "run_not_initial";
  constructor(
    readonly pipelineRunId: number,
    readonly status: PipelineRunStatus,
  ) {
    super(`pipeline run ${pipelineRunId} is ${status}; only an initial run can be executed`);
    this.name = "RunNotInitialError";
  }
}

function hasConditionals(pipeline: Pipeline, blockUuid: string): boolean {
  return conditionalsOf(pipeline, blockUuid).length > 0;
}
