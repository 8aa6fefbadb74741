/** Retry policy: how many attempts a block run gets and how long to wait between them. */
import { DEFAULT_RETRY_CONFIG, type RetryConfig } from "../project/types.ts";

/** The retry config a block runs with: defaults < project < pipeline < block. */
export function effectiveRetryConfig(...layers: Array<Partial<RetryConfig> | undefined>): RetryConfig {
  const merged: RetryConfig = { ...DEFAULT_RETRY_CONFIG };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return merged;
}

/**
 * Milliseconds to wait before attempt `attempt + 1`, after attempt `attempt` failed:
 * delay, then doubling with exponential_backoff, each wait capped at max_delay.
 */
export function retryDelayMs(config: RetryConfig, attempt: number): number {
  const factor = config.exponentialBackoff ? 2 ** Math.max(0, attempt - 1) : 1;
  return Math.min(config.delay * factor, config.maxDelay) * 1000;
}

/** Whether a block run that failed on `attempt` gets another. */
export function shouldRetry(config: RetryConfig, attempt: number): boolean {
  return attempt <= config.retries;
}
