/** Landing time: start early enough that a run is done by its scheduled time. */

/** Recent runtimes kiln bases the estimate on (Mage uses the same sample). */
export const LANDING_TIME_SAMPLE = 7;

/**
 * How long before its execution date a run should start: the mean of the recent runtimes plus
 * half their standard deviation; 0 with no history (start on time).
 */
export function landingLeadMs(runtimes: readonly number[]): number {
  if (runtimes.length === 0) return 0;
  const mean = runtimes.reduce((a, b) => a + b, 0) / runtimes.length;
  const variance = runtimes.reduce((a, b) => a + (b - mean) ** 2, 0) / runtimes.length;
  return Math.round(mean + Math.sqrt(variance) / 2);
}
