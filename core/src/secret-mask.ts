/**
 * Secrets masked where block runs are recorded: every value a block can read through
 * ctx.secrets is replaced by `***` in what kiln writes down about the run (its log lines, the
 * block run's error, and so what the run's metrics, notifications and kiln's own log lines are
 * made from). Applied at the boundaries every language and executor passes through (the log
 * sink and the executor's status), so a Python block's output is covered like a TypeScript one's.
 */
import type { ExecutionStatus, Executor } from "./executor.ts";
import type { LogSink } from "./logs.ts";

/** What a masked secret becomes. */
export const MASK = "***";
/** Values shorter than this are not masked: "1" or "on" would blank out half of every log. */
export const MIN_MASKED_LENGTH = 4;

/** The secret values to mask, longest first so one that contains another is masked whole. */
export class SecretMask {
  #values: string[] = [];

  /** Replaces the known values (e.g. every secret in the database). */
  set(values: Iterable<string>): void {
    this.#values = [...new Set([...values].filter((v) => v.length >= MIN_MASKED_LENGTH))].sort((a, b) => b.length - a.length);
  }

  /** Adds one value (a secret a block just read). */
  add(value: string): void {
    if (value.length < MIN_MASKED_LENGTH || this.#values.includes(value)) return;
    this.set([...this.#values, value]);
  }

  /** `text` with every known value replaced by `***`. */
  mask(text: string): string {
    let out = text;
    for (const value of this.#values) if (out.includes(value)) out = out.split(value).join(MASK);
    return out;
  }
}

/** A log sink that masks before it writes. */
export function maskingLogSink(sink: LogSink, mask: SecretMask): LogSink {
  return { append: (pipelineUuid, partition, blockUuid, text) => sink.append(pipelineUuid, partition, blockUuid, mask.mask(text)) };
}

function maskStatus(status: ExecutionStatus, mask: SecretMask): ExecutionStatus {
  let out = status;
  if ("error" in out && typeof out.error === "string") out = { ...out, error: mask.mask(out.error) };
  if ("metrics" in out && out.metrics) {
    const text = JSON.stringify(out.metrics);
    const masked = mask.mask(text);
    if (masked !== text) out = { ...out, metrics: JSON.parse(masked) as typeof out.metrics };
  }
  return out;
}

/** An executor whose reported errors are masked (the block run's error is recorded from them). */
export function maskingExecutor(executor: Executor, mask: SecretMask): Executor {
  return new Proxy(executor, {
    get(target, property) {
      if (property === "status") return async (handle: Parameters<Executor["status"]>[0]) => maskStatus(await target.status(handle), mask);
      if (property === "wait" && target.wait) {
        const wait = target.wait.bind(target);
        return async (handle: Parameters<Executor["status"]>[0]) => maskStatus(await wait(handle), mask);
      }
      if (property === "logs" && target.logs) {
        const logs = target.logs.bind(target);
        return async function* (handle: Parameters<Executor["status"]>[0]) {
          for await (const line of logs(handle)) yield mask.mask(line);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
