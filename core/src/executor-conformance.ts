/**
 * The executor contract as tests: every built-in executor passes them, and a third party runs
 * them against its own. Written against no test framework: the caller passes its `test`
 * function (bun:test, node:test, vitest), and a failed check throws.
 */
import type { JsonObject } from "./domain.ts";
import type { BlockJob, ExecutionHandle, ExecutionStatus, Executor } from "./executor.ts";

/** What the blocks of the conformance jobs do. */
export type ConformanceBlock =
  /** Returns `{ ok: true }` as its output. */
  | "succeeds"
  /** Exits with code 1 (throws "planned failure"). */
  | "fails"
  /** Sleeps for minutes, so it can be cancelled or re-attached to while it runs. */
  | "sleeps"
  /** Logs the line "conformance log line" and returns. */
  | "logs";

/** The marker the `logs` block writes; its log must contain it. */
export const CONFORMANCE_LOG_LINE = "conformance log line";

/** What a conformance run needs from the world the executor works in. */
export interface ExecutorConformanceHarness {
  /** A job whose block does `block`, its pipeline run and block run recorded where the executor's work will look them up. */
  job(block: ConformanceBlock): Promise<BlockJob>;
  /** The output the job's block recorded (read from the project's output store). */
  output(job: BlockJob): Promise<unknown>;
  /**
   * The block run's log as kiln keeps it, for executors without `logs()` (the local executor
   * writes straight to the log sink).
   */
  storedLog?(job: BlockJob): Promise<string>;
  /** Whether the work behind a handle is gone (process ended, container removed, job deleted) after a cancel. */
  stopped?(handle: ExecutionHandle): Promise<boolean>;
  /** A config missing a required field, and that field's name, checked against validateConfig. */
  invalidConfig?: { config: JsonObject; field: string };
  /** How long a block run may take to end (ms); default 60 s. */
  settleMs?: number;
}

/** A test-registering function, as bun:test, node:test and vitest all have. */
export type DefineTest = (name: string, run: () => Promise<void>, timeoutMs?: number) => unknown;

class ConformanceError extends Error {
  override readonly name = "ConformanceError";
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new ConformanceError(message);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls an executor's `status` until the work ends or `limitMs` passes; the last status either way. */
export async function settleExecution(executor: Executor, handle: ExecutionHandle, limitMs: number, intervalMs = 100): Promise<ExecutionStatus> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const status = await executor.status(handle);
    if (status.state !== "running" || Date.now() > deadline) return status;
    await sleep(intervalMs);
  }
}

const settle = settleExecution;

