/** How a Cloud Run execution's state reads as a block run's status. */
import type { ExecutionStatus, JsonObject } from "@kiln/core";
import type { Condition, Execution, Task } from "./api.ts";

function completedCondition(execution: Execution): Condition | undefined {
  return execution.conditions?.find((condition) => condition.type === "Completed");
}

/** Whether the execution has ended (its Completed condition settled, or a completion time set). */
export function executionFinished(execution: Execution): boolean {
  const state = completedCondition(execution)?.state;
  return Boolean(execution.completionTime) || state === "CONDITION_SUCCEEDED" || state === "CONDITION_FAILED";
}

/** Whether the execution ended because someone cancelled it (kiln, or a person in the console). */
function executionCancelled(execution: Execution): boolean {
  return (execution.cancelledCount ?? 0) > 0 || completedCondition(execution)?.executionReason === "CANCELLED";
}

/** The short id at the end of an execution's full name. */
export function executionId(execution: Execution): string {
  return execution.name.slice(execution.name.lastIndexOf("/") + 1);
}

function metricsOf(execution: Execution): JsonObject {
  const metrics: JsonObject = { cloud_run_execution: execution.name };
  for (const [field, value] of [
    ["task_count", execution.taskCount],
    ["succeeded_count", execution.succeededCount],
    ["failed_count", execution.failedCount],
  ] as const) {
    if (typeof value === "number") metrics[field] = value;
  }
  if (execution.logUri) metrics.log_uri = execution.logUri;
  return metrics;
}

const EXIT_CODE_IN_MESSAGE = /exit(?:ed)? (?:with )?(?:an )?(?:exit )?code(?: of)? (-?\d+)/i;

/** Why the execution failed: each failed task's exit code when the tasks say, else the condition's message. */
export function failureMessage(execution: Execution, tasks: Task[]): string {
  const id = executionId(execution);
  const failed = tasks
    .map((task) => {
      const exitCode = task.lastAttemptResult?.exitCode;
      const message = task.lastAttemptResult?.status?.message;
      if (typeof exitCode === "number" && exitCode !== 0) return `task ${task.index ?? "?"} ended with exit code ${exitCode}${message ? ` (${message})` : ""}`;
      const code = task.lastAttemptResult?.status?.code;
      if (typeof code === "number" && code !== 0) return `task ${task.index ?? "?"} failed: ${message ?? `status code ${code}`}`;
      return null;
    })
    .filter((line): line is string => line !== null);
  if (failed.length > 0) return `Cloud Run execution ${id} failed: ${failed.join("; ")}`;
  const message = completedCondition(execution)?.message ?? "no reason given";
  // without task results, the condition's prose ("... exited with an exit code of 1 ...") carries it
  const match = EXIT_CODE_IN_MESSAGE.exec(message);
  return `Cloud Run execution ${id} failed${match ? ` with exit code ${match[1]}` : ""}: ${message}`;
}

/**
 * The block run's status for an execution; `tasks` is asked for only when the execution failed
 * (one more call, for the exit codes).
 */
export async function statusOf(execution: Execution, tasks: () => Promise<Task[]>): Promise<ExecutionStatus> {
  if (!executionFinished(execution)) return { state: "running" };
  if (executionCancelled(execution)) return { state: "cancelled" };
  const state = completedCondition(execution)?.state;
  const succeeded =
    state === "CONDITION_SUCCEEDED" || (state !== "CONDITION_FAILED" && (execution.failedCount ?? 0) === 0 && (execution.succeededCount ?? 0) > 0);
  if (succeeded) return { state: "completed", metrics: metricsOf(execution) };
  return { state: "failed", error: failureMessage(execution, await tasks()), metrics: metricsOf(execution) };
}
