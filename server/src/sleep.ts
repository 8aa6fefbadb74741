/** Waiting between polls of a live stream, cut short when the client goes away. */

/** Resolves after `ms`, or at once when `signal` aborts (the timer is cleared either way). */
export function sleepUntilAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