/** Polls until `ok` holds, failing with `what` after `limitMs`. */
async function eventually(ok: () => Promise<boolean>, what: string, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await ok())) {
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A handle as it comes back from the database: JSON, with no object identity or methods. */
function stored(handle: ExecutionHandle): ExecutionHandle {
  return JSON.parse(JSON.stringify(handle)) as ExecutionHandle;
}

function describeStatus(status: ExecutionStatus): string {
  return JSON.stringify(status);
}

/**
 * Registers the conformance tests for the executors `makeExecutor` builds. It is called again
 * for each re-attach test, so each must be a fresh executor sharing nothing in memory with
 * the one that started the work, as after a scheduler restart.
 */
export function runExecutorConformance(
  makeExecutor: () => Executor | Promise<Executor>,
  harness: ExecutorConformanceHarness,
  test: DefineTest,
): void {
  const settleMs = harness.settleMs ?? 60_000;
  const timeout = settleMs * 3;

  test("start returns a handle that survives JSON, and status reaches completed with the block's output", async () => {
    const executor = await makeExecutor();
    const job = await harness.job("succeeds");
    const handle = await executor.start(job);
    check(JSON.stringify(stored(handle)) === JSON.stringify(handle), "the handle does not survive a JSON round trip");
    const status = await settle(executor, stored(handle), settleMs);
    check(status.state === "completed", `expected completed, got ${describeStatus(status)}`);
    const output = (await harness.output(job)) as { ok?: unknown } | null;
    check(output?.ok === true, `expected the block's output {"ok": true}, got ${JSON.stringify(output)}`);
  }, timeout);

  test("a block that fails ends failed, with the exit code in the error", async () => {
    const executor = await makeExecutor();
    const job = await harness.job("fails");
    const handle = await executor.start(job);
    const status = await settle(executor, stored(handle), settleMs);
    check(status.state === "failed", `expected failed, got ${describeStatus(status)}`);
    if (status.state === "failed") {
      check(/exit code 1\b|planned failure/.test(status.error), `expected the error to give exit code 1 (or the block's message), got "${status.error}"`);
    }
  }, timeout);

  test("a block's log lines can be read", async () => {
    const executor = await makeExecutor();
    const job = await harness.job("logs");
    const handle = await executor.start(job);
    const status = await settle(executor, stored(handle), settleMs);
    check(status.state === "completed", `expected completed, got ${describeStatus(status)}`);
    let text = "";
    if (executor.logs) {
      for await (const line of executor.logs(stored(handle))) text += `${line}\n`;
    } else {
      check(harness.storedLog !== undefined, "the executor has no logs() and the harness no storedLog(): its logs cannot be read");
      text = (await harness.storedLog?.(job)) ?? "";
    }
    check(text.includes(CONFORMANCE_LOG_LINE), `expected the log to contain "${CONFORMANCE_LOG_LINE}", got:\n${text.slice(0, 2000)}`);
  }, timeout);

  test("cancel stops a running block and status says cancelled", async () => {
    const executor = await makeExecutor();
    const job = await harness.job("sleeps");
    const handle = await executor.start(job);
    const before = await executor.status(stored(handle));
    check(before.state === "running", `expected the sleeping block to be running, got ${describeStatus(before)}`);
    await executor.cancel(stored(handle));
    const status = await settle(executor, stored(handle), settleMs);
    check(status.state === "cancelled", `expected cancelled, got ${describeStatus(status)}`);
    if (harness.stopped) await eventually(() => harness.stopped!(stored(handle)), "the cancelled work to be gone", settleMs);
  }, timeout);

  test("a fresh executor re-attaches to a stored handle and sees the block complete", async () => {
    const first = await makeExecutor();
    const job = await harness.job("succeeds");
    const handle = stored(await first.start(job));
    const restarted = await makeExecutor();
    const status = await settle(restarted, handle, settleMs);
    check(status.state === "completed", `expected completed after re-attaching, got ${describeStatus(status)}`);
  }, timeout);

  test("a fresh executor re-attaches to a stored handle and sees the block fail with its exit code", async () => {
    const first = await makeExecutor();
    const job = await harness.job("fails");
    const handle = stored(await first.start(job));
    const restarted = await makeExecutor();
    const status = await settle(restarted, handle, settleMs);
    check(status.state === "failed", `expected failed after re-attaching, got ${describeStatus(status)}`);
    if (status.state === "failed") check(/exit code 1\b|planned failure/.test(status.error), `expected exit code 1 in "${status.error}"`);
  }, timeout);

  test("a fresh executor can cancel work another one started", async () => {
    const first = await makeExecutor();
    const job = await harness.job("sleeps");
    const handle = stored(await first.start(job));
    const restarted = await makeExecutor();
    const before = await restarted.status(handle);
    check(before.state === "running", `expected running, got ${describeStatus(before)}`);
    await restarted.cancel(handle);
    const status = await settle(restarted, handle, settleMs);
    check(status.state === "cancelled", `expected cancelled, got ${describeStatus(status)}`);
    if (harness.stopped) await eventually(() => harness.stopped!(handle), "the cancelled work to be gone", settleMs);
  }, timeout);

  if (harness.invalidConfig) {
    const { config, field } = harness.invalidConfig;
    test(`validateConfig names the missing field ${field}`, async () => {
      const executor = await makeExecutor();
      check(executor.validateConfig !== undefined, "the executor has no validateConfig");
      const problem = executor.validateConfig?.(config) ?? null;
      check(problem !== null && problem.includes(field), `expected a message naming ${field}, got ${JSON.stringify(problem)}`);
    }, timeout);
  }
}
