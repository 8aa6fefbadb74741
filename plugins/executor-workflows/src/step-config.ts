/**
 * A block's retry_config and timeout as a Workflows step's config, and what of them Workflows
 * cannot express. Workflows waits `delay` after the first failed attempt and, with exponential
 * backoff, `delay * 2^(n-1)` after the n-th: kiln's formula, without kiln's max_delay cap.
 */
import type { RetryConfig } from "@kiln/core/project";
import type { WorkflowStepConfig } from "./binding.ts";

/** The step config a block runs with: kiln's retries become the step's, its timeout each attempt's. */
export function stepConfigOf(retry: RetryConfig, timeoutSeconds: number): WorkflowStepConfig {
  const exponential = retry.exponentialBackoff;
  // a constant wait is capped as kiln caps it; an exponential one cannot be (see uncappedWait)
  const delaySeconds = exponential ? retry.delay : Math.min(retry.delay, retry.maxDelay);
  return {
    retries: { limit: retry.retries, delay: delaySeconds * 1000, backoff: exponential ? "exponential" : "constant" },
    timeout: timeoutSeconds * 1000,
  };
}

/**
 * The longest wait between attempts, in seconds, when it goes past max_delay (Workflows has no
 * cap on an exponential backoff); null when max_delay never bites.
 */
export function uncappedWait(retry: RetryConfig): number | null {
  if (!retry.exponentialBackoff || retry.retries < 1) return null;
  const longest = retry.delay * 2 ** (retry.retries - 1);
  return longest > retry.maxDelay ? longest : null;
}
