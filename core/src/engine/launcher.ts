/**
 * The launcher: where a block run leaves for its executor. It starts a claimed block run (after
 * the commit that moved it to running), arms its block timeout, stores the executor's handle so
 * another process can poll, cancel or re-attach to it, follows it to its end (the executor's
 * push, or polling), copies a remote executor's log into kiln's, and reports the end to the
 * run's inbox. It also re-attaches to a block run a stopped process started. It changes no
 * status itself: every end comes back to the engine as a "finished" input.
 */
import type { Clock } from "../clock.ts";
import type { BlockJob, ExecutionHandle, ExecutionStatus, Executor, ExecutorRegistry } from "../executor.ts";
import { formatLogLine, type LogSink } from "../logs.ts";
import type { Store } from "../store/index.ts";
import type { Node, RunState } from "./run-state.ts";
import { commitThroughOutages } from "./commit-retry.ts";
import { messageOf } from "../errors.ts";

export interface LauncherDeps {
  store: Store;
  executors: ExecutorRegistry;
  logs: LogSink | null;
  clock: Clock;
  /** How often to ask an executor that cannot push for its status (ms). */
  pollMs: number;
  /** Why this process may not write for its runs now (the engine's liveness), or null. */
  fenced: () => string | null;
  /** Posts a block run's end (of start `launch`) to its run's inbox. */
  report: (state: RunState, node: Node, launch: number, result: ExecutionStatus) => void;
}

export class Launcher {
  constructor(private readonly deps: LauncherDeps) {}

  /** Starts one claimed block run on its executor and routes its end back to the inbox. */
  async launch(state: RunState, node: Node, job: (inlineInputs: boolean) => BlockJob): Promise<void> {
    const launch = node.launch;
    const finish = (result: ExecutionStatus) => this.deps.report(state, node, launch, result);
    let executor: Executor;
    try {
      executor = this.deps.executors.get(node.executorType);
      const built = job(executor.inlineInputs === true);
      const timeout = node.block.timeout;
      // an executor that retries by itself enforces the timeout per attempt: a timer here would
      // end the block run in the middle of its platform's retries
      if (timeout && executor.retriesItself !== true) {
        node.timers.push(
          this.deps.clock.setTimer(timeout * 1000, () => {
            if (node.launch !== launch || node.status !== "running") return;
            this.cancel(node);
            finish({ state: "failed", error: `block run timed out after ${timeout} s` });
          }),
        );
      }
      node.executor = executor;
      node.handle = await executor.start(built);
    } catch (error) {
      finish({ state: "failed", error: `could not start the block run: ${messageOf(error)}` });
      return;
    }
    const handle = node.handle;
    if (node.launch !== launch || node.status !== "running" || state.finished) {
      // stopped while it was starting, or the run was let go meanwhile (its new owner never saw this handle)
      executor.cancel(handle).catch(() => {});
      return;
    }
    // stored so another process can poll, cancel or re-attach; a transient handle means nothing elsewhere
    if (handle.transient !== true && this.deps.fenced() === null) {
      const batch = this.deps.store.batch().patchBlockRun({ pipelineRunId: state.run.id, blockUuid: node.uuid }, { executorHandle: handle });
      // never over a run taken over meanwhile: its new owner may have started another attempt
      if (state.run.owner) batch.requirePipelineRunOwner(state.run.id, state.run.owner);
      // kept trying through a database outage: without it, the run's next owner could not re-attach
      // to this process and would start the block run again beside it
      void commitThroughOutages(this.deps.store, batch, () => this.deps.fenced() ?? (state.finished ? "the run was let go" : null)).catch(() => {});
    }
    this.#follow(state, node, executor, handle, false);
  }

  /** Re-attaches to a block run started by a process that stopped, through its stored handle. */
  attach(state: RunState, node: Node): void {
    const handle = node.handle;
    const launch = node.launch;
    try {
      const executor = this.deps.executors.get(node.executorType);
      node.executor = executor;
      if (handle) this.#follow(state, node, executor, handle, true);
    } catch (error) {
      this.deps.report(state, node, launch, { state: "failed", error: messageOf(error) });
    }
  }

  /**
   * Asks the executor to stop the node's execution, if it has one (errors ignored: it may have
   * ended). `committed`: the block run's end (cancelled, a run going down) is already committed,
   * so the execution is released once stopped.
   */
  cancel(node: Node, committed = false): void {
    const { executor, handle } = node;
    if (!executor || !handle) return;
    const stopped = executor.cancel(handle).catch(() => {});
    if (committed) void stopped.then(() => this.release(executor, handle));
  }

  /** Tells the executor an execution's end is committed (Executor.release); its errors are not the run's. */
  release(executor: Executor, handle: ExecutionHandle): void {
    try {
      executor.release?.(handle);
    } catch {
      // what it failed to drop is left behind, and the run is as committed
    }
  }

  /** Routes a started block run's end to the inbox: by the executor's push, or by polling it. */
  #follow(state: RunState, node: Node, executor: Executor, handle: ExecutionHandle, mustPoll: boolean): void {
    const launch = node.launch;
    const finish = (result: ExecutionStatus) =>
      void this.#copyRemoteLogs(state, node, executor, handle).finally(() => this.deps.report(state, node, launch, result));
    if (executor.wait && !mustPoll) {
      executor.wait(handle).then(finish, (error: unknown) => finish({ state: "failed", error: messageOf(error) }));
      return;
    }
    const poll = () => {
      node.timers.push(
        this.deps.clock.setTimer(this.deps.pollMs, () => {
          if (node.launch !== launch || node.status !== "running") return;
          executor.status(handle).then(
            (status) => (status.state === "running" ? poll() : finish(status)),
            (error: unknown) => finish({ state: "failed", error: `lost track of the block run: ${messageOf(error)}` }),
          );
        }),
      );
    };
    poll();
  }

  /**
   * A remote block run's log lives with its platform (container output, CloudWatch, pod logs)
   * and its files die with the container: copied into kiln's log when the block run ends, so
   * the API and UI read every block's log the same way.
   */
  async #copyRemoteLogs(state: RunState, node: Node, executor: Executor, handle: ExecutionHandle): Promise<void> {
    const logs = this.deps.logs;
    if (!logs || !executor.remote || !executor.logs) return;
    const where = [state.pipeline.uuid, state.run.executionPartition, node.uuid] as const;
    try {
      for await (const line of executor.logs(handle)) logs.append(...where, line.endsWith("\n") ? line : `${line}\n`);
    } catch (error) {
      logs.append(...where, formatLogLine(Date.now(), "warn", `kiln could not copy this block run's log from the ${executor.type} executor: ${messageOf(error)}`));
    }
  }
}
