/**
 * A block run's status from its Job and pod. A pod that can never start (its image cannot be
 * pulled, a Secret it needs is missing, no node fits it) is a failure, not "running": Kubernetes
 * would keep it pending for ever, and Mage shows such jobs as running (mage-ai #4150).
 */
import type { ExecutionStatus } from "@kiln/core";
import { CANCELLED_ANNOTATION, CONTAINER_NAME, FAILURE_ANNOTATION, type Condition, type KubeJob, type KubePod } from "./manifest.ts";

/** `kiln run-block` ends a failed block's stderr with this line (see executor-local); the rest is the error. */
const BLOCK_FAILED_MARK = "kiln: block failed: ";

/**
 * Container waiting reasons that mean the pod will not start without someone changing something.
 * Transient pull errors end the attempt too: kiln's retry_config retries it, with a fresh pod.
 */
export const STUCK_REASONS = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
]);

/** What the executor should do: report a status, or end a Job whose pod cannot start and report it failed. */
export type Verdict = { status: ExecutionStatus } | { stuck: string };

function condition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type && c.status === "True");
}

function newest(pods: KubePod[]): KubePod | undefined {
  return [...pods].sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "")).at(-1);
}

/** The block's error from a termination message (the log's tail): the marked line, else the last line. */
function blockError(message: string | undefined): string | null {
  if (!message) return null;
  const lines = message
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .reverse();
  const marked = lines.find((line) => line.startsWith(BLOCK_FAILED_MARK));
  if (marked) return marked.slice(BLOCK_FAILED_MARK.length);
  // not kiln's own failure (a usage error, a crash before the block ran): its last words
  const last = lines[0];
  return last ? (last.length > 300 ? `${last.slice(0, 300)}...` : last) : null;
}

/** How a failed pod ended, as a block run's error: "exit code 1: <the block's error>". */
export function describePodFailure(pod: KubePod): string {
  const container = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME) ?? pod.status?.containerStatuses?.[0];
  const terminated = container?.state?.terminated;
  if (terminated) {
    const reason = terminated.reason && terminated.reason !== "Error" ? ` (${terminated.reason})` : "";
    const error = blockError(terminated.message);
    return `exit code ${terminated.exitCode}${reason}${error ? `: ${error}` : ""}`;
  }
  const reason = pod.status?.reason ?? "Failed";
  return `the pod ${pod.metadata.name ?? ""} failed: ${reason}${pod.status?.message ? `: ${pod.status.message}` : ""}`;
}

/** Why a pending pod will never run, or null while it may still. */
function stuckReason(pod: KubePod, elapsedMs: number, scheduleTimeoutSeconds: number): string | null {
  for (const container of pod.status?.containerStatuses ?? []) {
    const waiting = container.state?.waiting;
    if (waiting?.reason && STUCK_REASONS.has(waiting.reason)) {
      return `the pod ${pod.metadata.name ?? ""} cannot start: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`;
    }
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === "Unschedulable" && elapsedMs > scheduleTimeoutSeconds * 1000) {
    return `the pod ${pod.metadata.name ?? ""} could not be scheduled in ${scheduleTimeoutSeconds} s (executor_config.schedule_timeout): ${scheduled.message ?? "Unschedulable"}`;
  }
  return null;
}

/**
 * Judges a block run from its Job and the Job's pods. `elapsedMs` is the time since kiln
 * created the Job, measured on kiln's clock (the cluster's may differ).
 */
export function judge(job: KubeJob, pods: KubePod[], elapsedMs: number, scheduleTimeoutSeconds: number): Verdict {
  const annotations = job.metadata.annotations ?? {};
  if (annotations[CANCELLED_ANNOTATION] === "true" || job.metadata.deletionTimestamp) return { status: { state: "cancelled" } };
  const failure = annotations[FAILURE_ANNOTATION];
  if (failure) return { status: { state: "failed", error: failure } };

  const conditions = job.status?.conditions;
  if (condition(conditions, "Complete") || (job.status?.succeeded ?? 0) > 0) return { status: { state: "completed" } };
  const pod = newest(pods);
  const failed = condition(conditions, "Failed");
  if (failed || (job.status?.failed ?? 0) > 0) {
    if (failed?.reason === "DeadlineExceeded") {
      return { status: { state: "failed", error: `timed out: the Job ran longer than its activeDeadlineSeconds (${job.spec?.activeDeadlineSeconds ?? "?"} s, the block's timeout)` } };
    }
    const failedPod = pods.find((p) => p.status?.phase === "Failed") ?? pod;
    if (failedPod) return { status: { state: "failed", error: describePodFailure(failedPod) } };
    return { status: { state: "failed", error: `the Job failed: ${failed?.reason ?? "Failed"}${failed?.message ? `: ${failed.message}` : ""}` } };
  }

  if (!pod) {
    // the Job controller could not make a pod: a ResourceQuota, a LimitRange, a missing ServiceAccount
    if (elapsedMs > scheduleTimeoutSeconds * 1000) {
      return {
        stuck: `no pod was created for the Job ${job.metadata.namespace ?? ""}/${job.metadata.name ?? ""} in ${scheduleTimeoutSeconds} s (executor_config.schedule_timeout): a ResourceQuota, LimitRange or missing ServiceAccount can prevent it; see kubectl describe job`,
      };
    }
    return { status: { state: "running" } };
  }
  // the Job's own counters can lag behind its pod's end
  if (pod.status?.phase === "Succeeded") return { status: { state: "completed" } };
  if (pod.status?.phase === "Failed") return { status: { state: "failed", error: describePodFailure(pod) } };
  if (pod.status?.phase === "Pending" || pod.status?.phase === undefined) {
    const stuck = stuckReason(pod, elapsedMs, scheduleTimeoutSeconds);
    if (stuck) return { stuck };
  }
  return { status: { state: "running" } };
}
